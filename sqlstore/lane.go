package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync/atomic"
)

// readLane holds a few connections of an in-process database's Read pool
// for the short reads of one user's rows (perCollectionRows), each with its
// own prepared statements, so that such a read runs without the request's
// context and never waits in database/sql's queue for a connection.
//
// A statement given a context that can end makes database/sql and the
// SQLite driver each start a goroutine to watch it, which on SQLite costs
// more CPU than a few-row read itself (BenchmarkInfoCollectionsHandler: 10
// of its 81 allocations). Nothing in such a read waits for the context (WAL
// readers take no lock a writer holds, and the statement steps over a few
// rows); what could wait is the queue for a connection, which has no
// deadline without the context. A lane connection is taken from the pool
// under the request's deadline, so the only wait left is bounded; once
// taken it belongs to the lane and no one else queues for it.
//
// The lane takes at most half the pool (none of a pool of one): a read
// that finds every lane connection busy runs on the pool with its context
// and the database Timeout.
type readLane struct {
	db     *DB
	max    int32
	n      atomic.Int32 // connections taken from the pool
	idle   chan *laneConn
	closed atomic.Bool
}

type laneConn struct {
	conn *sql.Conn
	// The driver's statements on conn, used only by the lane's current
	// holder, within conn.Raw. database/sql's own statements on a Conn
	// would cost three allocations a query more (its bookkeeping of each
	// statement's open rows).
	stmts map[string]driver.Stmt
	dest  [2]driver.Value
	// args holds a query's arguments: handed to the driver, a local array
	// would be an allocation per query.
	args [4]driver.NamedValue
}

// noCancel is the context of a statement on a lane connection: Done is
// nil, so that no goroutine watches it.
var noCancel = context.Background()

func newReadLane(db *DB) *readLane {
	max := 0
	if m := db.Read.Stats().MaxOpenConnections; m <= 0 {
		max = 4
	} else {
		max = m / 2
	}
	return &readLane{db: db, max: int32(max), idle: make(chan *laneConn, max)}
}

// get returns an idle lane connection or takes a new one from the pool
// within ctx and the database Timeout; nil and no error when the lane is
// full.
func (l *readLane) get(ctx context.Context) (*laneConn, error) {
	select {
	case lc := <-l.idle:
		return lc, nil
	default:
	}
	if l.n.Add(1) > l.max || l.closed.Load() {
		l.n.Add(-1)
		return nil, nil
	}
	cctx, cancel := l.db.withTimeout(ctx)
	conn, err := l.db.Read.Conn(cctx)
	cancel()
	if err != nil {
		l.n.Add(-1)
		return nil, err
	}
	return &laneConn{conn: conn, stmts: make(map[string]driver.Stmt, 4)}, nil
}

// read appends to out the (collection id, value) rows of query, run
// without cancellation (ctx's end still stops it between rows), preparing
// it (within ctx: no wait for a connection, the lane holds it) on the
// connection's first use of it.
func (lc *laneConn) read(ctx context.Context, query string, args []any, out []collectionValue) ([]collectionValue, error) {
	err := lc.conn.Raw(func(dc any) error {
		st := lc.stmts[query]
		if st == nil {
			p, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("sqlstore: the driver cannot prepare statements with a context")
			}
			var err error
			if st, err = p.PrepareContext(ctx, query); err != nil {
				return err
			}
			lc.stmts[query] = st
		}
		q, ok := st.(driver.StmtQueryContext)
		if !ok {
			return errors.New("sqlstore: the driver cannot query with a context")
		}
		named := lc.args[:0]
		defer clear(lc.args[:])
		for i, a := range args {
			v, err := driver.DefaultParameterConverter.ConvertValue(a)
			if err != nil {
				return err
			}
			named = append(named, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		rows, err := q.QueryContext(noCancel, named)
		if err != nil {
			return err
		}
		defer rows.Close()
		var cid, v intColumn
		for {
			if err := rows.Next(lc.dest[:]); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			if err := cid.Scan(lc.dest[0]); err != nil {
				return err
			}
			if err := v.Scan(lc.dest[1]); err != nil {
				return err
			}
			out = append(out, collectionValue{cid.v, v.v})
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return rows.Close()
	})
	return out, err
}

// put gives lc back to the lane after a use that ended with err; a
// connection that broke goes back to the pool, which drops it.
func (l *readLane) put(lc *laneConn, err error) {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		lc.close()
		l.n.Add(-1)
		return
	}
	l.idle <- lc // never blocks: at most max connections exist
	if l.closed.Load() {
		l.drain()
	}
}

// close returns the idle connections to the pool, and the busy ones as they
// are put back.
func (l *readLane) close() {
	l.closed.Store(true)
	l.drain()
}

func (l *readLane) drain() {
	for {
		select {
		case lc := <-l.idle:
			lc.close()
		default:
			return
		}
	}
}

func (lc *laneConn) close() {
	_ = lc.conn.Raw(func(any) error {
		for _, st := range lc.stmts {
			st.Close()
		}
		return nil
	})
	lc.conn.Close()
}
