package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/faultproxy"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
)

// pipelineDB opens a fresh database whose write pool has one connection,
// so that every transaction runs on the connection the one before left.
func pipelineDB(t *testing.T) (*sqlstore.DB, *sqlstore.DB) {
	t.Helper()
	url := dbtest.MySQL(t)
	return pipelineDBAt(t, url, url)
}

// pipelineDBAt is pipelineDB on the database of url, reached through
// dbURL (e.g. a fault proxy, with driver parameters); the second DB
// reaches it directly.
func pipelineDBAt(t *testing.T, url, dbURL string) (*sqlstore.DB, *sqlstore.DB) {
	t.Helper()
	ctx := t.Context()
	// A generous deadline: the large statements of TestPipelinePacketLimit
	// are slow to escape under the race detector.
	db, err := mysql.Open(ctx, dbURL, sqlstore.PoolOptions{Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Write.SetMaxOpenConns(1)
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	other, err := mysql.Open(ctx, url, sqlstore.PoolOptions{})
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

// TestPipelineHeldStatements: statements whose results are not read go
// with the next statement or the COMMIT, and commit with it.
func TestPipelineHeldStatements(t *testing.T) {
	db, other := pipelineDB(t)
	ctx := sqlstore.DeferExecs(t.Context())
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.RowsAffected(); err == nil {
		t.Error("a held statement reports a result")
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the transaction's query sees %d rows (%v), want its held insert", n, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 2); err != nil {
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

// TestPipelineFailedStatementRollsBack: when a held statement fails, the
// server runs nothing after it (not the COMMIT); the error comes from the
// call that sent it, nothing of the transaction is committed, and the
// pooled connection is not left inside the transaction.
func TestPipelineFailedStatementRollsBack(t *testing.T) {
	db, other := pipelineDB(t)
	for _, via := range []string{"commit", "query"} {
		t.Run(via, func(t *testing.T) {
			ctx := sqlstore.DeferExecs(t.Context())
			tx, err := db.Write.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []int{10, 10, 11} { // the second fails on the key
				if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, id); err != nil {
					t.Fatal(err)
				}
			}
			if via == "query" {
				var n int
				err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
				_ = tx.Rollback()
			} else {
				err = tx.Commit()
			}
			var me *mysqldrv.MySQLError
			if !errors.As(err, &me) || me.Number != 1062 {
				t.Fatalf("got %v, want the held statement's duplicate-key error", err)
			}
			// The next statement on the one connection commits on its own.
			if _, err := db.Write.ExecContext(t.Context(), `INSERT INTO t VALUES (?)`, 20); err != nil {
				t.Fatal(err)
			}
			if got := ids(t, other); got != 1 {
				t.Fatalf("%d rows visible, want only the autocommitted one (the connection stayed in the transaction?)", got)
			}
			if _, err := db.Write.ExecContext(t.Context(), `DELETE FROM t`); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPipelineEmptyTransaction: a transaction that runs no statement costs
// no round trip and leaves nothing open.
func TestPipelineEmptyTransaction(t *testing.T) {
	db, _ := pipelineDB(t)
	for _, end := range []func(*sql.Tx) error{(*sql.Tx).Commit, (*sql.Tx).Rollback} {
		tx, err := db.Write.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := end(tx); err != nil {
			t.Fatal(err)
		}
	}
}

// firstPackets are the ways a write transaction's first packet (which
// carries START TRANSACTION) goes out: with a statement whose result is
// read, with a query, or with the COMMIT when every statement was held.
var firstPackets = []struct {
	name  string
	write func(ctx context.Context, tx *sql.Tx, id int) error
}{
	{"exec", func(ctx context.Context, tx *sql.Tx, id int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, id)
		return err
	}},
	{"query", func(ctx context.Context, tx *sql.Tx, id int) error {
		if _, err := tx.ExecContext(sqlstore.DeferExecs(ctx), `INSERT INTO t VALUES (?)`, id); err != nil {
			return err
		}
		var n int
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t WHERE id = ?`, id).Scan(&n)
	}},
	{"commit", func(ctx context.Context, tx *sql.Tx, id int) error {
		_, err := tx.ExecContext(sqlstore.DeferExecs(ctx), `INSERT INTO t VALUES (?)`, id)
		return err
	}},
}

func hasID(t *testing.T, db *sqlstore.DB, id int) bool {
	t.Helper()
	var n int
	if err := db.Read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM t WHERE id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// waitProxyIdle waits until the proxy forwards no connection: the ones
// it cut, or whose server end closed, are reset on the client's side too.
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

// TestPipelineDeadConnectionRetried: a pooled connection that turns out
// dead when a write transaction sends its first packet, before any byte
// of it went out (the server killed the connection, or it was cut), does
// not fail the write: START TRANSACTION and what went with it go again on
// a fresh connection, as database/sql does for a BeginTx that meets a dead
// connection. checkConnLiveness=false stands for a connection that dies
// after the liveness check the driver runs when the pool hands it out
// (which finds most dead connections first).
func TestPipelineDeadConnectionRetried(t *testing.T) {
	url := dbtest.MySQL(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, other := pipelineDBAt(t, url, viaProxy+"?checkConnLiveness=false")
	id := 0
	for _, fp := range firstPackets {
		for _, death := range []string{"killed", "cut"} {
			t.Run(fp.name+"/"+death, func(t *testing.T) {
				ctx := t.Context()
				var connID int64
				if err := db.Write.QueryRowContext(ctx, `SELECT CONNECTION_ID()`).Scan(&connID); err != nil {
					t.Fatal(err)
				}
				if death == "killed" {
					if _, err := other.Write.ExecContext(ctx, `KILL ?`, connID); err != nil {
						t.Fatal(err)
					}
				} else {
					proxy.DropAll()
				}
				waitProxyIdle(t, proxy)
				accepted := proxy.Accepted()
				id++
				if err := db.WriteTx(ctx, func(tx *sql.Tx) error { return fp.write(ctx, tx, id) }); err != nil {
					t.Fatalf("write on a connection %s between requests: %v", death, err)
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

// TestPipelineCutAfterSendNotRetried: when the connection is cut after
// the first packet went out, the server may have run it, COMMIT included:
// the write fails as unavailable and is not sent again. (The proxy drops
// the packet, so a retry would show as the row being there.)
func TestPipelineCutAfterSendNotRetried(t *testing.T) {
	url := dbtest.MySQL(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, other := pipelineDBAt(t, url, viaProxy+"?checkConnLiveness=false")
	ctx := t.Context()
	for id, fp := range firstPackets {
		t.Run(fp.name, func(t *testing.T) {
			if err := db.Write.PingContext(ctx); err != nil { // a pooled connection
				t.Fatal(err)
			}
			accepted := proxy.Accepted()
			cut := proxy.CutOn(fmt.Sprintf("INSERT INTO t VALUES (%d)", id))
			err := db.WriteTx(ctx, func(tx *sql.Tx) error { return fp.write(ctx, tx, id) })
			proxy.Disarm()
			select {
			case <-cut: // closes once every connection is cut
			case <-time.After(time.Minute):
				t.Fatalf("the proxy never saw the write (%v)", err)
			}
			if !errors.Is(err, weave.ErrUnavailable) {
				t.Errorf("write cut after it went out: %v, want unavailable", err)
			}
			if n := proxy.Accepted() - accepted; n != 0 {
				t.Errorf("%d connections opened: the write was sent again", n)
			}
			if hasID(t, other, id) {
				t.Error("the write was sent again")
			}
			waitProxyIdle(t, proxy)
		})
	}
}

// TestPipelineRollbackBounded: a ROLLBACK to a server that stopped
// answering gives up after its bound (the driver then closes the
// connection, and the server rolls back as it notices), instead of holding
// the goroutine for as long as the socket stays open. (Commit's ROLLBACK
// after a failed packet is the same call.)
func TestPipelineRollbackBounded(t *testing.T) {
	url := dbtest.MySQL(t)
	proxy, viaProxy := dbtest.Proxy(t, url)
	db, other := pipelineDBAt(t, url, viaProxy)
	defer mysql.SetRollbackTimeout(100 * time.Millisecond)()
	ctx := t.Context()
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil { // START TRANSACTION goes out
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
	// The transaction did not commit, and the pool writes again.
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if hasID(t, other, 1) || !hasID(t, other, 2) {
		t.Error("rows after the rollback: want 2 only")
	}
}

// TestPipelineURLParameters: the pipeline is on by default, and off when
// the URL turns off multi-statement packets or client-side interpolation;
// either way a Store writes (records, a batch, a delete) and reads back
// what it wrote, payloads that need escaping included.
func TestPipelineURLParameters(t *testing.T) {
	url := dbtest.MySQL(t)
	payloads := []string{`'); DROP TABLE bsos; --`, `back\slash \' \" ; ? ?`, "nul \x00 and ctrl-z \x1a, ünïcødé 🦊", "", strings.Repeat("x", 70000)}
	for i, params := range []string{"", "?multiStatements=false", "?interpolateParams=false", "?multiStatements=false&interpolateParams=false"} {
		name := strings.TrimPrefix(params, "?")
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			s := sqltest.OpenStore(t, url+params, sqlstore.StoreOptions{})
			sqltest.CheckPipelinedPools(t, s, mysql.Pipelined, params == "")
			sqltest.WriteEveryWay(t, s, int64(1000+i), payloads)
		})
	}
}

// TestPipelinePacketLimit: statements joined into one packet beyond the
// server's max_allowed_packet (each within it) go one at a time rather
// than fail (the server would drop the connection on the packet); a
// statement beyond it alone fails with the server's error and commits
// nothing of its transaction.
func TestPipelinePacketLimit(t *testing.T) {
	db, other := pipelineDB(t)
	ctx := t.Context()
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE b (id INT PRIMARY KEY, v LONGBLOB) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	var limit int
	if err := db.Read.QueryRowContext(ctx, `SELECT @@max_allowed_packet`).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit > 64<<20 {
		t.Skipf("max_allowed_packet is %d: too large for this test", limit)
	}
	write := func(sizes ...int) error {
		return db.WriteTx(ctx, func(tx *sql.Tx) error {
			for i, n := range sizes {
				if _, err := tx.ExecContext(sqlstore.DeferExecs(ctx), `INSERT INTO b VALUES (?, ?)`, i, strings.Repeat("a", n)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	stored := func() (rows, bytes int) {
		t.Helper()
		if err := other.Read.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(v)), 0) FROM b`).Scan(&rows, &bytes); err != nil {
			t.Fatal(err)
		}
		return rows, bytes
	}
	half := limit/2 + 4096 // together over the limit, each within it
	if err := write(half, half); err != nil {
		t.Fatalf("two statements of %d bytes (max_allowed_packet %d): %v", half, limit, err)
	}
	if rows, bytes := stored(); rows != 2 || bytes != 2*half {
		t.Fatalf("%d rows of %d bytes stored, want 2 of %d", rows, bytes, 2*half)
	}
	if _, err := db.Write.ExecContext(ctx, `DELETE FROM b`); err != nil {
		t.Fatal(err)
	}
	if err := write(100, limit+10); err == nil {
		t.Fatalf("a statement of %d bytes (max_allowed_packet %d) succeeded", limit+10, limit)
	}
	if rows, _ := stored(); rows != 0 {
		t.Fatalf("a transaction whose statement was too large left %d rows", rows)
	}
	if err := write(100); err != nil {
		t.Fatalf("the next write: %v", err)
	}
}
