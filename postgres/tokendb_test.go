package postgres_test

import (
	"context"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

func TestTokenDB(t *testing.T) {
	sqltest.RunTokenDB(t, dbtest.Postgres, func(ctx context.Context, url string) (*sqlstore.TokenDB, error) {
		return postgres.OpenTokenDB(ctx, url, postgres.TokenDBOptions{Migrate: true})
	})
}
