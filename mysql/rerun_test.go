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
// runs again from its start; every statement must then be harmless.
func TestStorageMigrationsRerun(t *testing.T) {
	ctx := context.Background()
	url := dbtest.MySQL(t)
	s, err := sqlstore.OpenStore(ctx, url, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ms, err := mysql.Migrations(sqlstore.SetStorage)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.DB().Write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range ms {
		for _, stmt := range sqlstore.SplitStatements(m.SQL) {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				t.Errorf("%s run again: %v\n%s", m.Name, err, stmt)
			}
		}
	}
}
