package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/storagetest"
)

// servers are the database servers every test here runs on, once each:
// the same SQL over each Dialect, so one table instead of a copy of each
// test per backend package. (SQLite runs the same suites in package
// sqlite, on files.)
var servers = []struct {
	name  string
	fresh func(testing.TB) string
	// uidMarker is how a uid appears on the wire in statements: its
	// decimal text for MySQL, its eight big-endian bytes for PostgreSQL.
	uidMarker func(uid int64) string
}{
	{"mysql", dbtest.MySQL, sqltest.DecimalMarker},
	{"postgres", dbtest.Postgres, sqltest.BinaryMarker},
}

// kinds are every backend, for the tests of a schema set.
var kinds = []string{"sqlite", "mysql", "postgres"}

// migratedDB opens a fresh database of kind, migrated to set, which must
// have want migrations; it checks that the schema is then current.
func migratedDB(t *testing.T, kind, set string, want int) *sqlstore.DB {
	t.Helper()
	ctx := context.Background()
	url := dbtest.Fresh(t, kind)
	be, err := sqlstore.Lookup(url)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := be.MigrationsOf(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != want {
		t.Fatalf("%d %s migrations, want %d", len(ms), set, want)
	}
	db, err := sqlstore.Open(ctx, url, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, set, ms, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckSchema(ctx, set, ms); err != nil {
		t.Fatal(err)
	}
	return db
}

func eachServer(t *testing.T, fn func(t *testing.T, fresh func(testing.TB) string, uidMarker func(int64) string)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) { fn(t, s.fresh, s.uidMarker) })
	}
}

func TestServerStorage(t *testing.T) {
	eachServer(t, func(t *testing.T, fresh func(testing.TB) string, _ func(int64) string) {
		url := fresh(t)
		s := sqltest.OpenStore(t, url, sqlstore.StoreOptions{})
		storagetest.Run(t, func(*testing.T) weave.Store { return s },
			storagetest.WithBatchLifetime(func(t *testing.T, lifetime time.Duration) weave.Store {
				return sqltest.OpenStore(t, url, sqlstore.StoreOptions{BatchLifetime: lifetime})
			}))
	})
}

func TestServerOpenStoreMigrates(t *testing.T) {
	eachServer(t, func(t *testing.T, fresh func(testing.TB) string, _ func(int64) string) {
		sqltest.RunOpenStore(t, fresh)
	})
}

func TestServerDB(t *testing.T) {
	eachServer(t, func(t *testing.T, fresh func(testing.TB) string, _ func(int64) string) {
		sqltest.Run(t, sqltest.Backend{
			Fresh: fresh,
			Open: func(ctx context.Context, url string, o sqltest.Opts) (*sqlstore.DB, error) {
				return sqlstore.Open(ctx, url, sqlstore.PoolOptions{Timeout: o.Timeout, LockTimeout: o.LockTimeout, MaxRetries: o.MaxRetries})
			},
		})
	})
}

func TestServerTokenDB(t *testing.T) {
	eachServer(t, func(t *testing.T, fresh func(testing.TB) string, _ func(int64) string) {
		sqltest.RunTokenDB(t, fresh, func(ctx context.Context, url string) (*sqlstore.TokenDB, error) {
			return sqlstore.OpenTokenDB(ctx, url, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		})
	})
}

// TestServerStoreFaults cuts the database connection under a Store in the
// middle of batch commits and POSTs, and stops and hangs the server
// (through a fault proxy on 127.0.0.1).
func TestServerStoreFaults(t *testing.T) {
	eachServer(t, func(t *testing.T, fresh func(testing.TB) string, uidMarker func(int64) string) {
		sqltest.RunStoreFaults(t, sqltest.StoreBackend{
			Fresh: fresh,
			OpenStore: func(ctx context.Context, url string, timeout time.Duration) (*sqlstore.Store, error) {
				return sqlstore.OpenStore(ctx, url, sqlstore.PoolOptions{Timeout: timeout}, true, sqlstore.StoreOptions{})
			},
			UIDMarker: uidMarker,
		})
	})
}

func BenchmarkServerStore(b *testing.B) {
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			storagetest.Bench(b, sqltest.OpenStore(b, s.fresh(b), sqlstore.StoreOptions{}))
		})
	}
}
