package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"time"

	"github.com/weave-sync/weave/sqlstore"
)

// Round trips. Every statement the driver sends is a round trip to the
// server, which costs more than the statement itself once the server is a
// network hop away (1 ms in a production fleet). A write transaction is
// START TRANSACTION, the user's lock, the records, the collection
// timestamp and COMMIT: five round trips. With multi-statement packets
// (MultiStatements) and client-side interpolation (InterpolateParams),
// pipeConn sends them in two:
//
//   - BeginTx sends nothing: START TRANSACTION goes in the packet of the
//     transaction's first statement (and a transaction that runs none
//     costs no round trip at all);
//   - statements whose result the caller does not read
//     (sqlstore.MayDefer) are held, and go in the packet of the next
//     statement, or of the COMMIT.
//
// What the server makes of a multi-statement packet: it runs the
// statements in order and stops at the first that fails, whose error the
// driver returns. A held statement's error therefore comes back from a
// later call of the same transaction (the next statement, or Commit); the
// transaction is then rolled back as on any error (Commit does that
// itself), so it is never left open on a pooled connection, and the
// error's kind (deadlock, lock wait timeout, full disk, ...) is the
// statement's own, so retries and answers are what they were. Commit
// reports the statements' error, or COMMIT's; a lost reply is a
// connection error, as a lost COMMIT reply always was.
type pipeConn struct {
	driver.Conn
	ex driver.ExecerContext
	qu driver.QueryerContext
	// dial opens a fresh connection of the pool, set up as Connect sets
	// up its connections, for redial.
	dial func(ctx context.Context) (driver.Conn, error)

	// tx is the transaction begun lazily, nil outside one.
	tx *pipeTx
}

// pipeTx is a transaction of a pipeConn.
type pipeTx struct {
	c *pipeConn
	// ctx is the transaction's (BeginTx's): the statement that carries
	// START TRANSACTION, and the COMMIT, end with it, as the driver's own
	// START TRANSACTION did.
	ctx context.Context
	// begin is the START TRANSACTION still to be sent with the next
	// statement, "" once sent.
	begin string
	// held are the statements still to be sent.
	held []heldStmt
}

type heldStmt struct {
	query string
	args  []driver.NamedValue
}

// errHeld is what a held statement's result answers: it is not known yet.
var errHeld = errors.New("mysql: the statement was held for the transaction's next round trip; its result is not known")

type heldResult struct{}

func (heldResult) LastInsertId() (int64, error) { return 0, errHeld }
func (heldResult) RowsAffected() (int64, error) { return 0, errHeld }

func newPipeConn(conn driver.Conn, dial func(ctx context.Context) (driver.Conn, error)) (driver.Conn, error) {
	c := &pipeConn{dial: dial}
	if err := c.use(conn); err != nil {
		return nil, err
	}
	return c, nil
}

// use makes conn the driver connection c sends on.
func (c *pipeConn) use(conn driver.Conn) error {
	ex, ok1 := conn.(driver.ExecerContext)
	qu, ok2 := conn.(driver.QueryerContext)
	_, ok3 := conn.(driver.ConnBeginTx)
	_, ok4 := conn.(driver.ConnPrepareContext)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return errors.New("mysql: driver connection lacks the context interfaces")
	}
	c.Conn, c.ex, c.qu = conn, ex, qu
	return nil
}

// A dead connection. database/sql retries a BeginTx that fails with
// driver.ErrBadConn on another connection (the driver returns that error
// only when nothing of the statement went out, so that the server cannot
// have run it). With START TRANSACTION sent later, in the packet of the
// transaction's first statement, that failure comes from a statement of
// the transaction, which database/sql does not retry. The driver's
// liveness check when the pool hands out a connection catches most dead
// connections before (a connection the server closed on wait_timeout or
// a restart, or that was killed); what it misses (a connection that dies
// after the check, or checkConnLiveness=false) would make a write fail
// that BeginTx used to retry. So the transaction's first packet, when the
// driver says it did not go out, goes again once, on a fresh connection
// (redial). A failure after bytes went out is never retried here: the
// server may have run the statements, COMMIT included.

// redial replaces c's dead driver connection with a fresh one.
func (c *pipeConn) redial(ctx context.Context) error {
	fresh, err := c.dial(ctx)
	if err != nil {
		return err
	}
	old := c.Conn
	if err := c.use(fresh); err != nil {
		fresh.Close()
		return err
	}
	_ = old.Close() // the driver closed its socket already
	return nil
}

// exec sends a statement; first says it is the transaction's first packet
// (it carries START TRANSACTION).
func (c *pipeConn) exec(ctx context.Context, first bool, query string, args []driver.NamedValue) (driver.Result, error) {
	return resendFirst(ctx, c, first, func() (driver.Result, error) { return c.ex.ExecContext(ctx, query, args) })
}

// query is exec for a statement with rows.
func (c *pipeConn) query(ctx context.Context, first bool, query string, args []driver.NamedValue) (driver.Rows, error) {
	return resendFirst(ctx, c, first, func() (driver.Rows, error) { return c.qu.QueryContext(ctx, query, args) })
}

// resendFirst runs send, and for a transaction's first packet that the
// driver reports as not sent (driver.ErrBadConn) runs it once more on a
// fresh connection (see "A dead connection" above). send reads c's driver
// connection when it runs, so the second try goes out on the new one.
func resendFirst[T any](ctx context.Context, c *pipeConn, first bool, send func() (T, error)) (T, error) {
	v, err := send()
	if first && errors.Is(err, driver.ErrBadConn) && ctx.Err() == nil {
		if err = c.redial(ctx); err == nil {
			v, err = send()
		}
	}
	return v, err
}

// first reports whether the next packet of the connection is its
// transaction's first.
func (c *pipeConn) first() bool { return c.tx != nil && c.tx.begin != "" }

// BeginTx implements driver.ConnBeginTx. Transactions at another isolation
// level than the session's are begun by the driver, at once.
func (c *pipeConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.tx != nil {
		return nil, errors.New("mysql: a transaction is already open on the connection")
	}
	if opts.Isolation != driver.IsolationLevel(0) {
		return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	}
	begin := "START TRANSACTION"
	if opts.ReadOnly {
		begin = "START TRANSACTION READ ONLY"
	}
	c.tx = &pipeTx{c: c, ctx: ctx, begin: begin}
	return c.tx, nil
}

// Begin implements driver.Conn.
func (c *pipeConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// pending joins what the transaction has not sent yet in front of query:
// the statements' texts separated by semicolons, their arguments in order
// (the driver interpolates them, placeholder by placeholder).
func (t *pipeTx) pending(query string, args []driver.NamedValue) (string, []driver.NamedValue) {
	if t == nil || (t.begin == "" && len(t.held) == 0) {
		return query, args
	}
	var b strings.Builder
	var all []driver.NamedValue
	if t.begin != "" {
		b.WriteString(t.begin)
		b.WriteString("; ")
	}
	for _, h := range t.held {
		b.WriteString(h.query)
		b.WriteString("; ")
		all = append(all, h.args...)
	}
	b.WriteString(query)
	all = append(all, args...)
	for i := range all {
		all[i].Ordinal = i + 1
	}
	return b.String(), all
}

// sent notes that the pending statements went out, and with what outcome.
func (t *pipeTx) sent() {
	if t != nil {
		t.begin, t.held = "", nil
	}
}

// flushApart sends what is pending one statement at a time: the way out
// when a joined packet cannot be interpolated (driver.ErrSkip: too large,
// or an argument the driver only sends to a prepared statement).
func (c *pipeConn) flushApart(ctx context.Context) error {
	t := c.tx
	if t == nil {
		return nil
	}
	begin, held := t.begin, t.held
	t.sent()
	if begin != "" {
		if _, err := c.exec(ctx, true, begin, nil); err != nil {
			return err
		}
	}
	for _, h := range held {
		_, err := c.ex.ExecContext(ctx, h.query, h.args)
		if errors.Is(err, driver.ErrSkip) {
			err = c.execPrepared(ctx, h.query, h.args)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *pipeConn) execPrepared(ctx context.Context, query string, args []driver.NamedValue) error {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.(driver.StmtExecContext).ExecContext(ctx, args)
	return err
}

// unbound reports whether the transaction's START TRANSACTION is still to
// be sent by a statement whose context may outlive the transaction's.
func (t *pipeTx) unbound(ctx context.Context) bool {
	return t != nil && t.begin != "" && sqlstore.OutlivesTx(ctx, t.ctx)
}

// ExecContext implements driver.ExecerContext.
func (c *pipeConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.tx != nil && sqlstore.MayDefer(ctx) {
		c.tx.held = append(c.tx.held, heldStmt{query, args})
		return heldResult{}, nil
	}
	if c.tx.unbound(ctx) {
		var cancel context.CancelFunc
		ctx, cancel = sqlstore.BindToTx(ctx, c.tx.ctx)
		defer cancel()
	}
	q, a := c.tx.pending(query, args)
	res, err := c.exec(ctx, c.first(), q, a)
	if errors.Is(err, driver.ErrSkip) && q != query {
		if err := c.flushApart(ctx); err != nil {
			return nil, err
		}
		return c.ex.ExecContext(ctx, query, args) // ErrSkip again: database/sql prepares it
	}
	if !errors.Is(err, driver.ErrSkip) {
		c.tx.sent()
	}
	return res, err
}

// QueryContext implements driver.QueryerContext. The driver skips the
// results of the statements before the query, which have no rows.
func (c *pipeConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.tx.unbound(ctx) {
		// The rows outlive this call, and the driver watches the query's
		// context until they are closed: START TRANSACTION goes first,
		// alone, with the transaction's.
		if err := c.flushApart(c.tx.ctx); err != nil {
			return nil, err
		}
	}
	q, a := c.tx.pending(query, args)
	rows, err := c.query(ctx, c.first(), q, a)
	if errors.Is(err, driver.ErrSkip) && q != query {
		if err := c.flushApart(ctx); err != nil {
			return nil, err
		}
		return c.qu.QueryContext(ctx, query, args)
	}
	if !errors.Is(err, driver.ErrSkip) {
		c.tx.sent()
	}
	return rows, err
}

// PrepareContext implements driver.ConnPrepareContext: what is pending goes
// first, since the prepared statement runs without this wrapper.
func (c *pipeConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.flushApart(ctx); err != nil {
		return nil, err
	}
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

// Prepare implements driver.Conn.
func (c *pipeConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// Commit implements driver.Tx: the held statements and COMMIT in one
// packet, bound to the transaction's context (as pgx's COMMIT is; the
// driver's own is not bound to any, but it carried no statements).
func (t *pipeTx) Commit() error {
	c := t.c
	defer func() { c.tx = nil }()
	if t.begin != "" && len(t.held) == 0 {
		return nil // nothing ran: nothing to commit
	}
	ctx := t.ctx
	q, a := t.pending("COMMIT", nil)
	_, err := c.exec(ctx, t.begin != "", q, a)
	if errors.Is(err, driver.ErrSkip) {
		if err = c.flushApart(ctx); err == nil {
			_, err = c.ex.ExecContext(ctx, "COMMIT", nil)
		}
	}
	t.sent()
	if err != nil {
		// A statement before COMMIT failed, and the server ran nothing
		// after it: the transaction is open, and must not stay so on a
		// pooled connection. (On a broken connection this fails too, and
		// the driver has marked the connection bad; the server rolls back
		// what it did not commit.)
		_ = c.rollback()
	}
	return err
}

// Rollback implements driver.Tx. Held statements are dropped; a
// transaction whose START TRANSACTION was never sent has nothing to roll
// back.
func (t *pipeTx) Rollback() error {
	c := t.c
	defer func() { c.tx = nil }()
	begun := t.begin == ""
	t.sent()
	if !begun {
		return nil
	}
	return c.rollback()
}

// rollbackTimeout bounds a ROLLBACK, which runs after the transaction's
// context may have ended: a server that stopped answering must not hold
// the caller (a request, or database/sql's goroutine that rolls back a
// transaction whose context ended) for as long as the socket stays open.
// When it passes, the driver closes the connection, database/sql drops it,
// and the server rolls back whatever the connection left uncommitted.
var rollbackTimeout = 5 * time.Second

func (c *pipeConn) rollback() error {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	_, err := c.ex.ExecContext(ctx, "ROLLBACK", nil)
	return err
}

// The rest is the driver's, passed through.

// Ping implements driver.Pinger.
func (c *pipeConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

// ResetSession implements driver.SessionResetter.
func (c *pipeConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid implements driver.Validator.
func (c *pipeConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue implements driver.NamedValueChecker.
func (c *pipeConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
