package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlite"
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

// backend is one SQL technology weave can run on.
type backend struct {
	name       string
	open       func(ctx context.Context, url string, f *dbFlags) (*sqlstore.DB, error)
	migrations func(set string) ([]sqlstore.Migration, error)
	redact     func(url string) string
}

func backendFor(url string) (backend, error) {
	scheme, _, _ := strings.Cut(url, ":")
	switch scheme {
	case "sqlite":
		return backend{
			name: "sqlite",
			open: func(ctx context.Context, url string, f *dbFlags) (*sqlstore.DB, error) {
				return sqlite.Open(ctx, url, sqlite.Options{ReadConns: f.maxConns, Timeout: f.timeout})
			},
			migrations: sqlite.Migrations,
			redact:     func(u string) string { return u },
		}, nil
	case "mysql":
		return backend{
			name: "mysql",
			open: func(ctx context.Context, url string, f *dbFlags) (*sqlstore.DB, error) {
				return mysql.Open(ctx, url, mysql.Options{MaxOpenConns: f.maxConns, ConnMaxLifetime: f.connMaxLifetime, Timeout: f.timeout})
			},
			migrations: mysql.Migrations,
			redact:     mysql.Redact,
		}, nil
	case "postgres", "postgresql":
		return backend{
			name: "postgres",
			open: func(ctx context.Context, url string, f *dbFlags) (*sqlstore.DB, error) {
				return postgres.Open(ctx, url, postgres.Options{MaxOpenConns: f.maxConns, ConnMaxLifetime: f.connMaxLifetime, Timeout: f.timeout})
			},
			migrations: postgres.Migrations,
			redact:     postgres.Redact,
		}, nil
	}
	return backend{}, fmt.Errorf("unsupported database URL %q: use sqlite:///abs/path.db, mysql://USER:PASS@HOST:PORT/DB or postgres://USER:PASS@HOST:PORT/DB", redactAny(url))
}

// redactAny hides a password in a URL we could not even classify.
func redactAny(url string) string {
	if at := strings.LastIndex(url, "@"); at > 0 {
		if i := strings.Index(url, "://"); i >= 0 && i < at {
			return url[:i+3] + "…@" + url[at+1:]
		}
	}
	return url
}

// databases are the storage and token databases of a process; when both
// URLs are the same they share one DB (one SQLite writer, one pool).
type databases struct {
	storage, tokens     *sqlstore.DB
	storageBE, tokensBE backend
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
	if d.storageBE, err = backendFor(d.storageURL); err != nil {
		return nil, err
	}
	if d.tokensBE, err = backendFor(d.tokenURL); err != nil {
		return nil, err
	}
	if d.storage, err = d.storageBE.open(ctx, d.storageURL, f); err != nil {
		return nil, fmt.Errorf("open storage database %s: %w", d.storageBE.redact(d.storageURL), err)
	}
	if d.tokenURL == d.storageURL {
		d.tokens = d.storage
		return d, nil
	}
	if d.tokens, err = d.tokensBE.open(ctx, d.tokenURL, f); err != nil {
		d.storage.Close()
		return nil, fmt.Errorf("open token database %s: %w", d.tokensBE.redact(d.tokenURL), err)
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

// schema runs fn for each schema set with its database and migrations.
func (d *databases) eachSet(fn func(set string, db *sqlstore.DB, ms []sqlstore.Migration) error) error {
	for _, s := range []struct {
		set string
		db  *sqlstore.DB
		be  backend
	}{{sqlstore.SetStorage, d.storage, d.storageBE}, {sqlstore.SetTokens, d.tokens, d.tokensBE}} {
		ms, err := s.be.migrations(s.set)
		if err != nil {
			return err
		}
		if err := fn(s.set, s.db, ms); err != nil {
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
