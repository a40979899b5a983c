package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/faultproxy"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

// pipelineDB opens a fresh database whose write pool has one connection,
// so that every transaction runs on the connection the one before left;
// the second DB reaches the same database on its own connections.
func pipelineDB(t *testing.T) (*sqlstore.DB, *sqlstore.DB) {
	t.Helper()
	url := dbtest.Postgres(t)
	return pipelineDBAt(t, url, url)
}

// pipelineDBAt is pipelineDB on the database of url, reached through
// dbURL (e.g. a fault proxy, with parameters).
func pipelineDBAt(t *testing.T, url, dbURL string) (*sqlstore.DB, *sqlstore.DB) {
	t.Helper()
	ctx := t.Context()
	db, err := postgres.Open(ctx, dbURL, sqlstore.PoolOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Write.SetMaxOpenConns(1)
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, v BIGINT NOT NULL DEFAULT 0)`); err != nil {
		t.Fatal(err)
	}
	other, err := postgres.Open(ctx, url, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return db, other
}

func ids(t *testing.T, db *sqlstore.DB) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func hasID(t *testing.T, db *sqlstore.DB, id int) bool {
	t.Helper()
	var n int
	if err := db.Read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM t WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestPipelineHeldStatements: statements whose results are not read go
// with the next statement or the COMMIT, and commit with it; the rows of
// a query sent with them come back as pgx gives them.
func TestPipelineHeldStatements(t *testing.T) {
	db, other := pipelineDB(t)
	ctx := sqlstore.DeferExecs(t.Context())
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, 1, int64(1)<<40)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.RowsAffected(); err == nil {
		t.Error("a held statement reports a result")
	}
	var (
		n     int
		v     int64
		s     string
		b     []byte
		f     float64
		ok    bool
		when  time.Time
		null  sql.NullString
		total string
	)
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*), MAX(v), 'text', '\x0001ff'::bytea, 1.5::float8, true, '2026-01-02 03:04:05+00'::timestamptz, NULL::text, SUM(v) FROM t`).
		Scan(&n, &v, &s, &b, &f, &ok, &when, &null, &total)
	if err != nil || n != 1 {
		t.Fatalf("the transaction's query sees %d rows (%v), want its held insert", n, err)
	}
	if v != 1<<40 || s != "text" || string(b) != "\x00\x01\xff" || f != 1.5 || !ok ||
		!when.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || null.Valid || total != fmt.Sprint(int64(1)<<40) {
		t.Errorf("values read back: %v %q %q %v %v %v %v %q", v, s, b, f, ok, when, null, total)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES ($1)`, 2); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, other); got != 0 {
		t.Fatalf("%d rows visible before the commit", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, other); got != 2 {
		t.Fatalf("%d rows after the commit, want 2", got)
	}
}

// TestPipelineSeveralStatements: a text of several statements without
// arguments (which only the simple protocol runs) still runs inside a
// transaction, after what was held, and commits with it.
func TestPipelineSeveralStatements(t *testing.T) {
	db, other := pipelineDB(t)
	ctx := sqlstore.DeferExecs(t.Context())
	if err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES ($1)`, 1); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (2); UPDATE t SET v = 5 WHERE id = 1;`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var v int64
	if err := other.Read.QueryRowContext(t.Context(), `SELECT v FROM t WHERE id = 1`).Scan(&v); err != nil || v != 5 || ids(t, other) != 2 {
		t.Fatalf("after the transaction: v %d (%v), %d rows; want 5 and 2", v, err, ids(t, other))
	}
}

// cleanAfter checks that the one pooled connection is outside any
// transaction: an autocommitted write on it is visible at once elsewhere.
func cleanAfter(t *testing.T, db, other *sqlstore.DB) {
	t.Helper()
	if _, err := db.Write.ExecContext(t.Context(), `INSERT INTO t (id) VALUES (20)`); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, other); got != 1 || !hasID(t, other, 20) {
		t.Fatalf("%d rows visible, want only the autocommitted one (the connection stayed in the transaction?)", got)
	}
	if _, err := db.Write.ExecContext(t.Context(), `DELETE FROM t`); err != nil {
		t.Fatal(err)
	}
}

// TestPipelineFailedStatementRollsBack: when a held statement fails, the
// server runs nothing after it (not the COMMIT); the error is the
// statement's own and comes from the call that sent it, nothing of the
// transaction is committed, and the pooled connection is not left inside
// the transaction.
func TestPipelineFailedStatementRollsBack(t *testing.T) {
	db, other := pipelineDB(t)
	for _, via := range []string{"commit", "query", "exec"} {
		t.Run(via, func(t *testing.T) {
			ctx := sqlstore.DeferExecs(t.Context())
			tx, err := db.Write.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []int{10, 10, 11} { // the second fails on the key
				if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES ($1)`, id); err != nil {
					t.Fatal(err)
				}
			}
			switch via {
			case "query":
				var n int
				err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
				_ = tx.Rollback()
			case "exec":
				_, err = tx.ExecContext(t.Context(), `INSERT INTO t (id) VALUES (12)`)
				_ = tx.Rollback()
			default:
				err = tx.Commit()
			}
			if c := pgCode(err); c != "23505" {
				t.Fatalf("got %v, want the held statement's unique violation", err)
			}
			cleanAfter(t, db, other)
		})
	}
}

// waitLockWait waits until a session of db's database waits for a lock.
func waitLockWait(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := db.Read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no session waits for a lock after a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPipelineDeadlock: a held statement that deadlocks fails the COMMIT
// it went with, with the deadlock's error (which sqlstore retries as a
// conflict); nothing of it is committed and the connection is clean.
func TestPipelineDeadlock(t *testing.T) {
	db, other := pipelineDB(t)
	ctx := t.Context()
	if _, err := other.Write.ExecContext(ctx, `INSERT INTO t (id) VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE t SET v = 1 WHERE id = 1`); err != nil { // goes out: row 1 locked
		t.Fatal(err)
	}
	otx, err := other.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer otx.Rollback()
	// The other transaction never finds the deadlock first, however late
	// the pipeline's own check runs on a loaded machine.
	if _, err := otx.ExecContext(ctx, `SET LOCAL deadlock_timeout = '10min'`); err != nil {
		t.Skipf("cannot set deadlock_timeout (needs a superuser): %v", err)
	}
	if _, err := otx.ExecContext(ctx, `UPDATE t SET v = 2 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(sqlstore.DeferExecs(ctx), `UPDATE t SET v = 1 WHERE id = 2`); err != nil { // held
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tx.Commit() }() // waits for row 2 first, so it is the one to fail
	waitLockWait(t, other)
	if _, err := otx.ExecContext(ctx, `UPDATE t SET v = 2 WHERE id = 1`); err != nil {
		t.Fatalf("the other transaction failed (%v): the pipeline's should have", err)
	}
	err = <-done
	if c := pgCode(err); c != "40P01" {
		t.Fatalf("commit: %v, want the held statement's deadlock", err)
	}
	if !(postgres.Dialect{}).Retryable(err) {
		t.Error("the deadlock is not retryable")
	}
	if err := otx.Commit(); err != nil {
		t.Fatal(err)
	}
	var v1, v2 int64
	if err := other.Read.QueryRowContext(ctx, `SELECT (SELECT v FROM t WHERE id = 1), (SELECT v FROM t WHERE id = 2)`).Scan(&v1, &v2); err != nil {
		t.Fatal(err)
	}
	if v1 != 2 || v2 != 2 {
		t.Fatalf("rows hold %d, %d: want the other transaction's 2, 2 only", v1, v2)
	}
	if _, err := other.Write.ExecContext(ctx, `DELETE FROM t`); err != nil {
		t.Fatal(err)
	}
	cleanAfter(t, db, other)
}

// TestPipelineEmptyTransaction: a transaction that runs no statement costs
// no round trip and leaves nothing open.
func TestPipelineEmptyTransaction(t *testing.T) {
	url := dbtest.Postgres(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, _ := pipelineDBAt(t, url, viaProxy)
	for _, end := range []func(*sql.Tx) error{(*sql.Tx).Commit, (*sql.Tx).Rollback} {
		tx, err := db.Write.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		n := proxy.Requests()
		if err := end(tx); err != nil {
			t.Fatal(err)
		}
		if d := proxy.Requests() - n; d != 0 {
			t.Errorf("an empty transaction cost %d round trips", d)
		}
	}
}

// TestPipelineThenQuery: a query announced with sqlstore.ThenQuery goes in
// the round trip of the one before it, runs after it (in READ COMMITTED,
// it sees what the holder of the lock the first waited for committed) and
// is answered from what came back; a query other than the announced one
// runs as usual.
func TestPipelineThenQuery(t *testing.T) {
	url := dbtest.Postgres(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, other := pipelineDBAt(t, url, viaProxy)
	ctx := t.Context()
	if _, err := other.Write.ExecContext(ctx, `INSERT INTO t (id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	const lock, then = `SELECT id FROM t WHERE id = $1 FOR UPDATE`, `SELECT COUNT(*), MAX(v) FROM t WHERE id <> $1`
	// Once, so that the connection knows both statements' descriptions.
	if err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(sqlstore.ThenQuery(ctx, then, 1), lock, 1).Scan(new(int))
	}); err != nil {
		t.Fatal(err)
	}
	// The lock's holder adds a row while the pipeline waits for it.
	otx, err := other.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer otx.Rollback()
	if _, err := otx.ExecContext(ctx, `SELECT id FROM t WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	if _, err := otx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (2, 42)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	locked := make(chan error, 1)
	n0 := proxy.Requests()
	go func() {
		var id int
		locked <- tx.QueryRowContext(sqlstore.ThenQuery(ctx, then, 1), lock, 1).Scan(&id)
	}()
	waitLockWait(t, other)
	if err := otx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	var n int
	var v int64
	if err := tx.QueryRowContext(ctx, then, 1).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != 1 || v != 42 {
		t.Errorf("the announced query saw %d rows, max %d: want the lock holder's row (1, 42)", n, v)
	}
	if d := proxy.Requests() - n0; d != 1 {
		t.Errorf("BEGIN, the lock and the announced query took %d round trips, want 1", d)
	}
	// Announced, but something else runs next: the answer is dropped.
	if err := tx.QueryRowContext(sqlstore.ThenQuery(ctx, then, 1), lock, 1).Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (3, 7)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, then, 1).Scan(&n, &v); err != nil || n != 2 || v != 42 {
		t.Errorf("the query after another statement saw %d rows, max %d (%v): want 2, 42", n, v, err)
	}
	// Other arguments than announced: not answered from the announcement.
	if err := tx.QueryRowContext(sqlstore.ThenQuery(ctx, then, 1), lock, 1).Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, then, 2).Scan(&n, &v); err != nil || n != 2 || v != 7 {
		t.Errorf("the query with other arguments saw %d rows, max %d (%v): want 2, 7", n, v, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, other); got != 3 {
		t.Errorf("%d rows after the commit, want 3", got)
	}
}

// TestPipelineThenQueryFirstFails: when the first query fails (here a lock
// timeout), the announced one is not run, the error is the first's, and
// the connection is clean after the rollback.
func TestPipelineThenQueryFirstFails(t *testing.T) {
	db, other := pipelineDB(t)
	ctx := t.Context()
	if _, err := other.Write.ExecContext(ctx, `INSERT INTO t (id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	otx, err := other.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otx.ExecContext(ctx, `SELECT id FROM t WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = 50`); err != nil {
		t.Fatal(err)
	}
	err = tx.QueryRowContext(sqlstore.ThenQuery(ctx, `SELECT COUNT(*) FROM t`), `SELECT id FROM t WHERE id = 1 FOR UPDATE`).Scan(new(int))
	if c := pgCode(err); c != "55P03" {
		t.Fatalf("lock: %v, want the lock timeout", err)
	}
	_ = tx.Rollback()
	if err := otx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Write.ExecContext(ctx, `DELETE FROM t`); err != nil {
		t.Fatal(err)
	}
	cleanAfter(t, db, other)
}

// firstPipelines are the ways a write transaction's first pipeline (which
// carries BEGIN) goes out: with a statement whose result is read, with a
// query, or with the COMMIT when every statement was held.
var firstPipelines = []struct {
	name  string
	write func(ctx context.Context, tx *sql.Tx, id int) error
}{
	{"exec", func(ctx context.Context, tx *sql.Tx, id int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES ($1)`, id)
		return err
	}},
	{"query", func(ctx context.Context, tx *sql.Tx, id int) error {
		if _, err := tx.ExecContext(sqlstore.DeferExecs(ctx), `INSERT INTO t (id) VALUES ($1)`, id); err != nil {
			return err
		}
		var n int
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t WHERE id = $1`, id).Scan(&n)
	}},
	{"commit", func(ctx context.Context, tx *sql.Tx, id int) error {
		_, err := tx.ExecContext(sqlstore.DeferExecs(ctx), `INSERT INTO t (id) VALUES ($1)`, id)
		return err
	}},
}

// waitProxyIdle waits until the proxy forwards no connection.
func waitProxyIdle(t *testing.T, proxy *faultproxy.Proxy) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for proxy.Conns() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy still forwards %d connections after a minute", proxy.Conns())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// warm runs each first pipeline once, so that the connection knows the
// statements' descriptions and the next run is the pipeline alone.
func warm(t *testing.T, db *sqlstore.DB, id int) {
	t.Helper()
	for _, fp := range firstPipelines {
		if err := db.WriteTx(t.Context(), func(tx *sql.Tx) error { return fp.write(t.Context(), tx, id) }); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Write.ExecContext(t.Context(), `DELETE FROM t WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPipelineDeadConnectionRetried: a connection that dies after the pool
// handed it out, before the transaction's first pipeline went out (the
// server ended the session, or the network cut it), does not fail the
// write: the pipeline goes on a fresh connection, as database/sql does for
// a BeginTx that meets a dead connection.
func TestPipelineDeadConnectionRetried(t *testing.T) {
	url := dbtest.Postgres(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, other := pipelineDBAt(t, url, viaProxy)
	id := 100
	for _, fp := range firstPipelines {
		for _, death := range []string{"terminated", "cut"} {
			t.Run(fp.name+"/"+death, func(t *testing.T) {
				ctx := t.Context()
				warm(t, db, 99)
				var pid int
				if err := db.Write.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
					t.Fatal(err)
				}
				accepted := proxy.Accepted()
				id++
				err := db.WriteTx(ctx, func(tx *sql.Tx) error {
					// The connection is the transaction's now; it dies.
					if death == "terminated" {
						if _, err := other.Write.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
							t.Fatal(err)
						}
					} else {
						proxy.DropAll()
					}
					waitProxyIdle(t, proxy)
					return fp.write(ctx, tx, id)
				})
				if err != nil {
					t.Fatalf("write on a connection %s before its first pipeline: %v", death, err)
				}
				if n := proxy.Accepted() - accepted; n != 1 {
					t.Errorf("%d connections opened, want the one that replaced the dead one", n)
				}
				if !hasID(t, other, id) {
					t.Error("the write succeeded, but its row is not there")
				}
			})
		}
	}
}

// TestPipelineCutAfterSendNotRetried: when the connection is cut as the
// first pipeline goes out, the server may have run it (COMMIT included):
// the write fails as unavailable and is not sent again. (The proxy drops
// the pipeline and fires once, so a resend would show as the row being
// there.)
func TestPipelineCutAfterSendNotRetried(t *testing.T) {
	url := dbtest.Postgres(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, other := pipelineDBAt(t, url, viaProxy)
	ctx := t.Context()
	for i, fp := range firstPipelines {
		t.Run(fp.name, func(t *testing.T) {
			warm(t, db, 99)
			// The id's binary form marks the pipeline (not its description).
			id := 0x57454156 + i // "WEAV"...
			cut := proxy.CutOn(string([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}))
			err := db.WriteTx(ctx, func(tx *sql.Tx) error { return fp.write(ctx, tx, id) })
			proxy.Disarm()
			select {
			case <-cut:
			case <-time.After(time.Minute):
				t.Fatalf("the proxy never saw the write (%v)", err)
			}
			if !errors.Is(err, weave.ErrUnavailable) {
				t.Errorf("write cut as it went out: %v, want unavailable", err)
			}
			// (Connections opened meanwhile prove nothing here: pgx sends
			// a cancel request on a connection of its own when it drops a
			// broken one.)
			if hasID(t, other, id) {
				t.Error("the write was sent again")
			}
			waitProxyIdle(t, proxy)
		})
	}
}

// TestPipelineRollbackBounded: a ROLLBACK to a server that stopped
// answering gives up after its bound (pgx then closes the connection, and
// the server rolls back), instead of holding the goroutine for as long as
// the socket stays open.
func TestPipelineRollbackBounded(t *testing.T) {
	url := dbtest.Postgres(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, other := pipelineDBAt(t, url, viaProxy)
	defer postgres.SetRollbackTimeout(100 * time.Millisecond)()
	ctx := t.Context()
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (1)`); err != nil { // BEGIN goes out
		t.Fatal(err)
	}
	proxy.Stall()
	done := make(chan error, 1)
	go func() { done <- tx.Rollback() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("ROLLBACK to a stalled server succeeded")
		}
	case <-time.After(time.Minute):
		t.Fatal("ROLLBACK to a stalled server still waits after a minute (its bound is 100 ms)")
	}
	if err := proxy.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO t (id) VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if hasID(t, other, 1) || !hasID(t, other, 2) {
		t.Error("rows after the rollback: want 2 only")
	}
}

// TestPipelineURLParameter: the pipeline is on by default and off with
// pipeline=false (which is not sent to the server); either way a Store
// writes (records, a batch, a delete) and reads back what it wrote. A
// write costs 2 round trips with it and 6 without.
func TestPipelineURLParameter(t *testing.T) {
	url := dbtest.Postgres(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	if _, err := postgres.ParseURL(url + "&pipeline=sometimes"); err == nil {
		t.Error("pipeline=sometimes accepted")
	}
	cfg, err := postgres.ParseURL(url + "&pipeline=false")
	if err != nil {
		t.Fatal(err)
	}
	if _, sent := cfg.RuntimeParams["pipeline"]; sent {
		t.Error("pipeline would be sent to the server as a setting")
	}
	payloads := []string{`'); DROP TABLE bsos; --`, `back\slash \' \" ; ? $1`, "ünïcødé 🦊", "", strings.Repeat("x", 70000)}
	for i, param := range []string{"", "&pipeline=true", "&pipeline=false", "&pipeline=0"} {
		name := strings.TrimPrefix(param, "&")
		if name == "" {
			name = "default"
		}
		on := !strings.Contains(param, "false") && !strings.Contains(param, "=0")
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := sqltest.OpenStore(t, viaProxy+param, sqlstore.StoreOptions{})
			sqltest.CheckPipelinedPools(t, s, postgres.Pipelined, on)
			uid := int64(1000 + i)
			us := sqltest.WriteEveryWay(t, s, uid, payloads)
			// A POST of a known user, the statements' descriptions known:
			// the fewest round trips of a few. Each comes after the user's
			// last write's 10 ms tick: a write in the same tick waits for
			// the next one, after a first transaction of the lock alone
			// (sqlstore's errWaitTick), which would add its round trips.
			fewest := int64(1 << 30)
			for range 3 {
				time.Sleep(20 * time.Millisecond)
				n := proxy.Requests()
				if _, err := s.PostBSOs(ctx, uid, "history", us[:2], weave.Precondition{}); err != nil {
					t.Fatal(err)
				}
				fewest = min(fewest, proxy.Requests()-n)
			}
			if want := map[bool]int64{true: 2, false: 6}[on]; fewest != want {
				t.Errorf("a POST took %d round trips, want %d", fewest, want)
			}
		})
	}
}
