package sqlite

import (
	"context"
	"fmt"

	"github.com/weave-sync/weave/sqlstore"
)

// TokenDBOptions configure OpenTokenDB.
type TokenDBOptions struct {
	Options // the pools; NoMigrate and Store are not used
	TokenDB sqlstore.TokenDBOptions
	// Migrate applies pending migrations of the "tokens" schema set first;
	// without it the schema must already be current.
	Migrate bool
}

// OpenTokenDB opens the token database of a sqlite:// URL. The returned
// TokenDB owns the database: Close closes it.
func OpenTokenDB(ctx context.Context, dsn string, opts TokenDBOptions) (*sqlstore.TokenDB, error) {
	open := func() (*sqlstore.DB, error) { return Open(ctx, dsn, opts.Options) }
	db, err := sqlstore.OpenSet(ctx, open, Migrations, sqlstore.SetTokens, opts.Migrate)
	if err != nil {
		return nil, fmt.Errorf("sqlite: token database: %w", err)
	}
	tok := opts.TokenDB
	tok.KeepOpen = false
	return sqlstore.NewTokenDB(db, tok), nil
}
