package mysql_test

import (
	"context"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	_ "github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
)

func TestTokenDB(t *testing.T) {
	sqltest.RunTokenDB(t, dbtest.MySQL, func(ctx context.Context, url string) (*sqlstore.TokenDB, error) {
		return sqlstore.OpenTokenDB(ctx, url, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
	})
}
