// Package postgres runs weave on PostgreSQL (13+) through pgx.
//
// Isolation: Open returns two pools. The write pool runs READ COMMITTED:
// writers serialise on the rows they lock (SELECT ... FOR UPDATE) and every
// statement after a lock sees what the previous lock holder committed, so
// concurrent writers wait instead of failing with serialisation errors. The
// read pool runs REPEATABLE READ, so that a read-only transaction sees one
// snapshot (the collection timestamp and its records agree); read-only
// REPEATABLE READ transactions never fail to serialise.
//
// Importing the package registers the backend of postgres:// and
// postgresql:// URLs with sqlstore.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/weave-sync/weave/sqlstore"
)

//go:embed migrations
var migrations embed.FS

func init() {
	sqlstore.Register(&sqlstore.Backend{
		Name:        "postgres",
		Schemes:     []string{"postgres", "postgresql"},
		Form:        "postgres://USER:PASS@HOST:PORT/DB?sslmode=disable",
		DefaultPort: "5432",
		Open:        Open,
		Migrations:  migrations,
		BackupTool:  "pg_dump",
	})
}

// Migrations returns the PostgreSQL migrations of a schema set.
func Migrations(set string) ([]sqlstore.Migration, error) {
	return sqlstore.LoadMigrations(migrations, "migrations/"+set)
}

// ParseURL turns a postgres://USER:PASS@HOST:PORT/DB?sslmode=... URL
// ("postgresql://" works too) into a pgx configuration. Query parameters are
// libpq connection parameters (sslmode, connect_timeout, ...) or session
// settings; weave's defaults apply to those left out (connect_timeout 5 s,
// application_name weave).
func ParseURL(rawURL string) (*pgx.ConnConfig, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad URL: %w", urlErr(err))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("postgres: %s is not a postgres:// URL (want postgres://USER:PASS@HOST:PORT/DB?sslmode=disable)", sqlstore.RedactURL(rawURL))
	}
	q := u.Query()
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", "5")
	}
	if !q.Has("application_name") {
		q.Set("application_name", "weave")
	}
	u.RawQuery = q.Encode()
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx redacts the password
	}
	return cfg, nil
}

// urlErr drops the URL, password included, that url.Parse quotes in its
// errors.
func urlErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Open connects to the PostgreSQL database of a postgres:// URL and checks
// that it answers. The database must exist; its schema is applied with
// sqlstore.DB.Migrate and Migrations.
func Open(ctx context.Context, rawURL string, opts sqlstore.PoolOptions) (*sqlstore.DB, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, cfg, opts)
}

// OpenConfig is Open with a pgx configuration, e.g. from ParseURL with TLS
// settings added. cfg is not modified.
func OpenConfig(ctx context.Context, cfg *pgx.ConnConfig, opts sqlstore.PoolOptions) (*sqlstore.DB, error) {
	opts = opts.WithDefaults(sqlstore.DefaultServerConns())
	lockMS := strconv.FormatInt(max(1, opts.LockTimeout.Milliseconds()), 10)
	write := openPool(cfg, opts, map[string]string{
		"default_transaction_isolation": "read committed",
		"lock_timeout":                  lockMS,
		// A weave process that stops talking mid-transaction must not hold
		// a user's rows locked for long.
		"idle_in_transaction_session_timeout": "60000",
	})
	read := openPool(cfg, opts, map[string]string{
		"default_transaction_isolation":       "repeatable read",
		"idle_in_transaction_session_timeout": "60000",
	})
	db := &sqlstore.DB{Read: read, Write: write, Dialect: Dialect{}, MaxRetries: opts.MaxRetries, Timeout: opts.Timeout}
	pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := write.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s as %s: %w", cfg.Host, cfg.Port, cfg.Database, cfg.User, db.Classify(err))
	}
	return db, nil
}

func openPool(cfg *pgx.ConnConfig, opts sqlstore.PoolOptions, params map[string]string) *sql.DB {
	c := cfg.Copy()
	for k, v := range params {
		if _, set := c.RuntimeParams[k]; !set {
			c.RuntimeParams[k] = v
		}
	}
	pool := stdlib.OpenDB(*c, stdlib.OptionShouldPing(shouldPing))
	pool.SetMaxOpenConns(opts.MaxOpenConns)
	pool.SetMaxIdleConns(opts.MaxIdleConns)
	pool.SetConnMaxLifetime(opts.ConnMaxLifetime)
	pool.SetConnMaxIdleTime(opts.ConnMaxIdleTime)
	return pool
}

// Dialect is PostgreSQL's sqlstore.Dialect.
type Dialect struct{}

var _ sqlstore.Dialect = Dialect{}

// Name implements sqlstore.Dialect.
func (Dialect) Name() string { return "postgres" }

// Rebind implements sqlstore.Dialect: ? placeholders become $1, $2, ...
// Question marks inside string literals, quoted identifiers and comments
// are left alone.
func (Dialect) Rebind(q string) string {
	if strings.IndexByte(q, '?') < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		case c == '\'' || c == '"':
			// Copy through the closing quote; a doubled quote is an escape
			// and simply reopens the literal.
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+1])
			i += j
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+4])
			i += j + 3
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func code(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Upsert implements sqlstore.Dialect.
func (Dialect) Upsert(key, update []string) string {
	return sqlstore.OnConflictUpsert(key, update)
}

// UpsertSet implements sqlstore.Dialect.
func (Dialect) UpsertSet(key, set []string) string {
	return sqlstore.OnConflictUpsertSet(key, set)
}

// Inserted implements sqlstore.Dialect.
func (Dialect) Inserted(column string) string { return sqlstore.OnConflictInserted(column) }

// ForUpdate implements sqlstore.Dialect.
func (Dialect) ForUpdate() string { return " FOR UPDATE" }

// LockingJoins implements sqlstore.Dialect.
func (Dialect) LockingJoins() bool { return false }

// Retryable implements sqlstore.Dialect: serialisation failures, deadlocks
// and lock timeouts; the server rolled the statement back and sqlstore rolls
// back the transaction before it retries.
func (Dialect) Retryable(err error) bool {
	switch code(err) {
	case "40001", "40P01", "55P03":
		return true
	}
	return false
}

// Unavailable implements sqlstore.Dialect: the server cannot be reached,
// went away mid-call, is shutting down or starting, or is out of
// connections or resources.
func (Dialect) Unavailable(err error) bool {
	c := code(err)
	switch {
	case c == "57P01", c == "57P02", c == "57P03", // admin/crash shutdown, cannot connect now
		strings.HasPrefix(c, "08"), // connection exceptions
		strings.HasPrefix(c, "53"): // insufficient resources: too many connections, disk full
		return true
	case c != "":
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// StorageFull implements sqlstore.Dialect: SQLSTATE 53100 disk_full.
func (Dialect) StorageFull(err error) bool { return code(err) == "53100" }

// migrationLockKey is the pg_advisory_lock key that serialises migrations
// (advisory locks are per database).
const migrationLockKey int64 = 0x77656176655f6d67 // "weave_mg"

// LockMigrations implements sqlstore.Dialect with a session advisory lock,
// waiting until ctx ends.
func (Dialect) LockMigrations(ctx context.Context, conn *sql.Conn) (func(), error) {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// If the connection broke, the server released the lock already.
		_, _ = conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}, nil
}

// CacheStatements implements sqlstore.Dialect: the driver interpolates
// parameters client-side, and statements prepared on every connection
// would only use up the server's statement limit.
func (Dialect) CacheStatements() bool { return false }

// ReadTxOptions implements sqlstore.Dialect: READ COMMITTED would take a
// new snapshot per statement; REPEATABLE READ keeps one for the
// transaction and never fails a read-only transaction.
func (Dialect) ReadTxOptions() *sql.TxOptions {
	return &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
}

// Returning implements sqlstore.Dialect: pgx has no LastInsertId.
func (Dialect) Returning(column string) string { return " RETURNING " + column }

// SyncIdentity implements sqlstore.Dialect: an identity column does not see
// explicit values; its sequence is moved past them.
func (Dialect) SyncIdentity(table, column string) string {
	return "SELECT setval(pg_get_serial_sequence('" + table + "', '" + column + "'), (SELECT MAX(" + column + ") FROM " + table + "))"
}

// ColumnsQuery implements sqlstore.Dialect.
func (Dialect) ColumnsQuery() string {
	return `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
}
