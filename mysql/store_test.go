package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	_ "github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/storagetest"
)

// openStore opens a migrated store on url, closed when t ends.
func openStore(t testing.TB, url string, opts sqlstore.StoreOptions) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenStore(context.Background(), url, sqlstore.PoolOptions{}, true, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStorage(t *testing.T) {
	url := dbtest.MySQL(t)
	s := openStore(t, url, sqlstore.StoreOptions{})
	storagetest.Run(t, func(*testing.T) weave.Store { return s },
		storagetest.WithBatchLifetime(func(t *testing.T, lifetime time.Duration) weave.Store {
			return openStore(t, url, sqlstore.StoreOptions{BatchLifetime: lifetime})
		}))
}

func TestOpenStoreMigrates(t *testing.T) {
	sqltest.RunOpenStore(t, dbtest.MySQL)
}

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, openStore(b, dbtest.MySQL(b), sqlstore.StoreOptions{}))
}
