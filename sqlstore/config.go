package sqlstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// Config is the database settings of every weave command that opens one:
// where the storage and token databases are and how their pools behave.
type Config struct {
	DataDir         string
	DatabaseURL     string // storage database ("": weave.db in DataDir)
	TokenURL        string // token database ("": the storage database)
	MaxConns        int
	ConnMaxLifetime time.Duration
	Timeout         time.Duration
	// storageFromEnv: the storage database is not a flag of this command
	// but $WEAVE_DATABASE_URL, as `weave serve` has it (RegisterTokenFlags).
	storageFromEnv bool
}

// RegisterFlags registers the database flags of `weave serve` and the
// commands that open the same databases.
func (c *Config) RegisterFlags(cmd *cli.Command) {
	cmd.String(&c.DataDir, "data-dir", "./weave-data", "directory for the SQLite database and the generated master secret")
	cmd.Secret(&c.DatabaseURL, "database-url", "", "storage database: sqlite:///abs/path.db, mysql://USER:PASS@HOST:PORT/DB or postgres://USER:PASS@HOST:PORT/DB?sslmode=disable (default: weave.db in the data dir)")
	cmd.Secret(&c.TokenURL, "token-database-url", "", "token server database (users and nodes), same forms (default: the storage database)")
	cmd.Int(&c.MaxConns, "db-max-conns", 0, "connections per pool for MySQL/PostgreSQL, read pool size for SQLite (0: 2×CPUs, at least 4)").Min(0)
	cmd.Duration(&c.ConnMaxLifetime, "db-conn-max-lifetime", 30*time.Minute, "close MySQL/PostgreSQL connections after this age (0: never)").Min(0)
	cmd.Duration(&c.Timeout, "db-timeout", 10*time.Second, "deadline of every database call").Min(time.Millisecond)
}

// RegisterTokenFlags registers the flags of the operator commands that work
// on the token database and the nodes' shards (node, user, push, import);
// they find the token database as `weave serve` does.
func (c *Config) RegisterTokenFlags(cmd *cli.Command) {
	cmd.String(&c.DataDir, "data-dir", "./weave-data", "directory of the default SQLite database")
	cmd.Secret(&c.TokenURL, "token-database-url", "", "token server database (users and nodes) (default: as for weave serve: $WEAVE_DATABASE_URL, else weave.db in the data dir)")
	cmd.Int(&c.MaxConns, "db-max-conns", 0, "connections per database pool (0: 2×CPUs, at least 4)").Min(0)
	cmd.Duration(&c.Timeout, "db-timeout", 10*time.Second, "deadline of every database call").Min(time.Millisecond)
	c.ConnMaxLifetime = 30 * time.Minute
	c.storageFromEnv = true
}

// StorageURL is the storage database's URL, the data directory's weave.db
// by default.
func (c *Config) StorageURL() (string, error) {
	url := c.DatabaseURL
	if c.storageFromEnv {
		url = os.Getenv("WEAVE_DATABASE_URL")
	}
	if url != "" {
		return url, nil
	}
	abs, err := filepath.Abs(filepath.Join(c.DataDir, "weave.db"))
	if err != nil {
		return "", err
	}
	return "sqlite://" + filepath.ToSlash(abs), nil
}

// TokenDatabaseURL is the token database's URL, the storage database's by
// default.
func (c *Config) TokenDatabaseURL() (string, error) {
	if c.TokenURL != "" {
		return c.TokenURL, nil
	}
	return c.StorageURL()
}

// Pool is the connection pool settings.
func (c *Config) Pool() PoolOptions {
	return PoolOptions{MaxOpenConns: c.MaxConns, ConnMaxLifetime: c.ConnMaxLifetime, Timeout: c.Timeout}
}

// Databases are the storage and token databases of a process; when both
// URLs are the same they share one DB (one SQLite writer, one pool).
type Databases struct {
	Storage, Tokens              *DB
	StorageBackend, TokenBackend *Backend
	StorageURL, TokenURL         string
}

// Open opens the storage and token databases; it applies no migrations
// (see Prepare).
func (c *Config) Open(ctx context.Context) (*Databases, error) {
	d := &Databases{}
	var err error
	if d.StorageURL, err = c.StorageURL(); err != nil {
		return nil, err
	}
	if d.TokenURL, err = c.TokenDatabaseURL(); err != nil {
		return nil, err
	}
	if d.StorageBackend, err = Lookup(d.StorageURL); err != nil {
		return nil, err
	}
	if d.TokenBackend, err = Lookup(d.TokenURL); err != nil {
		return nil, err
	}
	if d.Storage, err = d.StorageBackend.Open(ctx, d.StorageURL, c.Pool()); err != nil {
		return nil, fmt.Errorf("open storage database %s: %w", RedactURL(d.StorageURL), err)
	}
	if d.TokenURL == d.StorageURL {
		d.Tokens = d.Storage
		return d, nil
	}
	if d.Tokens, err = d.TokenBackend.Open(ctx, d.TokenURL, c.Pool()); err != nil {
		d.Storage.Close()
		return nil, fmt.Errorf("open token database %s: %w", RedactURL(d.TokenURL), err)
	}
	return d, nil
}

// OpenPrepared is Open, then Prepare.
func (c *Config) OpenPrepared(ctx context.Context, migrate bool) (*Databases, error) {
	d, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.Prepare(ctx, migrate, nil); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close closes both databases.
func (d *Databases) Close() error {
	err := d.Storage.Close()
	if d.Tokens != d.Storage {
		if e := d.Tokens.Close(); err == nil {
			err = e
		}
	}
	return err
}

// sets are the schema sets Prepare and WriteStatus handle, and whether each
// lives in the token database (else the storage database). A set needed
// only with a feature (accounts, push) is prepared where the feature is
// wired, with PrepareTokenSet.
var sets = []struct {
	set    string
	tokens bool
}{{SetStorage, false}, {SetTokens, true}}

// EachSet runs fn for the storage and tokens schema sets with their
// database and migrations.
func (d *Databases) EachSet(fn func(set string, db *DB, ms []Migration) error) error {
	for _, s := range sets {
		db, be := d.Storage, d.StorageBackend
		if s.tokens {
			db, be = d.Tokens, d.TokenBackend
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

// Prepare migrates the storage and tokens schema sets, or with migrate
// false checks that they are current.
func (d *Databases) Prepare(ctx context.Context, migrate bool, progress func(set string, m Migration)) error {
	return d.EachSet(func(set string, db *DB, ms []Migration) error {
		return db.Prepare(ctx, set, ms, migrate, func(m Migration) {
			if progress != nil {
				progress(set, m)
			}
		})
	})
}

// PrepareTokenSet migrates (or checks) a feature's schema set that lives
// with the token database (accounts, push).
func (d *Databases) PrepareTokenSet(ctx context.Context, set string, migrate bool) error {
	ms, err := d.TokenBackend.MigrationsOf(set)
	if err != nil {
		return err
	}
	if err := d.Tokens.Prepare(ctx, set, ms, migrate, nil); err != nil {
		return fmt.Errorf("%s database: %w", set, err)
	}
	return nil
}

// OpenShard opens a node's shard database and brings its storage schema up
// to date (or, with migrate false, checks it).
func (c *Config) OpenShard(ctx context.Context, dsn string, migrate bool) (*DB, *Backend, error) {
	be, err := Lookup(dsn)
	if err != nil {
		return nil, nil, err
	}
	db, err := OpenSet(ctx, dsn, c.Pool(), SetStorage, migrate)
	if err != nil {
		return nil, nil, fmt.Errorf("shard %s: %w", RedactURL(dsn), err)
	}
	return db, be, nil
}

// ShardHealth pings a shard and checks its schema: "ok (duration)" or
// "FAIL: why".
func (c *Config) ShardHealth(ctx context.Context, dsn string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	db, _, err := c.OpenShard(ctx, dsn, false)
	if err != nil {
		return "FAIL: " + err.Error()
	}
	defer db.Close()
	if err := db.Read.PingContext(ctx); err != nil {
		return "FAIL: " + err.Error()
	}
	return fmt.Sprintf("ok (%s)", time.Since(start).Round(time.Millisecond))
}

// OpenTokenDB opens the token database alone, its schema migrated, as the
// operator commands of RegisterTokenFlags do.
func (c *Config) OpenTokenDB(ctx context.Context) (*TokenDB, error) {
	url, err := c.TokenDatabaseURL()
	if err != nil {
		return nil, err
	}
	be, err := Lookup(url)
	if err != nil {
		return nil, err
	}
	db, err := be.Open(ctx, url, c.Pool())
	if err != nil {
		return nil, fmt.Errorf("open token database %s: %w", RedactURL(url), err)
	}
	ms, err := be.MigrationsOf(SetTokens)
	if err == nil {
		err = db.Migrate(ctx, SetTokens, ms, nil)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("token database %s: %w", RedactURL(url), err)
	}
	return NewTokenDB(db, TokenDBOptions{}), nil
}
