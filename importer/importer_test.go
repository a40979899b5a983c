package importer_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestImportUserRecords checks the token side of an import on every
// dialect: records keep their uids and fields, a second import is a no-op,
// a uid held by another account is refused, and uids allocated afterwards
// never reuse an imported one. (The whole import is tested with MariaDB in
// cmd/weave.)
func TestImportUserRecords(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		open func(t *testing.T) (*sqlstore.TokenDB, error)
	}{
		{"sqlite", func(t *testing.T) (*sqlstore.TokenDB, error) {
			return sqlite.OpenTokenDB(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "tokens.db")), sqlite.TokenDBOptions{Migrate: true})
		}},
		{"mysql", func(t *testing.T) (*sqlstore.TokenDB, error) {
			return mysql.OpenTokenDB(ctx, dbtest.MySQL(t), mysql.TokenDBOptions{Migrate: true})
		}},
		{"postgres", func(t *testing.T) (*sqlstore.TokenDB, error) {
			return postgres.OpenTokenDB(ctx, dbtest.Postgres(t), postgres.TokenDBOptions{Migrate: true})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tokens, err := tc.open(t)
			if err != nil {
				t.Fatal(err)
			}
			defer tokens.Close()
			node, err := tokens.AddNode(ctx, weave.Node{URL: "http://127.0.0.1:9", Capacity: 10})
			if err != nil {
				t.Fatal(err)
			}
			email := "abc@api.accounts.firefox.com"
			recs := []weave.TokenUser{
				{UID: 30, Email: email, Generation: 5, ClientState: "aa", KeysChangedAt: 100, CreatedAt: 1000, ReplacedAt: 2000},
				{UID: 77, Email: email, Generation: 9, ClientState: "bb", CreatedAt: 2000},
			}
			for round, wantN := range []int{2, 0} {
				n, err := tokens.ImportUserRecords(ctx, node.ID, recs)
				if err != nil || n != wantN {
					t.Fatalf("round %d: inserted %d (%v), want %d", round, n, err, wantN)
				}
			}
			for _, r := range recs {
				got, err := tokens.UserByUID(ctx, r.UID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Email != r.Email || got.Generation != r.Generation || got.ClientState != r.ClientState ||
					got.KeysChangedAt != r.KeysChangedAt || got.CreatedAt != r.CreatedAt || got.ReplacedAt != r.ReplacedAt || got.NodeID != node.ID {
					t.Errorf("uid %d: %+v, want %+v", r.UID, got, r)
				}
			}
			cur, err := tokens.GetUser(ctx, email)
			if err != nil || cur.UID != 77 || len(cur.OldClientStates) != 1 || cur.OldClientStates[0] != "aa" {
				t.Errorf("current record %+v (%v)", cur, err)
			}
			if n, err := tokens.NodeByID(ctx, node.ID); err != nil || n.CurrentLoad != 1 {
				t.Errorf("node load %d (%v), want 1 (the live record)", n.CurrentLoad, err)
			}
			_, err = tokens.ImportUserRecords(ctx, node.ID, []weave.TokenUser{{UID: 77, Email: "other@x", CreatedAt: 1}})
			if err == nil || !strings.Contains(err.Error(), "already taken") {
				t.Errorf("conflicting uid: %v", err)
			}
			nu, err := tokens.AllocateUser(ctx, "new@api.accounts.firefox.com", weave.NewTokenUser{Generation: 1})
			if err != nil || nu.UID <= 77 {
				t.Errorf("new user uid %d (%v), want > 77", nu.UID, err)
			}
		})
	}
}
