package postgres

import (
	"context"
	"fmt"

	"github.com/weave-sync/weave/sqlstore"
)

// OpenStore opens the database of a postgres:// URL, brings its storage schema
// up to date (or, with opts.NoMigrate, checks that it is) and returns a Store
// on it. Closing the Store closes the database.
func OpenStore(ctx context.Context, dsn string, opts Options) (*sqlstore.Store, error) {
	open := func() (*sqlstore.DB, error) { return Open(ctx, dsn, opts) }
	db, err := sqlstore.OpenSet(ctx, open, Migrations, sqlstore.SetStorage, !opts.NoMigrate)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return sqlstore.NewStore(db, opts.Store), nil
}

// TokenDBOptions configure OpenTokenDB.
type TokenDBOptions struct {
	Options
	TokenDB sqlstore.TokenDBOptions
	// Migrate applies pending migrations of the "tokens" schema set first;
	// without it the schema must already be current.
	Migrate bool
}

// OpenTokenDB opens the token database of a postgres:// URL. The returned
// TokenDB owns the database: Close closes it.
func OpenTokenDB(ctx context.Context, dsn string, opts TokenDBOptions) (*sqlstore.TokenDB, error) {
	open := func() (*sqlstore.DB, error) { return Open(ctx, dsn, opts.Options) }
	db, err := sqlstore.OpenSet(ctx, open, Migrations, sqlstore.SetTokens, opts.Migrate)
	if err != nil {
		return nil, fmt.Errorf("postgres: token database: %w", err)
	}
	tok := opts.TokenDB
	tok.KeepOpen = false
	return sqlstore.NewTokenDB(db, tok), nil
}
