// Package sqlite is weave's embedded default database: a pure-Go SQLite
// (modernc.org/sqlite), so the weave binary stays static and cgo-free.
// Importing the package registers the backend of sqlite:// URLs with
// sqlstore.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/weave-sync/weave/internal/privfile"
	"github.com/weave-sync/weave/sqlstore"
)

//go:embed migrations
var migrations embed.FS

var backend = &sqlstore.Backend{
	Name:       "sqlite",
	Schemes:    []string{"sqlite"},
	Form:       "sqlite:///abs/path.db",
	Open:       Open,
	Migrations: migrations,
	DDL: sqlstore.DDL{
		Bytes:     "VARCHAR({n})",
		LongText:  "TEXT",
		Identity:  "INTEGER PRIMARY KEY AUTOINCREMENT",
		RowID:     "INTEGER PRIMARY KEY",
		RowKey:    "INTEGER",
		Clustered: " WITHOUT ROWID",
	},
	OpenForeign: func(ctx context.Context, dsn string, opts sqlstore.PoolOptions) (*sqlstore.DB, error) {
		return OpenReadOnly(ctx, dsn, opts.Timeout)
	},
}

func init() { sqlstore.Register(backend) }

// Migrations returns the SQLite migrations of a schema set.
func Migrations(set string) ([]sqlstore.Migration, error) {
	return backend.MigrationsOf(set)
}

// DefaultReadConns is the default size of the read pool: 2×GOMAXPROCS, at
// least 4.
func DefaultReadConns() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// PathFromURL returns the file path of a sqlite:///abs/path.db URL.
// sqlite://relative/path.db and a bare path are accepted too.
func PathFromURL(dsn string) (string, error) {
	if !strings.HasPrefix(dsn, "sqlite:") {
		return "", fmt.Errorf("sqlite: %q is not a sqlite:// URL (want sqlite:///absolute/path.db)", dsn)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("sqlite: bad URL %q: %w", dsn, err)
	}
	p := u.Host + u.Path
	if u.Opaque != "" {
		p = u.Opaque
	}
	if p == "" {
		return "", fmt.Errorf("sqlite: URL %q names no file (want sqlite:///absolute/path.db)", dsn)
	}
	return p, nil
}

// Open opens (creating if needed) the SQLite database of a sqlite:// URL,
// in WAL mode, with a single-connection write pool and a read pool of
// opts.MaxOpenConns (default DefaultReadConns). opts.LockTimeout is the
// busy timeout: how long SQLite waits for a lock another process holds.
func Open(ctx context.Context, dsn string, opts sqlstore.PoolOptions) (*sqlstore.DB, error) {
	path, err := PathFromURL(dsn)
	if err != nil {
		return nil, err
	}
	if err := prepareFiles(path); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults(DefaultReadConns())
	// synchronous=FULL: a commit's WAL frames reach the disk before it is
	// acknowledged (NORMAL can lose the last commits on a power cut).
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)",
		opts.LockTimeout.Milliseconds())
	fileURL := "file:" + (&url.URL{Path: path}).EscapedPath()

	// temp_store(MEMORY) keeps the savepoint journals of group commit (a
	// page's content before a member changed it, gone at the group's
	// commit) in memory instead of spilling them to temporary files at a
	// pwrite per page.
	// wal_autocheckpoint: the checkpointer below copies the WAL into the
	// database off the write path; the writer checkpoints itself only if
	// that falls far behind.
	write, err := sql.Open("sqlite", fileURL+"?"+pragmas+
		fmt.Sprintf("&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(%d)&_txlock=immediate", writerCheckpointPages))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer: writers queue in Go rather than fail with SQLITE_BUSY.
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// A small page cache per reader: in WAL mode a reader drops its whole
	// cache when it starts a read after any commit, so under writes the
	// default 2 MB each held memory (outside the Go heap) that few reads
	// found anything in: with 1,000 connections on the molotov mix, 500 KB
	// cost some 2 more read syscalls per session and 6–9 MB less RSS.
	read, err := sql.Open("sqlite", fileURL+"?"+pragmas+fmt.Sprintf("&_pragma=query_only(1)&_pragma=cache_size(%d)", readerCacheKiB))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(opts.MaxOpenConns)
	read.SetMaxIdleConns(opts.MaxIdleConns)
	db := &sqlstore.DB{Read: read, Write: write, Dialect: Dialect{}, MaxRetries: opts.MaxRetries, Timeout: opts.Timeout,
		// Each commit waits for an fsync: concurrent writes share one.
		GroupCommit: true}
	db.Reclaim = func(ctx context.Context) error {
		// PASSIVE neither waits for readers nor blocks them: it copies
		// what no reader still needs into the database, and once all of
		// the WAL is copied the next write starts it over in place.
		_, err := write.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		return err
	}
	ckpt, err := sql.Open("sqlite", fileURL+"?"+pragmas)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	stop, done := make(chan struct{}), make(chan struct{})
	go checkpointLoop(ckpt, stop, done)
	// Once: callers may close a database twice (a cleanup after an explicit Close).
	db.OnClose = sync.OnceValue(func() error {
		close(stop)
		<-done
		return ckpt.Close()
	})
	return db, nil
}

// readerCacheKiB is the page cache of each read connection, in KiB as
// PRAGMA cache_size takes it negative (SQLite's default is 2,000).
const readerCacheKiB = -500

// writerCheckpointPages is the WAL size (in pages) past which the writer
// checkpoints at the end of its commit, as SQLite does by default at 1,000
// pages: a backstop for when the checkpointer cannot keep up.
const writerCheckpointPages = 8000

// checkpointEvery is how often the checkpointer copies the WAL into the
// database: about SQLite's 1,000 pages at a few hundred writes a second.
const checkpointEvery = 200 * time.Millisecond

// checkpointLoop runs PASSIVE checkpoints on a connection of its own until stop
// is closed. SQLite's automatic checkpoint runs in the commit that crosses
// the threshold, on the one write connection, where it held up every
// queued write (13 % of weave's CPU profile under a closed-loop load); a
// checkpoint needs no write lock, so here it runs beside the writer. With
// nothing new in the WAL it returns at once.
func checkpointLoop(db *sql.DB, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _ = db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)") // the writer's backstop covers failures
		cancel()
	}
}

// prepareFiles makes the database and its -wal and -shm files private
// (0600) whatever the umask: the database holds password verifiers and the
// accounts' signing key. SQLite creates the -wal and -shm files with the
// mode of the database file, so creating that one 0600 before SQLite opens
// it is enough; files an older weave left readable by others are tightened.
func prepareFiles(path string) error {
	if err := privfile.MkdirAll(filepath.Dir(path)); err != nil {
		return fmt.Errorf("sqlite: create directory for %s: %w", path, err)
	}
	f, err := privfile.Create(path)
	switch {
	case err == nil:
		// An empty file is an empty SQLite database.
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite: create %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		// Another user's file (an operator's tool run against the
		// service's database) cannot be changed: open it as it is.
		if _, err := privfile.Tighten(p); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("sqlite: make %s private: %w", p, err)
		}
	}
	return nil
}

// Dialect is SQLite's sqlstore.Dialect.
type Dialect struct{}

// Name implements sqlstore.Dialect.
func (Dialect) Name() string { return "sqlite" }

// Rebind implements sqlstore.Dialect: SQLite takes ? as is.
func (Dialect) Rebind(q string) string { return q }

func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff // primary result code
	}
	return -1
}

// Retryable implements sqlstore.Dialect: another process held the lock past
// the busy timeout.
func (Dialect) Retryable(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// Unavailable implements sqlstore.Dialect.
func (Dialect) Unavailable(err error) bool {
	switch code(err) {
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
		return true
	}
	return false
}

// StorageFull implements sqlstore.Dialect: SQLite answers SQLITE_FULL when
// a write to the database or its WAL fails with ENOSPC (or the database
// reached max_page_count).
func (Dialect) StorageFull(err error) bool {
	return code(err) == sqlite3.SQLITE_FULL
}

// LockMigrations implements sqlstore.Dialect. The write pool has a single
// connection and migrations run in IMMEDIATE transactions, which already
// exclude other processes.
func (Dialect) LockMigrations(context.Context, *sql.Conn) (func(), error) {
	return func() {}, nil
}

// Upsert implements sqlstore.Dialect with SQLite's ON CONFLICT clause.
func (Dialect) Upsert(key, update []string) string {
	return sqlstore.OnConflictUpsert(key, update)
}

// UpsertSet implements sqlstore.Dialect.
func (Dialect) UpsertSet(key, set []string) string {
	return sqlstore.OnConflictUpsertSet(key, set)
}

// Inserted implements sqlstore.Dialect.
func (Dialect) Inserted(column string) string { return sqlstore.OnConflictInserted(column) }

// ForUpdate implements sqlstore.Dialect: SQLite has no row locks; the single
// write connection and BEGIN IMMEDIATE serialise writers.
func (Dialect) ForUpdate() string { return "" }

// LockingJoins implements sqlstore.Dialect.
func (Dialect) LockingJoins() bool { return true }

// ReadTxOptions implements sqlstore.Dialect: a WAL read transaction is a
// snapshot already, and the driver takes no options.
func (Dialect) ReadTxOptions() *sql.TxOptions { return nil }

// CacheStatements implements sqlstore.Dialect: SQLite parses every
// statement it is given, in process.
func (Dialect) CacheStatements() bool { return true }

// InProcess implements sqlstore.Dialect.
func (Dialect) InProcess() bool { return true }

// InsertOrder implements sqlstore.Dialect: a new row of a rowid table
// takes the next rowid.
func (Dialect) InsertOrder() bool { return true }

// TimestampRow implements sqlstore.Dialect: a second statement is a
// function call.
func (Dialect) TimestampRow() bool { return false }

// Returning implements sqlstore.Dialect: the driver reports LastInsertId.
func (Dialect) Returning(string) string { return "" }

// SyncIdentity implements sqlstore.Dialect: an INTEGER PRIMARY KEY
// continues after its largest value.
func (Dialect) SyncIdentity(string, string) string { return "" }

// ColumnsQuery implements sqlstore.Dialect.
func (Dialect) ColumnsQuery() string {
	return `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'`
}

// Tune implements sqlstore.Tuner: a storage schema gets planner statistics
// for bsos unless it has some (from these, or from an operator's ANALYZE).
// Without statistics SQLite reads a `?ids=` request through bsos_modified,
// whose order saves a sort, and filters the whole collection for the ids;
// with them it looks each id up by the primary key. The figures describe
// a shard of ten million records, 20,000 per user and 10,000 per
// collection (a large history): only their proportions matter to the
// planner, and against 10,000 a list of up to 100 ids (the most a request
// carries) is plainly better served by the primary key, with or without
// newer/older, while newer, older and limit reads keep bsos_modified.
func (Dialect) Tune(ctx context.Context, conn *sql.Conn, set string) error {
	if set != sqlstore.SetStorage {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range []string{
		// Analysing the (tiny) schema table creates sqlite_stat1 if
		// missing and records nothing for bsos.
		`ANALYZE sqlite_schema`,
		`INSERT INTO sqlite_stat1 (tbl, idx, stat)
			SELECT 'bsos', column1, column2 FROM (VALUES
				('sqlite_autoindex_bsos_1', '10000000 20000 10000 1'),
				('bsos_modified', '10000000 20000 10000 2 1'),
				('bsos_expiry', '10000000 1000'))
			WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = 'bsos')`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Other connections read the statistics when they load the schema;
	// this one loaded it before they existed, and ANALYZE reloads them.
	_, err = conn.ExecContext(ctx, `ANALYZE sqlite_schema`)
	return err
}
