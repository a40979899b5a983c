package mysql

import (
	"context"
	"fmt"

	"github.com/weave-sync/weave/sqlstore"
)

// OpenStore opens the database of a mysql:// URL, brings its storage schema
// up to date (or, with opts.NoMigrate, checks that it is) and returns a Store
// on it. Closing the Store closes the database.
func OpenStore(ctx context.Context, rawURL string, opts Options) (*sqlstore.Store, error) {
	db, err := Open(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	ms, err := Migrations(sqlstore.SetStorage)
	if err == nil {
		if opts.NoMigrate {
			err = db.CheckSchema(ctx, sqlstore.SetStorage, ms)
		} else {
			err = db.Migrate(ctx, sqlstore.SetStorage, ms, nil)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: %w", err)
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

// OpenTokenDB opens the token database of a mysql:// URL. The returned
// TokenDB owns the database: Close closes it.
func OpenTokenDB(ctx context.Context, rawURL string, opts TokenDBOptions) (*sqlstore.TokenDB, error) {
	ms, err := Migrations(sqlstore.SetTokens)
	if err != nil {
		return nil, err
	}
	db, err := Open(ctx, rawURL, opts.Options)
	if err != nil {
		return nil, err
	}
	if opts.Migrate {
		err = db.Migrate(ctx, sqlstore.SetTokens, ms, nil)
	} else {
		err = db.CheckSchema(ctx, sqlstore.SetTokens, ms)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: token database: %w", err)
	}
	tok := opts.TokenDB
	tok.KeepOpen = false
	return sqlstore.NewTokenDB(db, tok), nil
}
