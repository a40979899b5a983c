package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	// The backends weave runs on register themselves with sqlstore.
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

// dbFlags are the database settings shared by every command that opens one.
type dbFlags struct {
	dataDir         string
	databaseURL     string
	tokenURL        string
	maxConns        int
	connMaxLifetime time.Duration
	timeout         time.Duration
}

func (f *dbFlags) register(c *cli.Command) {
	c.String(&f.dataDir, "data-dir", "./weave-data", "directory for the SQLite database and the generated master secret")
	c.Secret(&f.databaseURL, "database-url", "", "storage database: sqlite:///abs/path.db, mysql://USER:PASS@HOST:PORT/DB or postgres://USER:PASS@HOST:PORT/DB?sslmode=disable (default: weave.db in the data dir)")
	c.Secret(&f.tokenURL, "token-database-url", "", "token server database (users and nodes), same forms (default: the storage database)")
	c.Int(&f.maxConns, "db-max-conns", 0, "connections per pool for MySQL/PostgreSQL, read pool size for SQLite (0: 2×CPUs, at least 4)").Min(0)
	c.Duration(&f.connMaxLifetime, "db-conn-max-lifetime", 30*time.Minute, "close MySQL/PostgreSQL connections after this age (0: never)").Min(0)
	c.Duration(&f.timeout, "db-timeout", 10*time.Second, "deadline of every database call").Min(time.Millisecond)
}

// storageURL resolves the default SQLite file in the data directory.
func (f *dbFlags) storageURL() (string, error) {
	if f.databaseURL != "" {
		return f.databaseURL, nil
	}
	abs, err := filepath.Abs(filepath.Join(f.dataDir, "weave.db"))
	if err != nil {
		return "", err
	}
	return "sqlite://" + filepath.ToSlash(abs), nil
}

func (f *dbFlags) tokenDatabaseURL() (string, error) {
	if f.tokenURL != "" {
		return f.tokenURL, nil
	}
	return f.storageURL()
}

// pool is the connection pool settings of the flags.
func (f *dbFlags) pool() sqlstore.PoolOptions {
	return sqlstore.PoolOptions{MaxOpenConns: f.maxConns, ConnMaxLifetime: f.connMaxLifetime, Timeout: f.timeout}
}

// databases are the storage and token databases of a process; when both
// URLs are the same they share one DB (one SQLite writer, one pool).
type databases struct {
	storage, tokens     *sqlstore.DB
	storageBE, tokensBE *sqlstore.Backend
	storageURL          string
	tokenURL            string
}

func openDatabases(ctx context.Context, f *dbFlags) (*databases, error) {
	d := &databases{}
	var err error
	if d.storageURL, err = f.storageURL(); err != nil {
		return nil, err
	}
	if d.tokenURL, err = f.tokenDatabaseURL(); err != nil {
		return nil, err
	}
	if d.storageBE, err = sqlstore.Lookup(d.storageURL); err != nil {
		return nil, err
	}
	if d.tokensBE, err = sqlstore.Lookup(d.tokenURL); err != nil {
		return nil, err
	}
	if d.storage, err = d.storageBE.Open(ctx, d.storageURL, f.pool()); err != nil {
		return nil, fmt.Errorf("open storage database %s: %w", sqlstore.RedactURL(d.storageURL), err)
	}
	if d.tokenURL == d.storageURL {
		d.tokens = d.storage
		return d, nil
	}
	if d.tokens, err = d.tokensBE.Open(ctx, d.tokenURL, f.pool()); err != nil {
		d.storage.Close()
		return nil, fmt.Errorf("open token database %s: %w", sqlstore.RedactURL(d.tokenURL), err)
	}
	return d, nil
}

func (d *databases) Close() error {
	err := d.storage.Close()
	if d.tokens != d.storage {
		if e := d.tokens.Close(); err == nil {
			err = e
		}
	}
	return err
}

// dbSets are the schema sets `weave db migrate|status` and `weave serve`
// prepare, and whether each lives in the token database (else the storage
// database). A set needed only with a feature (accounts) is prepared where
// the feature is wired.
var dbSets = []struct {
	set    string
	tokens bool
}{{sqlstore.SetStorage, false}, {sqlstore.SetTokens, true}}

// eachSet runs fn for each of dbSets with its database and migrations.
func (d *databases) eachSet(fn func(set string, db *sqlstore.DB, ms []sqlstore.Migration) error) error {
	for _, s := range dbSets {
		db, be := d.storage, d.storageBE
		if s.tokens {
			db, be = d.tokens, d.tokensBE
		}
		ms, err := be.MigrationsOf(s.set)
		if err != nil {
			return err
		}
		if err := fn(s.set, db, ms); err != nil {
			return err
		}
	}
	return nil
}

// prepare migrates both schema sets, or with migrate false checks that they
// are current.
func (d *databases) prepare(ctx context.Context, migrate bool, progress func(set string, m sqlstore.Migration)) error {
	return d.eachSet(func(set string, db *sqlstore.DB, ms []sqlstore.Migration) error {
		return db.Prepare(ctx, set, ms, migrate, func(m sqlstore.Migration) {
			if progress != nil {
				progress(set, m)
			}
		})
	})
}
