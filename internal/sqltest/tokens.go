package sqltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// RunTokenDB is a smoke test of the token database on a server adapter's
// migrations: the statements that differ per dialect (generated keys, row
// locks, case-sensitive lookups) and the concurrency the schema contract
// promises. The token server's behaviour is tested in sqlstore on SQLite.
// open must return a TokenDB on a migrated database, the same one for every
// call with the same URL.
func RunTokenDB(t *testing.T, fresh func(testing.TB) string, open func(ctx context.Context, url string) (*sqlstore.TokenDB, error)) {
	ctx := context.Background()
	url := fresh(t)
	tdb, err := open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { tdb.Close() }()

	n1, err := tdb.AddNode(ctx, weave.Node{URL: "https://node1.example", Capacity: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n1.ID == 0 || n1.State != weave.NodeUp || n1.Available != 10 {
		t.Fatalf("AddNode = %+v", n1)
	}
	if _, err := tdb.AddNode(ctx, weave.Node{URL: "https://node1.example", Capacity: 5}); !errors.Is(err, weave.ErrNodeExists) {
		t.Fatalf("AddNode twice: %v, want ErrNodeExists", err)
	}
	// Node URLs compare exactly.
	n2, err := tdb.EnsureNode(ctx, weave.Node{URL: "https://NODE1.example", Capacity: 100})
	if err != nil || n2.ID == n1.ID {
		t.Fatalf("EnsureNode with another case: %+v, %v", n2, err)
	}
	if got, err := tdb.EnsureNode(ctx, weave.Node{URL: "https://node1.example"}); err != nil || got.ID != n1.ID {
		t.Fatalf("EnsureNode of an existing node: %+v, %v", got, err)
	}

	// Concurrent first requests of one account converge on one record.
	const email = "0123456789abcdef@accounts.example"
	var wg sync.WaitGroup
	uids := make([]int64, 8)
	errs := make([]error, len(uids))
	for i := range uids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := tdb.AllocateUser(ctx, email, weave.NewTokenUser{Generation: 10, ClientState: "aa"})
			uids[i], errs[i] = u.UID, err
		}()
	}
	wg.Wait()
	for i := range uids {
		if errs[i] != nil {
			t.Fatalf("concurrent AllocateUser: %v", errs[i])
		}
		if uids[i] != uids[0] {
			t.Fatalf("concurrent first allocations gave uids %v", uids)
		}
	}
	u, err := tdb.GetUser(ctx, email)
	if err != nil || u.UID != uids[0] || u.Generation != 10 || u.ClientState != "aa" || u.Node == nil {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	// Emails compare exactly.
	if _, err := tdb.GetUser(ctx, "0123456789ABCDEF@accounts.example"); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("GetUser with another case: %v, want ErrNotFound", err)
	}
	if err := tdb.UpdateUser(ctx, u.UID, 20, 15); err != nil {
		t.Fatal(err)
	}
	if err := tdb.UpdateUser(ctx, u.UID, 5, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := tdb.UserByUID(ctx, u.UID); err != nil || got.Generation != 20 || got.KeysChangedAt != 15 {
		t.Fatalf("after UpdateUser: %+v, %v", got, err)
	}

	// A client-state change gives a new uid; the old record is replaced.
	u2, err := tdb.AllocateUser(ctx, email, weave.NewTokenUser{Generation: 20, ClientState: "bb", NodeID: u.NodeID})
	if err != nil || u2.UID <= u.UID || u2.NodeID != u.NodeID {
		t.Fatalf("AllocateUser with a new client state: %+v, %v", u2, err)
	}
	if got, err := tdb.GetUser(ctx, email); err != nil || got.UID != u2.UID || fmt.Sprint(got.OldClientStates) != "[aa]" {
		t.Fatalf("GetUser after the change: %+v, %v", got, err)
	}
	// Uids are never reused, even after the newest record is deleted.
	if err := tdb.ReplaceUserRecords(ctx, email); err != nil {
		t.Fatal(err)
	}
	if err := tdb.DeleteUser(ctx, u2.UID); err != nil {
		t.Fatal(err)
	}
	tdb.Close()
	tdb, err = open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	u3, err := tdb.AllocateUser(ctx, email, weave.NewTokenUser{Generation: 20, ClientState: "bb"})
	if err != nil || u3.UID <= u2.UID {
		t.Fatalf("allocation after deleting uid %d: %+v, %v", u2.UID, u3, err)
	}

	nodes, err := tdb.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	if err := tdb.RetireUser(ctx, email); err != nil {
		t.Fatal(err)
	}
	if got, err := tdb.GetUser(ctx, email); err != nil || !got.Retired() {
		t.Fatalf("after RetireUser: %+v, %v", got, err)
	}
	if err := tdb.RemoveNode(ctx, n2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.NodeByID(ctx, n2.ID); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("NodeByID of a removed node: %v", err)
	}
}
