package mysql_test

import (
	"context"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
)

// TestStorageMigrationsRerun: MySQL commits DDL implicitly, so a migration
// that stopped after its statements but before its version was recorded
// runs again from its start; every statement must then be harmless. The
// shared migrations (sqlstore/migrations) are rendered for that too.
func TestStorageMigrationsRerun(t *testing.T) {
	ctx := context.Background()
	url := dbtest.MySQL(t)
	s, err := sqlstore.OpenStore(ctx, url, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := s.DB().Write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, set := range []string{sqlstore.SetStorage, sqlstore.SetTokens, sqlstore.SetAccounts, sqlstore.SetPush} {
		ms, err := mysql.Migrations(set)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DB().Migrate(ctx, set, ms, nil); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			for _, stmt := range sqlstore.SplitStatements(m.SQL) {
				if _, err := conn.ExecContext(ctx, stmt); err != nil {
					t.Errorf("%s/%s run again: %v\n%s", set, m.Name, err, stmt)
				}
			}
		}
	}
}
