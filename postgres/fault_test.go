package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

// TestStoreFaults cuts the database connection under a Store in the middle
// of batch commits and POSTs, and stops and hangs the server (through a
// fault proxy on 127.0.0.1).
func TestStoreFaults(t *testing.T) {
	sqltest.RunStoreFaults(t, sqltest.StoreBackend{
		Fresh: dbtest.Postgres,
		OpenStore: func(ctx context.Context, url string, timeout time.Duration) (*sqlstore.Store, error) {
			return sqlstore.OpenStore(ctx, url, sqlstore.PoolOptions{Timeout: timeout}, true, sqlstore.StoreOptions{})
		},
		UIDMarker: sqltest.BinaryMarker,
	})
}
