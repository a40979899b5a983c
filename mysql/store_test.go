package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/storagetest"
)

// openStore opens a migrated store on url, closed when t ends.
func openStore(t testing.TB, url string, opts mysql.Options) *sqlstore.Store {
	t.Helper()
	s, err := mysql.OpenStore(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStorage(t *testing.T) {
	url := dbtest.MySQL(t)
	s := openStore(t, url, mysql.Options{})
	storagetest.Run(t, func(*testing.T) weave.Store { return s },
		storagetest.WithBatchLifetime(func(t *testing.T, lifetime time.Duration) weave.Store {
			return openStore(t, url, mysql.Options{Store: sqlstore.StoreOptions{BatchLifetime: lifetime}})
		}))
}

func TestOpenStoreMigrates(t *testing.T) {
	sqltest.RunOpenStore(t, sqltest.Opener{
		Fresh: dbtest.MySQL,
		OpenStore: func(ctx context.Context, url string, noMigrate bool) (*sqlstore.Store, error) {
			return mysql.OpenStore(ctx, url, mysql.Options{NoMigrate: noMigrate})
		},
		OpenTokenDB: func(ctx context.Context, url string, migrate bool) (*sqlstore.TokenDB, error) {
			return mysql.OpenTokenDB(ctx, url, mysql.TokenDBOptions{Migrate: migrate})
		},
		Migrations: mysql.Migrations,
	})
}

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, openStore(b, dbtest.MySQL(b), mysql.Options{}))
}
