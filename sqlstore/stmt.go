package sqlstore

import (
	"context"
	"database/sql"
	"math/bits"
	"sync"
	"sync/atomic"
)

// stmtCache keeps prepared statements of one pool. It pays off where
// preparing costs CPU in process: SQLite parses every statement it is
// given, a third of the CPU of a 100-record POST. Server drivers are left
// alone (pgx caches statements per connection, the MySQL adapter
// interpolates client-side); there, statements prepared on every
// connection would only use up the server's statement limit.
//
// A statement is never prepared inside a transaction: on SQLite's single
// write connection that would wait for the transaction itself, and on the
// read pool many transactions could wait for each other's connections. A
// statement that is missed runs unprepared and is noted; flush, called
// after the transaction, prepares it on the pool. Transactions then use it
// through Tx.StmtContext, which reuses the statement already prepared on
// the transaction's connection.
type stmtCache struct {
	pool    *sql.DB
	enabled bool
	mu      sync.RWMutex
	m       map[string]*sql.Stmt
	wanted  map[string]bool
	pending atomic.Bool
}

// maxCachedStmts bounds the cache: the fixed statements plus the common
// sizes of the variable ones.
const maxCachedStmts = 400

func newStmtCache(pool *sql.DB, enabled bool) *stmtCache {
	return &stmtCache{pool: pool, enabled: enabled, m: make(map[string]*sql.Stmt), wanted: make(map[string]bool)}
}

// get returns the prepared statement of query, or nil (and notes the
// query for flush).
func (c *stmtCache) get(query string) *sql.Stmt {
	if !c.enabled {
		return nil
	}
	c.mu.RLock()
	st, full := c.m[query], len(c.m)+len(c.wanted) >= maxCachedStmts
	c.mu.RUnlock()
	if st != nil || full {
		return st
	}
	c.mu.Lock()
	if c.m[query] == nil {
		c.wanted[query] = true
		c.pending.Store(true)
	}
	c.mu.Unlock()
	return nil
}

// flush prepares the statements noted by get. It must be called outside
// any transaction on the pool. Failures are dropped: the statement keeps
// running unprepared and reports its own errors.
func (c *stmtCache) flush(ctx context.Context) {
	if !c.pending.Load() {
		return
	}
	c.mu.Lock()
	queries := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		queries = append(queries, q)
	}
	clear(c.wanted)
	c.pending.Store(false)
	c.mu.Unlock()
	for _, q := range queries {
		// Not under the lock: preparing may wait for a connection whose
		// transaction is calling get.
		st, err := c.pool.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.m[q] == nil {
			c.m[q] = st
			st = nil
		}
		c.mu.Unlock()
		if st != nil {
			st.Close()
		}
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// cacheable reports whether a statement for n rows is worth preparing: the
// small sizes (Firefox posts up to 10 records at a time for most
// collections), the powers of two and the full-chunk sizes recur, and
// chunk splits other sizes into these when statements are cached.
func cacheable(n int) bool { return n <= 16 || n&(n-1) == 0 || n%50 == 0 }

// chunk is how many of n rows (n > 0) the next multi-row statement takes:
// as many as a statement may (maxRows) where statements are not cached,
// since on a server each statement is a round trip; where they are
// (SQLite), the largest cacheable size, since parsing an odd-sized
// statement costs more than running a few prepared ones in process.
func (c *stmtCache) chunk(n int) int {
	n = min(n, maxRows)
	if !c.enabled || cacheable(n) {
		return n
	}
	pow := 1 << (bits.Len(uint(n)) - 1)
	return max(pow, n-n%50)
}

// txExec runs query in tx, prepared when c has it.
func (c *stmtCache) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := c.get(query); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

func (c *stmtCache) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st := c.get(query); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

func (c *stmtCache) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := c.get(query); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// query and queryRow run a statement on the pool itself.
func (c *stmtCache) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.get(query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.pool.QueryContext(ctx, query, args...)
}

func (c *stmtCache) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.get(query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.pool.QueryRowContext(ctx, query, args...)
}
