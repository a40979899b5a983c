package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// tickClock advances 1 ms per reading, so records created one after the
// other have distinct created_at values.
type tickClock struct{ ms atomic.Int64 }

func newTickClock() *tickClock {
	c := &tickClock{}
	c.ms.Store(1_700_000_000_000)
	return c
}

func (c *tickClock) Now() time.Time { return time.UnixMilli(c.ms.Add(1)) }

// tokenBackend is a database the TokenDB tests run on: SQLite always,
// MariaDB/MySQL and PostgreSQL through internal/dbtest (skipped when the
// server is unreachable, unless WEAVE_REQUIRE_BACKENDS=1).
type tokenBackend struct {
	name  string
	fresh func(testing.TB) string // URL of a new, empty database
	open  func(ctx context.Context, url string, pool sqlstore.PoolOptions, opts sqlstore.TokenDBOptions) (*sqlstore.TokenDB, error)
}

var tokenBackends = []tokenBackend{
	{"sqlite",
		func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "tokens.db") },
		func(ctx context.Context, url string, pool sqlstore.PoolOptions, opts sqlstore.TokenDBOptions) (*sqlstore.TokenDB, error) {
			return sqlstore.OpenTokenDB(ctx, url, pool, true, opts)
		}},
	{"mysql", dbtest.MySQL,
		func(ctx context.Context, url string, pool sqlstore.PoolOptions, opts sqlstore.TokenDBOptions) (*sqlstore.TokenDB, error) {
			return sqlstore.OpenTokenDB(ctx, url, pool, true, opts)
		}},
	{"postgres", dbtest.Postgres,
		func(ctx context.Context, url string, pool sqlstore.PoolOptions, opts sqlstore.TokenDBOptions) (*sqlstore.TokenDB, error) {
			return sqlstore.OpenTokenDB(ctx, url, pool, true, opts)
		}},
}

// forEachBackend runs test once per backend, as a subtest.
func forEachBackend(t *testing.T, test func(t *testing.T, b tokenBackend)) {
	for _, b := range tokenBackends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

// openAt opens (migrating) the token database at url.
func (b tokenBackend) openAt(t *testing.T, url string, opts sqlstore.TokenDBOptions) *sqlstore.TokenDB {
	t.Helper()
	return b.openAtPool(t, url, sqlstore.PoolOptions{}, opts)
}

// queuedPool is for tests that start many transactions at once: each
// call's deadline (PoolOptions.Timeout, 10 s by default) also runs while
// it queues behind the others for the writer, and on SQLite two pools on
// one file take turns at the lock with a commit and its fsync each, which
// on a loaded CI machine takes the last of 120 calls past 10 s.
var queuedPool = sqlstore.PoolOptions{Timeout: 2 * time.Minute}

// openAtPool is openAt with pool options.
func (b tokenBackend) openAtPool(t *testing.T, url string, pool sqlstore.PoolOptions, opts sqlstore.TokenDBOptions) *sqlstore.TokenDB {
	t.Helper()
	if opts.Now == nil {
		opts.Now = newTickClock().Now
	}
	tdb, err := b.open(context.Background(), url, pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tdb.Close() })
	return tdb
}

// openTokenDB opens a fresh token database.
func (b tokenBackend) openTokenDB(t *testing.T, opts sqlstore.TokenDBOptions) *sqlstore.TokenDB {
	return b.openAt(t, b.fresh(t), opts)
}

// exec runs test SQL written with ? placeholders.
func exec(t *testing.T, tdb *sqlstore.TokenDB, query string, args ...any) {
	t.Helper()
	db := tdb.DB()
	if _, err := db.Write.ExecContext(context.Background(), db.Q(query), args...); err != nil {
		t.Fatal(err)
	}
}

func queryInt(t *testing.T, tdb *sqlstore.TokenDB, query string, args ...any) int64 {
	t.Helper()
	db := tdb.DB()
	var n int64
	if err := db.Read.QueryRowContext(context.Background(), db.Q(query), args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustAddNode(t *testing.T, tdb weave.TokenDB, url string, capacity int64) weave.Node {
	t.Helper()
	n, err := tdb.AddNode(context.Background(), weave.Node{URL: url, Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustAllocate(t *testing.T, tdb weave.TokenDB, email string, nu weave.NewTokenUser) weave.TokenUser {
	t.Helper()
	u, err := tdb.AllocateUser(context.Background(), email, nu)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustGetUser(t *testing.T, tdb weave.TokenDB, email string) weave.TokenUser {
	t.Helper()
	u, err := tdb.GetUser(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestTokenDBSchemaCheck(t *testing.T) {
	ctx := context.Background()
	b := tokenBackends[0]
	url := b.fresh(t)
	if _, err := sqlstore.OpenTokenDB(ctx, url, sqlstore.PoolOptions{}, false, sqlstore.TokenDBOptions{}); err == nil {
		t.Fatal("OpenTokenDB without Migrate on an empty database succeeded")
	}
	tdb := b.openAt(t, url, sqlstore.TokenDBOptions{})
	if err := tdb.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := sqlstore.OpenTokenDB(ctx, url, sqlstore.PoolOptions{}, false, sqlstore.TokenDBOptions{})
	if err != nil {
		t.Fatalf("reopen migrated database: %v", err)
	}
	again.Close()
}

func TestTokenDBUserLifecycle(t *testing.T) { forEachBackend(t, testTokenDBUserLifecycle) }

func testTokenDBUserLifecycle(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{})
	node := mustAddNode(t, tdb, "https://sync1.example.com/", 100)
	if node.URL != "https://sync1.example.com" || node.State != weave.NodeUp || node.Available != 10 || node.CurrentLoad != 0 {
		t.Fatalf("added node = %+v", node)
	}
	const email = "abc@api.accounts.firefox.com"

	if _, err := tdb.GetUser(ctx, email); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("GetUser of unknown account: err = %v, want ErrNotFound", err)
	}

	u1 := mustAllocate(t, tdb, email, weave.NewTokenUser{Generation: 10, ClientState: "aaaa", KeysChangedAt: 5})
	if u1.UID == 0 || u1.Node == nil || u1.Node.URL != node.URL || u1.Generation != 10 || u1.KeysChangedAt != 5 ||
		u1.ClientState != "aaaa" || u1.ReplacedAt != 0 || len(u1.OldClientStates) != 0 {
		t.Fatalf("allocated %+v", u1)
	}
	got := mustGetUser(t, tdb, email)
	if got.UID != u1.UID || got.NodeURL() != node.URL || got.Generation != 10 || got.KeysChangedAt != 5 ||
		got.FirstSeenAt != u1.CreatedAt || got.CreatedAt != u1.CreatedAt {
		t.Fatalf("GetUser = %+v, want %+v", got, u1)
	}
	if n, _ := tdb.NodeByID(ctx, node.ID); n.CurrentLoad != 1 || n.Available != 9 {
		t.Fatalf("node after allocation: %+v", n)
	}

	// Allocating again with the same client state converges on the record.
	if again := mustAllocate(t, tdb, email, weave.NewTokenUser{Generation: 11, ClientState: "aaaa"}); again.UID != u1.UID {
		t.Fatalf("re-allocation gave uid %d, want %d", again.UID, u1.UID)
	}

	// Forward-only updates.
	if err := tdb.UpdateUser(ctx, u1.UID, 20, 15); err != nil {
		t.Fatal(err)
	}
	if got := mustGetUser(t, tdb, email); got.Generation != 20 || got.KeysChangedAt != 15 {
		t.Fatalf("after update: %+v", got)
	}
	for _, tc := range []struct{ g, k int64 }{{19, 15}, {25, 14}, {10, 0}} {
		if err := tdb.UpdateUser(ctx, u1.UID, tc.g, tc.k); err != nil {
			t.Fatal(err)
		}
		if got := mustGetUser(t, tdb, email); got.Generation != 20 || got.KeysChangedAt != 15 {
			t.Fatalf("update (%d, %d) moved a value backwards: %+v", tc.g, tc.k, got)
		}
	}
	// keys_changed_at 0 keeps the stored value while generation moves on.
	if err := tdb.UpdateUser(ctx, u1.UID, 30, 0); err != nil {
		t.Fatal(err)
	}
	if got := mustGetUser(t, tdb, email); got.Generation != 30 || got.KeysChangedAt != 15 {
		t.Fatalf("after generation-only update: %+v", got)
	}

	// Client-state change: new uid on the same node, old record replaced.
	u2 := mustAllocate(t, tdb, email, weave.NewTokenUser{Generation: 40, ClientState: "bbbb", KeysChangedAt: 40, NodeID: u1.NodeID})
	if u2.UID == u1.UID || u2.NodeID != u1.NodeID || len(u2.OldClientStates) != 1 || u2.OldClientStates[0] != "aaaa" ||
		u2.FirstSeenAt != u1.CreatedAt {
		t.Fatalf("client-state change gave %+v", u2)
	}
	got = mustGetUser(t, tdb, email)
	if got.UID != u2.UID || got.ClientState != "bbbb" || len(got.OldClientStates) != 1 || got.OldClientStates[0] != "aaaa" {
		t.Fatalf("GetUser after client-state change: %+v", got)
	}
	old, err := tdb.UserByUID(ctx, u1.UID)
	if err != nil {
		t.Fatal(err)
	}
	if old.ReplacedAt != u2.CreatedAt {
		t.Fatalf("old record replaced_at = %d, want %d", old.ReplacedAt, u2.CreatedAt)
	}
	// A replaced record is never updated.
	if err := tdb.UpdateUser(ctx, u1.UID, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if old, _ := tdb.UserByUID(ctx, u1.UID); old.Generation != 30 {
		t.Fatalf("replaced record updated: %+v", old)
	}

	// Operator replaces the records: the current record reads as replaced
	// and the next allocation (copying its values) gives a new uid.
	if err := tdb.ReplaceUserRecords(ctx, email); err != nil {
		t.Fatal(err)
	}
	cur := mustGetUser(t, tdb, email)
	if cur.UID != u2.UID || cur.ReplacedAt == 0 {
		t.Fatalf("after ReplaceUserRecords: %+v", cur)
	}
	u3 := mustAllocate(t, tdb, email, weave.NewTokenUser{Generation: cur.Generation, ClientState: cur.ClientState, KeysChangedAt: cur.KeysChangedAt})
	if u3.UID == u2.UID || u3.ClientState != "bbbb" || u3.Generation != 40 {
		t.Fatalf("reallocation gave %+v", u3)
	}
	if got := mustGetUser(t, tdb, email); got.UID != u3.UID || got.ReplacedAt != 0 {
		t.Fatalf("GetUser after reallocation: %+v", got)
	}

	// Retire: every record retired; allocation returns the retired record.
	if err := tdb.RetireUser(ctx, email); err != nil {
		t.Fatal(err)
	}
	ret := mustGetUser(t, tdb, email)
	if !ret.Retired() || ret.ReplacedAt == 0 {
		t.Fatalf("after retire: %+v", ret)
	}
	if a := mustAllocate(t, tdb, email, weave.NewTokenUser{Generation: 50, ClientState: "cccc"}); !a.Retired() {
		t.Fatalf("allocation for a retired account gave %+v", a)
	}
	if old, _ := tdb.UserByUID(ctx, u1.UID); old.ReplacedAt != u2.CreatedAt {
		t.Fatalf("retire changed an old replaced_at: %+v", old)
	}

	// Delete gives the slot back.
	before, _ := tdb.NodeByID(ctx, node.ID)
	if err := tdb.DeleteUser(ctx, u1.UID); err != nil {
		t.Fatal(err)
	}
	after, _ := tdb.NodeByID(ctx, node.ID)
	if after.CurrentLoad != before.CurrentLoad-1 || after.Available != before.Available+1 {
		t.Fatalf("delete: node %+v → %+v", before, after)
	}
	if _, err := tdb.UserByUID(ctx, u1.UID); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("UserByUID of deleted record: %v", err)
	}
	if err := tdb.DeleteUser(ctx, u1.UID); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestTokenDBAllocateWithoutKeysChangedAt(t *testing.T) {
	forEachBackend(t, testTokenDBAllocateWithoutKeysChangedAt)
}

func testTokenDBAllocateWithoutKeysChangedAt(t *testing.T, b tokenBackend) {
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{})
	mustAddNode(t, tdb, "https://n.example.com", 10)
	u := mustAllocate(t, tdb, "x@d", weave.NewTokenUser{ClientState: ""})
	if got := mustGetUser(t, tdb, "x@d"); got.UID != u.UID || got.KeysChangedAt != 0 || got.Generation != 0 || got.ClientState != "" {
		t.Fatalf("%+v", got)
	}
}

// TestTokenDBRepairsCreationRaces writes the records a creation race leaves
// (several live records) straight into the table and checks §5.2 steps 1–2.
func TestTokenDBRepairsCreationRaces(t *testing.T) {
	forEachBackend(t, testTokenDBRepairsCreationRaces)
}

func testTokenDBRepairsCreationRaces(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{})
	node := mustAddNode(t, tdb, "https://n.example.com", 10)
	const email = "race@d"
	insert := func(gen int64, cs string, created int64) int64 {
		exec(t, tdb, `INSERT INTO token_users
			(service, email, generation, client_state, keys_changed_at, created_at, replaced_at, nodeid)
			VALUES ((SELECT id FROM token_services WHERE service = 'sync-1.5'), ?, ?, ?, NULL, ?, NULL, ?)`,
			email, gen, cs, created, node.ID)
		return queryInt(t, tdb, `SELECT uid FROM token_users WHERE email = ? AND created_at = ?`, email, created)
	}
	a := insert(5, "aa", 1000)
	bb := insert(9, "bb", 900) // highest generation, though older: current
	c := insert(5, "cc", 1100)
	d := insert(5, "aa", 800)

	cur := mustGetUser(t, tdb, email)
	if cur.UID != bb || cur.ClientState != "bb" || cur.FirstSeenAt != 800 {
		t.Fatalf("current = %+v, want uid %d", cur, bb)
	}
	if len(cur.OldClientStates) != 2 {
		t.Fatalf("old client states = %q, want aa and cc once each", cur.OldClientStates)
	}
	for _, uid := range []int64{a, c, d} {
		u, err := tdb.UserByUID(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if u.ReplacedAt != 900 {
			t.Fatalf("uid %d replaced_at = %d, want the current record's created_at 900", uid, u.ReplacedAt)
		}
	}
	if u, _ := tdb.UserByUID(ctx, bb); u.ReplacedAt != 0 {
		t.Fatalf("current record replaced: %+v", u)
	}
}

func TestTokenDBNodeStates(t *testing.T) { forEachBackend(t, testTokenDBNodeStates) }

func testTokenDBNodeStates(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{})
	up := mustAddNode(t, tdb, "https://up.example.com", 100)
	var others []weave.Node
	for _, st := range []weave.NodeState{weave.NodeBackoff, weave.NodeDraining, weave.NodeDown} {
		n, err := tdb.AddNode(ctx, weave.Node{URL: "https://" + string(st) + ".example.com", Capacity: 100, State: st})
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, n)
	}
	for i := range 20 {
		u := mustAllocate(t, tdb, fmt.Sprintf("u%d@d", i), weave.NewTokenUser{ClientState: "aa"})
		if u.NodeID != up.ID {
			t.Fatalf("user allocated to node %d (%s); only %d is up", u.NodeID, u.Node.State, up.ID)
		}
	}

	// Nothing up: no node.
	if err := tdb.SetNodeState(ctx, up.ID, weave.NodeDraining, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.AllocateUser(ctx, "new@d", weave.NewTokenUser{}); !errors.Is(err, weave.ErrNoNode) {
		t.Fatalf("allocation with no node up: %v, want ErrNoNode", err)
	}

	// A client-state change keeps a backoff node, leaves a draining or
	// down one (the new uid has no data to keep there).
	if err := tdb.SetNodeState(ctx, up.ID, weave.NodeUp, 0, 0); err != nil {
		t.Fatal(err)
	}
	backoff, draining, down := others[0], others[1], others[2]
	for _, tc := range []struct {
		pref weave.Node
		want int64
	}{{backoff, backoff.ID}, {draining, up.ID}, {down, up.ID}, {weave.Node{ID: 9999}, up.ID}} {
		u := mustAllocate(t, tdb, "pref-"+tc.pref.URL+"@d", weave.NewTokenUser{ClientState: "aa", NodeID: tc.pref.ID})
		if u.NodeID != tc.want {
			t.Errorf("preferred node %d (%s): got node %d, want %d", tc.pref.ID, tc.pref.State, u.NodeID, tc.want)
		}
	}

	// State hints round-trip in whole seconds.
	if err := tdb.SetNodeState(ctx, down.ID, weave.NodeDown, 90*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if err := tdb.SetNodeState(ctx, backoff.ID, weave.NodeBackoff, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, _ := tdb.NodeByID(ctx, down.ID); n.State != weave.NodeDown || n.RetryAfter != 90*time.Second {
		t.Fatalf("down node = %+v", n)
	}
	if n, _ := tdb.NodeByURL(ctx, backoff.URL+"/"); n.State != weave.NodeBackoff || n.Backoff != 30*time.Second {
		t.Fatalf("backoff node = %+v", n)
	}
	if err := tdb.SetNodeState(ctx, down.ID, "sideways", 0, 0); err == nil {
		t.Fatal("SetNodeState accepted an unknown state")
	}
	if err := tdb.SetNodeState(ctx, 9999, weave.NodeUp, 0, 0); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("SetNodeState of a missing node: %v", err)
	}
}

func TestTokenDBNodeManagement(t *testing.T) { forEachBackend(t, testTokenDBNodeManagement) }

func testTokenDBNodeManagement(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{})
	a := mustAddNode(t, tdb, "https://a.example.com", 10)
	if _, err := tdb.AddNode(ctx, weave.Node{URL: "https://a.example.com/", Capacity: 5}); !errors.Is(err, weave.ErrNodeExists) {
		t.Fatalf("duplicate AddNode: %v, want ErrNodeExists", err)
	}
	if _, err := tdb.AddNode(ctx, weave.Node{URL: "", Capacity: 5}); err == nil {
		t.Fatal("AddNode accepted an empty URL")
	}
	e, err := tdb.EnsureNode(ctx, weave.Node{URL: "https://a.example.com", Capacity: 999})
	if err != nil || e.ID != a.ID || e.Capacity != 10 {
		t.Fatalf("EnsureNode of an existing node = %+v, %v", e, err)
	}
	nb, err := tdb.EnsureNode(ctx, weave.Node{URL: "https://b.example.com", Capacity: 1000, DatabaseURL: "sqlite:///b.db"})
	if err != nil || nb.ID == a.ID || nb.Available != 100 || nb.DatabaseURL != "sqlite:///b.db" {
		t.Fatalf("EnsureNode of a new node = %+v, %v", nb, err)
	}
	if _, err := tdb.NodeByURL(ctx, "https://nope.example.com"); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("NodeByURL of a missing node: %v", err)
	}

	ua := mustAllocate(t, tdb, "a@d", weave.NewTokenUser{NodeID: a.ID})
	mustAllocate(t, tdb, "a2@d", weave.NewTokenUser{NodeID: a.ID})
	ub := mustAllocate(t, tdb, "b@d", weave.NewTokenUser{NodeID: nb.ID})
	nodes, err := tdb.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != a.ID || nodes[0].Users != 2 || nodes[1].Users != 1 || nodes[0].CurrentLoad != 2 {
		t.Fatalf("Nodes = %+v", nodes)
	}

	if err := tdb.SetNodeCapacity(ctx, a.ID, 3); err != nil {
		t.Fatal(err)
	}
	if n, _ := tdb.NodeByID(ctx, a.ID); n.Capacity != 3 || n.Available > 1 {
		t.Fatalf("after SetNodeCapacity: %+v", n)
	}

	// Unassign a: its users read as replaced and get new uids elsewhere.
	if n, err := tdb.UnassignNode(ctx, a.ID); err != nil || n != 2 {
		t.Fatalf("UnassignNode = %d, %v", n, err)
	}
	cur := mustGetUser(t, tdb, "a@d")
	if cur.UID != ua.UID || cur.ReplacedAt == 0 {
		t.Fatalf("after unassign: %+v", cur)
	}

	// Remove node b: its user's record is replaced and its node is gone.
	if err := tdb.RemoveNode(ctx, nb.ID); err != nil {
		t.Fatal(err)
	}
	if err := tdb.RemoveNode(ctx, nb.ID); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("second RemoveNode: %v", err)
	}
	cur = mustGetUser(t, tdb, "b@d")
	if cur.UID != ub.UID || cur.ReplacedAt == 0 || cur.Node != nil || cur.NodeURL() != "" {
		t.Fatalf("after remove: %+v", cur)
	}
	// Its record can still be purged.
	if err := tdb.DeleteUser(ctx, ub.UID); err != nil {
		t.Fatal(err)
	}
}

// TestTokenDBLiveRecordOnRemovedNode: a live record whose node vanished is
// not usable, so allocation gives a new uid (§5.2 step 4).
func TestTokenDBLiveRecordOnRemovedNode(t *testing.T) {
	forEachBackend(t, testTokenDBLiveRecordOnRemovedNode)
}

func testTokenDBLiveRecordOnRemovedNode(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{})
	a := mustAddNode(t, tdb, "https://a.example.com", 10)
	nb := mustAddNode(t, tdb, "https://b.example.com", 10)
	u := mustAllocate(t, tdb, "x@d", weave.NewTokenUser{ClientState: "aa", NodeID: a.ID})
	exec(t, tdb, `DELETE FROM token_nodes WHERE id = ?`, a.ID)
	cur := mustGetUser(t, tdb, "x@d")
	if cur.ReplacedAt != 0 || cur.Node != nil {
		t.Fatalf("%+v", cur)
	}
	n := mustAllocate(t, tdb, "x@d", weave.NewTokenUser{ClientState: "aa"})
	if n.UID == u.UID || n.NodeID != nb.ID {
		t.Fatalf("allocation gave %+v", n)
	}
	if old, _ := tdb.UserByUID(ctx, u.UID); old.ReplacedAt != n.CreatedAt {
		t.Fatalf("old record not replaced: %+v", old)
	}
}

func TestTokenDBCapacityRelease(t *testing.T) { forEachBackend(t, testTokenDBCapacityRelease) }

func testTokenDBCapacityRelease(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{})
	n := mustAddNode(t, tdb, "https://n.example.com", 25) // rate 0.1: 3 slots at a time
	if n.Available != 3 {
		t.Fatalf("available = %d, want ceil(25×0.1) = 3", n.Available)
	}
	for i := range 25 {
		mustAllocate(t, tdb, fmt.Sprintf("u%d@d", i), weave.NewTokenUser{})
	}
	got, _ := tdb.NodeByID(ctx, n.ID)
	if got.CurrentLoad != 25 || got.Available != 0 {
		t.Fatalf("full node: %+v", got)
	}
	if _, err := tdb.AllocateUser(ctx, "over@d", weave.NewTokenUser{}); !errors.Is(err, weave.ErrNoNode) {
		t.Fatalf("allocation beyond capacity: %v", err)
	}
	// Purging a record frees a slot again.
	u := mustGetUser(t, tdb, "u0@d")
	if err := tdb.DeleteUser(ctx, u.UID); err != nil {
		t.Fatal(err)
	}
	mustAllocate(t, tdb, "over@d", weave.NewTokenUser{})
}

// TestTokenDBCapacityReleaseBackoff: a release gives slots to nodes in
// backoff too (they get no new users until they are up again), as
// Mozilla's release leaves out only downed nodes; draining and down nodes
// get none.
func TestTokenDBCapacityReleaseBackoff(t *testing.T) {
	forEachBackend(t, testTokenDBCapacityReleaseBackoff)
}

func testTokenDBCapacityReleaseBackoff(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{}) // rate 0.1: 1 slot of 10
	up := mustAddNode(t, tdb, "https://up.example.com", 10)
	var others []weave.Node
	for _, name := range []string{"backoff", "draining", "down"} {
		others = append(others, mustAddNode(t, tdb, "https://"+name+".example.com", 10))
	}
	for i := range 4 { // one user each: every released slot taken
		mustAllocate(t, tdb, fmt.Sprintf("u%d@d", i), weave.NewTokenUser{})
	}
	backoff, draining, down := others[0], others[1], others[2]
	for n, st := range map[int64]weave.NodeState{backoff.ID: weave.NodeBackoff, draining.ID: weave.NodeDraining, down.ID: weave.NodeDown} {
		if err := tdb.SetNodeState(ctx, n, st, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if u := mustAllocate(t, tdb, "new@d", weave.NewTokenUser{}); u.NodeID != up.ID {
		t.Fatalf("new user on node %d, want the up node %d", u.NodeID, up.ID)
	}
	for _, tc := range []struct {
		n    weave.Node
		want int64
	}{{up, 0}, {backoff, 1}, {draining, 0}, {down, 0}} {
		got, err := tdb.NodeByID(ctx, tc.n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Available != tc.want || got.CurrentLoad != map[bool]int64{true: 2, false: 1}[tc.n.ID == up.ID] {
			t.Errorf("%s after a release: available %d (want %d), load %d", tc.n.URL, got.Available, tc.want, got.CurrentLoad)
		}
	}
	// Back up, the node takes new users with the slot it was given.
	if err := tdb.SetNodeState(ctx, backoff.ID, weave.NodeUp, 0, 0); err != nil {
		t.Fatal(err)
	}
	if u := mustAllocate(t, tdb, "next@d", weave.NewTokenUser{}); u.NodeID != backoff.ID {
		t.Fatalf("after backoff: new user on node %d, want %d", u.NodeID, backoff.ID)
	}
}

// TestTokenDBSelectionOrder: least current_load/capacity first, ties by id.
func TestTokenDBSelectionOrder(t *testing.T) { forEachBackend(t, testTokenDBSelectionOrder) }

func testTokenDBSelectionOrder(t *testing.T, b tokenBackend) {
	// Release rate 1: every slot is available, so only the ratio decides.
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{ReleaseRate: 1})
	small := mustAddNode(t, tdb, "https://small.example.com", 10)
	mustAddNode(t, tdb, "https://big.example.com", 30)
	seq := ""
	for i := range 9 {
		u := mustAllocate(t, tdb, fmt.Sprintf("u%d@d", i), weave.NewTokenUser{})
		if u.NodeID == small.ID {
			seq += "s"
		} else {
			seq += "b"
		}
	}
	// Ratios before each pick (small vs big): 0 = 0 → small (lower id);
	// .1 > 0, .1 > .033, .1 > .067 → big ×3; .1 = .1 → small; .2 > .1,
	// .133, .167 → big ×3; .2 = .2 → small.
	if want := "sbbbsbbbs"; seq != want {
		t.Fatalf("allocation order %s, want %s", seq, want)
	}
}

// TestTokenDBConcurrentAllocation allocates many users at once across nodes
// of different capacities, from two independent connections pools on the
// same file (as two processes would), and checks the load accounting.
func TestTokenDBConcurrentAllocation(t *testing.T) {
	forEachBackend(t, testTokenDBConcurrentAllocation)
}

func testTokenDBConcurrentAllocation(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	url := b.fresh(t)
	clock := newTickClock()
	db1 := b.openAtPool(t, url, queuedPool, sqlstore.TokenDBOptions{Now: clock.Now})
	db2 := b.openAtPool(t, url, queuedPool, sqlstore.TokenDBOptions{Now: clock.Now})
	caps := []int64{40, 80, 120}
	var nodes []weave.Node
	for i, c := range caps {
		nodes = append(nodes, mustAddNode(t, db1, fmt.Sprintf("https://n%d.example.com", i), c))
	}
	// A node that must never receive users.
	if _, err := db1.AddNode(ctx, weave.Node{URL: "https://down.example.com", Capacity: 1000, State: weave.NodeDown}); err != nil {
		t.Fatal(err)
	}

	const users = 120
	var wg sync.WaitGroup
	errs := make(chan error, users)
	uids := make([]int64, users)
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tdb := db1
			if i%2 == 1 {
				tdb = db2
			}
			u, err := tdb.AllocateUser(ctx, fmt.Sprintf("user%d@d", i), weave.NewTokenUser{ClientState: "aa"})
			if err != nil {
				errs <- err
				return
			}
			uids[i] = u.UID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, uid := range uids {
		if seen[uid] {
			t.Fatalf("uid %d issued twice", uid)
		}
		seen[uid] = true
	}
	list, err := db1.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, n := range list {
		if n.CurrentLoad != n.Users {
			t.Errorf("node %s: current_load %d but %d live users", n.URL, n.CurrentLoad, n.Users)
		}
		if n.CurrentLoad > n.Capacity {
			t.Errorf("node %s over capacity: %d > %d", n.URL, n.CurrentLoad, n.Capacity)
		}
		if n.State == weave.NodeDown && n.Users != 0 {
			t.Errorf("down node got %d users", n.Users)
		}
		total += n.CurrentLoad
	}
	if total != users {
		t.Fatalf("total load %d, want %d", total, users)
	}
	// 120 of 240 slots: the ratio ordering keeps the nodes within a few
	// users of half full each.
	for i, n := range list[:len(nodes)] {
		want := caps[i] * users / 240
		if d := n.CurrentLoad - want; d < -3 || d > 3 {
			t.Errorf("node %s: load %d, want about %d", n.URL, n.CurrentLoad, want)
		}
	}
}

// TestTokenDBConcurrentFirstRequests: many simultaneous allocations for the
// same new account converge on one record.
func TestTokenDBConcurrentFirstRequests(t *testing.T) {
	forEachBackend(t, testTokenDBConcurrentFirstRequests)
}

func testTokenDBConcurrentFirstRequests(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	url := b.fresh(t)
	clock := newTickClock()
	db1 := b.openAtPool(t, url, queuedPool, sqlstore.TokenDBOptions{Now: clock.Now})
	db2 := b.openAtPool(t, url, queuedPool, sqlstore.TokenDBOptions{Now: clock.Now})
	mustAddNode(t, db1, "https://a.example.com", 100)
	mustAddNode(t, db1, "https://b.example.com", 100)

	const n = 40
	var wg sync.WaitGroup
	uids := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tdb := db1
			if i%2 == 1 {
				tdb = db2
			}
			u, err := tdb.AllocateUser(ctx, "same@d", weave.NewTokenUser{Generation: int64(i), ClientState: "aa"})
			uids[i], errs[i] = u.UID, err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if uids[i] != uids[0] {
			t.Fatalf("request %d got uid %d, request 0 got %d", i, uids[i], uids[0])
		}
	}
	if live := queryInt(t, db1, `SELECT COUNT(*) FROM token_users WHERE email = 'same@d' AND replaced_at IS NULL`); live != 1 {
		t.Fatalf("%d live records, want 1", live)
	}
}

func TestTokenDBKeepOpen(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, tokenBackends[0].fresh(t), sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, err := sqlite.Migrations(sqlstore.SetTokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, sqlstore.SetTokens, ms, nil); err != nil {
		t.Fatal(err)
	}
	tdb := sqlstore.NewTokenDB(db, sqlstore.TokenDBOptions{KeepOpen: true, Service: "sync-1.6"})
	mustAddNode(t, tdb, "https://a.example.com", 10) // creates the service row
	if err := tdb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Write.PingContext(ctx); err != nil {
		t.Fatalf("KeepOpen TokenDB closed the DB: %v", err)
	}
	// Another service sees none of the first one's nodes.
	other := sqlstore.NewTokenDB(db, sqlstore.TokenDBOptions{KeepOpen: true})
	if ns, err := other.Nodes(ctx); err != nil || len(ns) != 0 {
		t.Fatalf("sync-1.5 nodes = %v, %v", ns, err)
	}
}
