// Package sqlstore implements weave's storage and token database on SQL.
// The SQL is shared by every database where the dialects agree; what differs
// (placeholders, upserts, locking, error codes, migrations) comes from a
// Dialect supplied by the adapter packages sqlite, mysql and postgres.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/weave-sync/weave"
)

// Dialect is what an adapter tells sqlstore about its database.
type Dialect interface {
	// Name is "sqlite", "mysql" or "postgres".
	Name() string
	// Rebind rewrites a query written with ? placeholders for the driver.
	Rebind(query string) string
	// Retryable reports errors after which the transaction was rolled back
	// by the database and may safely run again (deadlock, serialisation
	// failure, lock wait timeout, busy).
	Retryable(err error) bool
	// Unavailable reports errors meaning the database cannot be reached or
	// is shutting down (the request should get 503, not 500).
	Unavailable(err error) bool
	// StorageFull reports errors meaning the database has no room left on
	// its disk (or tablespace): the write was rolled back and will succeed
	// once space returns.
	StorageFull(err error) bool
	// LockMigrations takes a database-wide lock so that only one process
	// migrates at a time; the returned func releases it.
	LockMigrations(ctx context.Context, conn *sql.Conn) (unlock func(), err error)

	// Upsert returns the clause that, appended to an
	// "INSERT INTO t (...) VALUES ..." or "INSERT INTO t (...) SELECT ...
	// WHERE ...", makes a row whose key columns collide with an existing row
	// copy the columns listed in update onto that row (or leave the row as it
	// is when update is empty) instead of failing:
	//   SQLite, PostgreSQL: ON CONFLICT (k1, k2) DO UPDATE SET c = excluded.c
	//                       (ON CONFLICT (k1, k2) DO NOTHING when update is empty)
	//   MySQL, MariaDB:     ON DUPLICATE KEY UPDATE c = VALUES(c)
	//                       (ON DUPLICATE KEY UPDATE k1 = k1 when update is empty)
	// sqlstore only upserts into tables whose one unique key is key.
	Upsert(key, update []string) string
	// UpsertSet is Upsert with the assignments to an existing row written
	// out ("c = expr"); Inserted(c) is how they name the value the INSERT
	// brought for column c. MySQL applies assignments left to right, each
	// seeing the ones before: an assignment that reads a column must come
	// before the one that changes it.
	UpsertSet(key, set []string) string
	Inserted(column string) string
	// ForUpdate is the clause that makes a SELECT lock the rows it reads
	// until the transaction ends: " FOR UPDATE" on servers, "" on SQLite,
	// whose single writer and BEGIN IMMEDIATE already serialise writes.
	ForUpdate() string
	// LockingJoins reports whether a locking read over a join reads the
	// newest committed rows of every table it joins: true for MySQL
	// (InnoDB's locking reads do) and SQLite (writers are serialised);
	// false for PostgreSQL, whose FOR UPDATE re-reads only the locked rows
	// and takes the others from a snapshot that may predate the lock.
	LockingJoins() bool
	// ReadTxOptions are the options of a read-only snapshot transaction
	// (nil: the driver's defaults are one already).
	ReadTxOptions() *sql.TxOptions
	// CacheStatements reports whether statements pay off prepared once per
	// pool connection (see stmtCache).
	CacheStatements() bool
	// InProcess reports whether the database runs inside this process
	// (SQLite): a statement is function calls, not a round trip, so the
	// goroutines that watch a statement's context cost more than a short
	// read itself (see readLane).
	InProcess() bool
	// InsertOrder reports whether a table keeps new rows in the order they
	// were inserted (SQLite's rowid tables); sqlstore then inserts a
	// write's records in the order reads walk them (see upsert).
	InsertOrder() bool
	// TimestampRow reports whether a collection read gets the collection's
	// timestamp as a row of its own (UNION ALL) rather than as a column of
	// each record, so that a read matching no record needs no second
	// statement: the servers, where a statement is a round trip (see
	// readText).
	TimestampRow() bool
	// Returning is the clause that makes an INSERT return the generated key
	// of column, or "" when the driver reports it as LastInsertId.
	Returning(column string) string
	// SyncIdentity is the statement that moves the generator of an identity
	// column past values inserted explicitly, or "" when the database does
	// that itself.
	SyncIdentity(table, column string) string
	// ColumnsQuery is a query whose rows are (table, column) for every
	// column of every table of the current database (or schema).
	ColumnsQuery() string
}

// DB is a pair of connection pools on one database: Write for transactions
// that change data, Read for reads. With SQLite, Write has one connection so
// writers queue in Go instead of failing with SQLITE_BUSY; on servers both
// may be the same pool.
type DB struct {
	Read, Write *sql.DB
	Dialect     Dialect
	// MaxRetries bounds how often a transaction is retried after a
	// retryable error.
	MaxRetries int
	// Timeout is the deadline applied to every database call that arrives
	// without a sooner one.
	Timeout time.Duration
	// Reclaim, when set, runs after a write transaction failed for lack of
	// space, to let the database reuse room it holds (SQLite checkpoints a
	// WAL that a long reader kept growing; without a successful commit
	// nothing else would).
	Reclaim func(ctx context.Context) error
	// GroupCommit makes GroupWriteTx share transactions and commits
	// between concurrent writes (group.go). Only for a Write pool of one
	// connection on SQLite.
	GroupCommit bool
	// OnClose, when set, runs as Close closes the pools (an adapter's
	// background work on the database).
	OnClose func() error

	group                *committer
	groupOnce, groupStop sync.Once
}

// Close closes both pools.
func (db *DB) Close() error {
	db.stopGroup()
	var err error
	if db.OnClose != nil {
		err = db.OnClose()
	}
	err = errors.Join(err, db.Write.Close())
	if db.Read != db.Write {
		err = errors.Join(err, db.Read.Close())
	}
	return err
}

// Q rebinds a query for the dialect.
func (db *DB) Q(query string) string { return db.Dialect.Rebind(query) }

func (db *DB) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if db.Timeout <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < db.Timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, db.Timeout)
}

// WriteTx runs fn in a read-write transaction on the Write pool, retrying
// the whole transaction (at most MaxRetries times) when the database rolled
// it back for a deadlock or serialisation failure. fn must therefore have no
// effects outside the transaction. Errors are classified: retries exhausted
// become weave.ErrConflict, connection failures weave.ErrUnavailable.
func (db *DB) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.runTx(ctx, db.Write, nil, fn)
}

// ReadTx runs fn in a read-only snapshot on the Read pool: every statement
// of fn sees the same committed state.
func (db *DB) ReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.runTx(ctx, db.Read, db.Dialect.ReadTxOptions(), fn)
}

func (db *DB) runTx(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	return db.retry(ctx, pool == db.Write, func(ctx context.Context) error {
		return db.tryTx(ctx, pool, opts, fn)
	})
}

// retry runs one attempt of a transaction after the other while the
// database rolled it back for a retryable reason, and classifies the
// outcome; write says the transaction ran on the Write pool.
func (db *DB) retry(ctx context.Context, write bool, try func(ctx context.Context) error) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		err = try(ctx)
		retryable := db.Dialect.Retryable(err) || errors.Is(err, errGroupAborted)
		if err == nil || !retryable || attempt >= db.MaxRetries || ctx.Err() != nil {
			break
		}
		// Back off a little, growing, so that contenders spread out.
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	err = db.Classify(err)
	if write && db.Reclaim != nil && errors.Is(err, weave.ErrStorageFull) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = db.Reclaim(rctx) // best effort: the write failed either way
		cancel()
	}
	return err
}

func (db *DB) tryTx(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(tx *sql.Tx) error) (err error) {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// TooLargeDialect is a Dialect whose database may refuse a write within
// weave's request limits for its size (MariaDB/MySQL: a value beyond
// max_allowed_packet). Classify makes those errors weave.ErrTooLarge
// rather than leave them unclassified (a 503 that retrying cannot fix).
type TooLargeDialect interface {
	TooLarge(err error) bool
}

func tooLarge(d Dialect, err error) bool {
	t, ok := d.(TooLargeDialect)
	return ok && t.TooLarge(err)
}

// Classify maps a database error to weave's error kinds, keeping errors
// that already have one (weave.ErrorKindOf) as they are; a deadline that
// passed becomes a weave.ErrUnavailable.
func (db *DB) Classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, weave.ErrUnavailable):
		return fmt.Errorf("%w: %v", weave.ErrUnavailable, err)
	case weave.ErrorKindOf(err) != weave.KindInternal:
		return err
	case db.Dialect.Retryable(err):
		return fmt.Errorf("%w: %v", weave.ErrConflict, err)
	case db.Dialect.StorageFull(err), errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %v", weave.ErrStorageFull, err)
	case tooLarge(db.Dialect, err):
		return fmt.Errorf("%w: %v", weave.ErrTooLarge, err)
	case db.Dialect.Unavailable(err), errors.Is(err, sql.ErrConnDone), errors.Is(err, driverBadConn):
		return fmt.Errorf("%w: %v", weave.ErrUnavailable, err)
	}
	return err
}
