package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/push/pushtest"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestPushStore runs the push.Store conformance suite on every backend,
// each subtest on a fresh database migrated to the "push" set.
func TestPushStore(t *testing.T) {
	ctx := context.Background()
	for _, b := range pushBackends(ctx) {
		t.Run(b.name, func(t *testing.T) {
			pushtest.Run(t, func(t *testing.T) push.Store { return b.store(t) })
		})
	}
}

type pushBackend struct {
	name string
	open func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error)
}

// store opens a fresh database migrated to the "push" set.
func (b pushBackend) store(t *testing.T) *sqlstore.PushStore {
	ctx := context.Background()
	db, ms, err := b.open(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if len(ms) != 1 {
		t.Fatalf("%d push migrations", len(ms))
	}
	if err := db.Migrate(ctx, sqlstore.SetPush, ms, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckSchema(ctx, sqlstore.SetPush, ms); err != nil {
		t.Fatal(err)
	}
	return sqlstore.NewPushStore(db)
}

func pushBackends(ctx context.Context) []pushBackend {
	return []pushBackend{
		{"sqlite", func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error) {
			db, err := sqlite.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "push.db"), sqlstore.PoolOptions{})
			ms, _ := sqlite.Migrations(sqlstore.SetPush)
			return db, ms, err
		}},
		{"mysql", func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error) {
			db, err := mysql.Open(ctx, dbtest.MySQL(t), sqlstore.PoolOptions{})
			ms, _ := mysql.Migrations(sqlstore.SetPush)
			return db, ms, err
		}},
		{"postgres", func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error) {
			db, err := postgres.Open(ctx, dbtest.Postgres(t), sqlstore.PoolOptions{})
			ms, _ := postgres.Migrations(sqlstore.SetPush)
			return db, ms, err
		}},
	}
}
