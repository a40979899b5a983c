package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/weave-sync/weave/sqlstore"
)

// Round trips. Through database/sql and pgx, every statement of a
// transaction is a round trip, BEGIN and COMMIT included: a write (BEGIN,
// the user's lock, the locked state, the records, the collection timestamp,
// COMMIT) is six, and with the database 1 ms away the round trips are most
// of its time. The write pool's connections (pipeConn) send a transaction
// in the protocol's pipeline mode instead, several statements per round
// trip, each still a statement of its own (Parse, Bind, Execute), the lot
// ended by one Sync:
//
//   - BeginTx sends nothing: BEGIN goes with the transaction's first
//     statement that must go out (and a transaction that runs none costs
//     no round trip at all);
//   - statements whose result the caller does not read
//     (sqlstore.MayDefer) are held, and go with the next statement, or
//     with the COMMIT;
//   - a query marked with the one that follows it (sqlstore.ThenQuery,
//     the write's locked state after its lock) goes with it, and the
//     second is answered from what came back.
//
// So a write is two round trips: BEGIN, the lock and the locked state;
// then the records, the timestamp and COMMIT.
//
// What the server makes of a pipeline: it runs the statements in order;
// the first that fails ends the transaction's work (it is aborted) and the
// server skips everything up to the Sync, COMMIT included. Its error comes
// back from the call that sent it, which for a held statement is a later
// call of the same transaction (the next statement, or Commit); the
// transaction is then rolled back as on any error (Commit does that
// itself), so it is never left open on a pooled connection, and the
// error is the statement's own (deadlock, lock timeout, full disk, ...), so
// retries and answers are what they were. In READ COMMITTED each statement
// of a pipeline takes its snapshot when the server reaches it, after the
// statements before it finished: the locked state is read after the lock
// was granted, as when it was a round trip of its own.
//
// COMMIT goes as text, through the unnamed statement, like every statement
// of a pipeline (a statement prepared under a name would leave its text
// off the wire): Commit reports success only when COMMIT's own reply says
// COMMIT; a lost reply is a connection error, as it always was.
//
// Statements need their parameter types to be encoded as pgx encodes them
// (binary integers, ...): the connection asks the server for a statement's
// description the first time it sends its text (one round trip for all
// the new texts of a pipeline, as pgx prepares a statement on its first
// use) and keeps it (described).
type pipeConn struct {
	*stdlib.Conn
	// dial opens a fresh connection of the pool, for redial.
	dial func(ctx context.Context) (*stdlib.Conn, error)

	// tx is the transaction begun lazily, nil outside one.
	tx *pipeTx
	// next is what came back for the query a ThenQuery announced, until
	// the transaction's next statement.
	next *prefetched
	// described holds the descriptions of statement texts sent so far.
	described map[string]*pgconn.StatementDescription
}

// maxDescribed bounds pipeConn.described (pgx's own statement cache holds
// 512): past it, the map starts over.
const maxDescribed = 512

// pipeTx is a transaction of a pipeConn.
type pipeTx struct {
	c *pipeConn
	// ctx is BeginTx's: the statement that carries BEGIN, and the COMMIT,
	// end with it, as pgx's own BEGIN and COMMIT did.
	ctx context.Context
	// begun says BEGIN went out (or may have).
	begun bool
	// held are the statements still to be sent.
	held []stmt
}

// stmt is a statement of a pipeline.
type stmt struct {
	query string
	args  []any
	// control marks BEGIN and COMMIT: no parameters, no rows, no
	// description.
	control bool

	sd            *pgconn.StatementDescription
	values        [][]byte
	formats       []int16
	resultFormats []int16
}

var (
	beginStmt  = stmt{query: "BEGIN", control: true}
	commitStmt = stmt{query: "COMMIT", control: true}
)

// result is a statement's outcome, its rows read whole.
type result struct {
	fields []pgconn.FieldDescription
	rows   [][][]byte
	tag    pgconn.CommandTag
}

type prefetched struct {
	query string
	args  []any
	res   result
	err   error
}

// errHeld is what a held statement's result answers: it is not known yet.
var errHeld = errors.New("postgres: the statement was held for the transaction's next round trip; its result is not known")

type heldResult struct{}

func (heldResult) LastInsertId() (int64, error) { return 0, errHeld }
func (heldResult) RowsAffected() (int64, error) { return 0, errHeld }

// pipeConnector opens the write pool's connections as pipeConns.
type pipeConnector struct {
	driver.Connector
}

func (pc pipeConnector) Connect(ctx context.Context) (driver.Conn, error) {
	sc, err := pc.connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pipeConn{Conn: sc, dial: pc.connect}, nil
}

func (pc pipeConnector) connect(ctx context.Context) (*stdlib.Conn, error) {
	conn, err := pc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("postgres: driver connection is a %T, not pgx's", conn)
	}
	return sc, nil
}

// A dead connection. database/sql retries a BeginTx that fails with
// driver.ErrBadConn on another connection (pgx returns that error only when
// nothing went out). With BEGIN sent later, with the transaction's first
// statement, that failure comes from a statement, which database/sql does
// not retry. The pool's ping of a connection that was idle or whose socket
// shows the server gone (shouldPing) catches most dead connections before;
// what it misses would make a write fail that BeginTx used to retry. So
// the transaction's first pipeline, when pgx says nothing of it went out,
// goes again once, on a fresh connection. A failure after bytes went out
// is never retried here: the server may have run the statements. And
// before the first pipeline goes out, the socket is looked at (socketAlive,
// no round trip): the server's goodbye, or a closed connection, found there
// makes a fresh connection take over.

// redial replaces c's dead driver connection with a fresh one.
func (c *pipeConn) redial(ctx context.Context) error {
	fresh, err := c.dial(ctx)
	if err != nil {
		return err
	}
	old := c.Conn
	c.Conn, c.described = fresh, nil
	_ = old.Close() // pgx closed its socket already
	return nil
}

// BeginTx implements driver.ConnBeginTx. Transactions with options (an
// isolation level, read-only) are begun by pgx, at once.
func (c *pipeConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.tx != nil {
		return nil, errors.New("postgres: a transaction is already open on the connection")
	}
	c.next = nil
	if opts.Isolation != driver.IsolationLevel(0) || opts.ReadOnly {
		return c.Conn.BeginTx(ctx, opts)
	}
	if c.Conn.Conn().IsClosed() {
		return nil, driver.ErrBadConn
	}
	c.tx = &pipeTx{c: c, ctx: ctx}
	return c.tx, nil
}

// Begin implements driver.Conn.
func (c *pipeConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// pending reports whether the transaction has statements still to send.
func (t *pipeTx) pending() bool { return t != nil && (!t.begun || len(t.held) > 0) }

// take returns what the transaction has not sent yet followed by more,
// and notes it as sent.
func (t *pipeTx) take(more ...stmt) []stmt {
	var out []stmt
	if !t.begun {
		out = append(out, beginStmt)
	}
	out = append(out, t.held...)
	t.held = nil
	return append(out, more...)
}

// unbound reports whether BEGIN would go out with a statement whose
// context may outlive the transaction's.
func (t *pipeTx) unbound(ctx context.Context) bool {
	return !t.begun && sqlstore.OutlivesTx(ctx, t.ctx)
}

// takeNext drops what a ThenQuery brought, and returns its error: a failed
// read ended the transaction, whatever the caller sends next.
func (c *pipeConn) takeNext() error {
	n := c.next
	c.next = nil
	if n != nil {
		return n.err
	}
	return nil
}

func values(args []driver.NamedValue) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

// ExecContext implements driver.ExecerContext.
func (c *pipeConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	t := c.tx
	if t == nil {
		return c.Conn.ExecContext(ctx, query, args)
	}
	if err := c.takeNext(); err != nil {
		return nil, err
	}
	if len(args) == 0 && severalStatements(query) {
		// Only the simple protocol, pgx's for a statement without
		// arguments, runs several in one text; a pipeline's Parse refuses
		// them. What is pending goes first.
		if t.pending() {
			if _, _, err := c.send(t.ctx, t.take(), false); err != nil {
				return nil, err
			}
		}
		return c.Conn.ExecContext(ctx, query, args)
	}
	if sqlstore.MayDefer(ctx) {
		t.held = append(t.held, stmt{query: query, args: values(args)})
		return heldResult{}, nil
	}
	if !t.pending() {
		return c.Conn.ExecContext(ctx, query, args)
	}
	if t.unbound(ctx) {
		var cancel context.CancelFunc
		ctx, cancel = sqlstore.BindToTx(ctx, t.ctx)
		defer cancel()
	}
	res, _, err := c.send(ctx, t.take(stmt{query: query, args: values(args)}), false)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(res[len(res)-1].tag.RowsAffected()), nil
}

// QueryContext implements driver.QueryerContext.
func (c *pipeConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	t := c.tx
	if t == nil {
		return c.Conn.QueryContext(ctx, query, args)
	}
	if n := c.next; n != nil {
		c.next = nil
		if n.query == query && sameArgs(n.args, args) {
			if n.err != nil {
				return nil, n.err
			}
			return c.bufferedRows(n.res), nil
		}
		if n.err != nil {
			return nil, n.err
		}
	}
	nextQuery, nextArgs, then := sqlstore.NextQuery(ctx)
	if !t.pending() && !then {
		return c.Conn.QueryContext(ctx, query, args)
	}
	if !then {
		if t.unbound(ctx) {
			// The rows outlive this call, and pgx watches the query's
			// context until they are closed: BEGIN goes first, alone,
			// with the transaction's.
			if _, _, err := c.send(t.ctx, t.take(), false); err != nil {
				return nil, err
			}
		}
		// The rows stream, as pgx's do: the pipeline ends when they are
		// closed.
		_, rows, err := c.send(ctx, t.take(stmt{query: query, args: values(args)}), true)
		return rows, err
	}
	if t.unbound(ctx) {
		var cancel context.CancelFunc
		ctx, cancel = sqlstore.BindToTx(ctx, t.ctx)
		defer cancel()
	}
	stmts := t.take(stmt{query: query, args: values(args)}, stmt{query: nextQuery, args: nextArgs})
	res, _, err := c.send(ctx, stmts, false)
	switch {
	case err == nil:
		c.next = &prefetched{query: nextQuery, args: nextArgs, res: res[len(res)-1]}
		return c.bufferedRows(res[len(res)-2]), nil
	case len(res) == len(stmts)-1:
		// The query's rows came, and then the next one failed: the
		// transaction is over, with that error, whatever comes next.
		c.next = &prefetched{query: nextQuery, args: nextArgs, err: err}
		return c.bufferedRows(res[len(res)-1]), nil
	}
	return nil, err
}

// severalStatements reports whether query may hold more than one
// statement: a semicolon before its end (perhaps inside a literal, which
// costs only a round trip).
func severalStatements(query string) bool {
	return strings.Contains(strings.TrimRight(query, "; \t\r\n"), ";")
}

// sameArgs reports whether a query's arguments are those a ThenQuery
// announced.
func sameArgs(announced []any, args []driver.NamedValue) (same bool) {
	if len(announced) != len(args) {
		return false
	}
	defer func() {
		if recover() != nil { // values of a type == cannot compare
			same = false
		}
	}()
	for i := range args {
		if args[i].Name != "" || announced[i] != args[i].Value {
			return false
		}
	}
	return true
}

// PrepareContext implements driver.ConnPrepareContext: what is pending
// goes first, since the prepared statement runs without this wrapper.
func (c *pipeConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if t := c.tx; t != nil {
		if err := c.takeNext(); err != nil {
			return nil, err
		}
		if t.pending() {
			if _, _, err := c.send(t.ctx, t.take(), false); err != nil {
				return nil, err
			}
		}
	}
	return c.Conn.PrepareContext(ctx, query)
}

// Prepare implements driver.Conn.
func (c *pipeConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// Commit implements driver.Tx: the held statements and COMMIT in one
// pipeline, bound to the transaction's context (as pgx's COMMIT is).
func (t *pipeTx) Commit() error {
	c := t.c
	defer func() { c.tx, c.next = nil, nil }()
	err := c.takeNext()
	if err == nil {
		if !t.begun && len(t.held) == 0 {
			return nil // nothing ran: nothing to commit
		}
		var res []result
		res, _, err = c.send(t.ctx, t.take(commitStmt), false)
		if err == nil {
			// COMMIT of a transaction that failed answers ROLLBACK.
			if tag := res[len(res)-1].tag; tag.String() != "COMMIT" {
				err = fmt.Errorf("postgres: COMMIT answered %q: the transaction was rolled back", tag.String())
			}
		}
	}
	if err != nil {
		// A statement before COMMIT failed and the server skipped the
		// rest: the transaction is open (aborted), and must not stay so on
		// a pooled connection. (On a broken connection this fails too,
		// and the server rolls back what it did not commit.)
		_ = c.rollback()
	}
	return err
}

// Rollback implements driver.Tx. Held statements are dropped; a
// transaction whose BEGIN was never sent has nothing to roll back.
func (t *pipeTx) Rollback() error {
	c := t.c
	defer func() { c.tx, c.next = nil, nil }()
	t.held = nil
	if !t.begun {
		return nil
	}
	return c.rollback()
}

// rollbackTimeout bounds a ROLLBACK, which runs after the transaction's
// context may have ended: a server that stopped answering must not hold
// the caller (a request, or database/sql's goroutine that rolls back a
// transaction whose context ended) for as long as the socket stays open.
// When it passes, pgx closes the connection and the server rolls back
// whatever the connection left uncommitted.
var rollbackTimeout = 5 * time.Second

func (c *pipeConn) rollback() error {
	if c.Conn.Conn().IsClosed() {
		return driver.ErrBadConn
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	_, err := c.Conn.ExecContext(ctx, "ROLLBACK", nil)
	return err
}

// send runs stmts as one pipeline (after describing the texts it has not
// seen) and returns the results of those that ran, with the error of the
// first that failed. With stream, the last statement's rows are returned
// unread, the pipeline open until they are closed. The transaction's first
// pipeline goes again on a fresh connection when nothing of it went out
// (see "A dead connection" above).
func (c *pipeConn) send(ctx context.Context, stmts []stmt, stream bool) ([]result, driver.Rows, error) {
	first := len(stmts) > 0 && stmts[0].query == beginStmt.query && stmts[0].control
	if first && !socketAlive(c.Conn.Conn().PgConn().Conn()) && ctx.Err() == nil {
		// Found without a byte sent (as the pool's check would, had the
		// connection died before it): a fresh one takes over.
		if err := c.redial(ctx); err != nil {
			return nil, nil, err
		}
	}
	res, rows, err := c.try(ctx, stmts, stream)
	if first && err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		if err = c.redial(ctx); err == nil {
			res, rows, err = c.try(ctx, stmts, stream)
		}
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			c.described = nil // a schema change may have made one wrong
		}
	}
	return res, rows, err
}

func (c *pipeConn) try(ctx context.Context, stmts []stmt, stream bool) ([]result, driver.Rows, error) {
	if err := c.describe(ctx, stmts); err != nil {
		return nil, nil, err
	}
	m := c.Conn.Conn().TypeMap()
	for i := range stmts {
		s := &stmts[i]
		if s.control {
			continue
		}
		var eqb pgx.ExtendedQueryBuilder
		if err := eqb.Build(m, s.sd, s.args); err != nil {
			return nil, nil, err
		}
		s.values, s.formats = eqb.ParamValues, eqb.ParamFormats
		s.resultFormats = resultFormats(s.sd.Fields)
	}

	p := c.Conn.Conn().PgConn().StartPipeline(ctx)
	for _, s := range stmts {
		if s.control {
			p.SendQueryParams(s.query, nil, nil, nil, nil)
		} else {
			p.SendQueryParams(s.query, s.values, s.sd.ParamOIDs, s.formats, s.resultFormats)
		}
	}
	if c.tx != nil && len(stmts) > 0 && stmts[0].control && stmts[0].query == beginStmt.query {
		c.tx.begun = true
	}
	if err := p.Sync(); err != nil {
		_ = p.Close()
		return nil, nil, err
	}
	out := make([]result, 0, len(stmts))
	var ferr error
	for i := range stmts {
		r, err := p.GetResults()
		if err != nil {
			ferr = err
			break
		}
		rr, ok := r.(*pgconn.ResultReader)
		if !ok {
			ferr = fmt.Errorf("postgres: pipeline: %T where a statement's result was due", r)
			break
		}
		fields := slices.Clone(rr.FieldDescriptions())
		if stream && i == len(stmts)-1 {
			rows := &streamRows{p: p, rr: rr, decode: decoders(c.Conn.Conn().TypeMap(), fields), fields: fields}
			// Read the first row now, so that the statement's error (a
			// lock timeout, ...) comes from this call, as with pgx.
			if rows.more = rr.NextRow(); !rows.more {
				if err := rows.finish(); err != nil {
					return out, nil, err
				}
			}
			rows.preloaded = true
			return out, rows, nil
		}
		br := rr.Read()
		if br.Err != nil {
			ferr = br.Err
			break
		}
		out = append(out, result{fields: fields, rows: br.Rows, tag: br.CommandTag})
	}
	if err := p.Close(); ferr == nil {
		ferr = err
	}
	return out, nil, ferr
}

// describe gets the descriptions of stmts' texts, from the server for
// those the connection has not seen, all in one round trip.
func (c *pipeConn) describe(ctx context.Context, stmts []stmt) error {
	var missing []string
	for i := range stmts {
		s := &stmts[i]
		if s.control {
			continue
		}
		if s.sd = c.described[s.query]; s.sd == nil && !slices.Contains(missing, s.query) {
			missing = append(missing, s.query)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	p := c.Conn.Conn().PgConn().StartPipeline(ctx)
	for _, q := range missing {
		p.SendPrepare("", q, nil)
	}
	if err := p.Sync(); err != nil {
		_ = p.Close()
		return err
	}
	got := make([]*pgconn.StatementDescription, 0, len(missing))
	var ferr error
	for range missing {
		r, err := p.GetResults()
		if err != nil {
			ferr = err
			break
		}
		sd, ok := r.(*pgconn.StatementDescription)
		if !ok {
			ferr = fmt.Errorf("postgres: pipeline: %T where a statement description was due", r)
			break
		}
		got = append(got, sd)
	}
	if err := p.Close(); ferr == nil {
		ferr = err
	}
	if ferr != nil {
		return ferr
	}
	if c.described == nil || len(c.described)+len(got) > maxDescribed {
		c.described = make(map[string]*pgconn.StatementDescription)
	}
	for i, sd := range got {
		sd.SQL = missing[i]
		c.described[missing[i]] = sd
	}
	for i := range stmts {
		if s := &stmts[i]; !s.control && s.sd == nil {
			s.sd = c.described[s.query]
		}
	}
	return nil
}

// Rows as pgx's database/sql driver gives them: the types whose binary
// form it reads come binary and as Go values of the same types; the rest
// come as text, as strings.

func binaryResult(oid uint32) bool {
	switch oid {
	case pgtype.BoolOID, pgtype.ByteaOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID,
		pgtype.Float4OID, pgtype.Float8OID, pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return true
	}
	return false
}

func resultFormats(fields []pgconn.FieldDescription) []int16 {
	if len(fields) == 0 {
		return nil
	}
	f := make([]int16, len(fields))
	for i, fd := range fields {
		if binaryResult(fd.DataTypeOID) {
			f[i] = pgtype.BinaryFormatCode
		}
	}
	return f
}

type decodeFunc func(src []byte) (driver.Value, error)

func decoders(m *pgtype.Map, fields []pgconn.FieldDescription) []decodeFunc {
	out := make([]decodeFunc, len(fields))
	for i, fd := range fields {
		out[i] = decoder(m, fd)
	}
	return out
}

func decoder(m *pgtype.Map, fd pgconn.FieldDescription) decodeFunc {
	oid, format := fd.DataTypeOID, fd.Format
	switch oid {
	case pgtype.BoolOID:
		return scanAs[bool](m, oid, format, func(v bool) driver.Value { return v })
	case pgtype.ByteaOID:
		return scanAs[[]byte](m, oid, format, func(v []byte) driver.Value { return v })
	case pgtype.Int2OID:
		return scanAs[int16](m, oid, format, func(v int16) driver.Value { return int64(v) })
	case pgtype.Int4OID:
		return scanAs[int32](m, oid, format, func(v int32) driver.Value { return int64(v) })
	case pgtype.Int8OID:
		return scanAs[int64](m, oid, format, func(v int64) driver.Value { return v })
	case pgtype.Float4OID:
		return scanAs[float32](m, oid, format, func(v float32) driver.Value { return float64(v) })
	case pgtype.Float8OID:
		return scanAs[float64](m, oid, format, func(v float64) driver.Value { return v })
	case pgtype.DateOID:
		return scanValuer[pgtype.Date](m, oid, format)
	case pgtype.TimestampOID:
		return scanValuer[pgtype.Timestamp](m, oid, format)
	case pgtype.TimestamptzOID:
		return scanValuer[pgtype.Timestamptz](m, oid, format)
	}
	if format == pgtype.TextFormatCode {
		return func(src []byte) (driver.Value, error) { return string(src), nil }
	}
	return scanAs[string](m, oid, format, func(v string) driver.Value { return v })
}

func scanAs[T any](m *pgtype.Map, oid uint32, format int16, conv func(T) driver.Value) decodeFunc {
	var d T
	plan := m.PlanScan(oid, format, &d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, &d); err != nil {
			return nil, err
		}
		return conv(d), nil
	}
}

func scanValuer[T any, PT interface {
	*T
	driver.Valuer
}](m *pgtype.Map, oid uint32, format int16) decodeFunc {
	var d T
	plan := m.PlanScan(oid, format, &d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, &d); err != nil {
			return nil, err
		}
		return PT(&d).Value()
	}
}

func columns(fields []pgconn.FieldDescription) []string {
	names := make([]string, len(fields))
	for i, fd := range fields {
		names[i] = fd.Name
	}
	return names
}

func decodeRow(decode []decodeFunc, row [][]byte, dest []driver.Value) error {
	for i, v := range row {
		if v == nil {
			dest[i] = nil
			continue
		}
		var err error
		if dest[i], err = decode[i](v); err != nil {
			return fmt.Errorf("convert field %d failed: %w", i, err)
		}
	}
	return nil
}

// bufRows are rows read whole.
type bufRows struct {
	fields []pgconn.FieldDescription
	decode []decodeFunc
	rows   [][][]byte
}

func (c *pipeConn) bufferedRows(r result) *bufRows {
	return &bufRows{fields: r.fields, decode: decoders(c.Conn.Conn().TypeMap(), r.fields), rows: r.rows}
}

func (r *bufRows) Columns() []string { return columns(r.fields) }
func (r *bufRows) Close() error      { r.rows = nil; return nil }

func (r *bufRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	row := r.rows[0]
	r.rows = r.rows[1:]
	return decodeRow(r.decode, row, dest)
}

// streamRows are the rows of a pipeline's last statement, read as they
// come; closing them ends the pipeline.
type streamRows struct {
	p      *pgconn.Pipeline
	rr     *pgconn.ResultReader
	fields []pgconn.FieldDescription
	decode []decodeFunc
	// preloaded: the first row (if more) has been read already.
	preloaded, more, done bool
	err                   error
}

func (r *streamRows) Columns() []string { return columns(r.fields) }

func (r *streamRows) Next(dest []driver.Value) error {
	if r.done {
		if r.err != nil {
			return r.err
		}
		return io.EOF
	}
	if r.preloaded {
		r.preloaded = false
	} else {
		r.more = r.rr.NextRow()
	}
	if !r.more {
		if err := r.finish(); err != nil {
			return err
		}
		return io.EOF
	}
	return decodeRow(r.decode, r.rr.Values(), dest)
}

func (r *streamRows) Close() error { return r.finish() }

// finish reads the rest of the statement and the pipeline's end.
func (r *streamRows) finish() error {
	if r.done {
		return r.err
	}
	r.done = true
	_, err := r.rr.Close()
	if cerr := r.p.Close(); err == nil {
		err = cerr
	}
	r.err = err
	return err
}
