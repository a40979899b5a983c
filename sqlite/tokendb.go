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
	ms, err := Migrations(sqlstore.SetTokens)
	if err != nil {
		return nil, err
	}
	db, err := Open(ctx, dsn, opts.Options)
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
		return nil, fmt.Errorf("sqlite: token database: %w", err)
	}
	tok := opts.TokenDB
	tok.KeepOpen = false
	return sqlstore.NewTokenDB(db, tok), nil
}
