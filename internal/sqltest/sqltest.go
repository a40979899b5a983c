// Package sqltest holds the tests that every database server adapter
// (mysql, postgres) runs against its sqlstore.DB and Dialect: migrations and
// their lock, retries of deadlocks and lock timeouts, error classification
// when the server goes away, and reconnection when it comes back. The
// storage behaviour itself is storagetest's.
package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/faultproxy"
	"github.com/weave-sync/weave/sqlstore"
)

// Opts are the pool settings a test asks of an adapter's Open.
type Opts struct {
	Timeout     time.Duration
	LockTimeout time.Duration
	MaxRetries  int // negative: none
}

// Backend is an adapter under test.
type Backend struct {
	// Fresh returns the URL of an empty database that lives as long as t.
	Fresh func(t testing.TB) string
	// Open opens the adapter on a URL.
	Open func(ctx context.Context, url string, o Opts) (*sqlstore.DB, error)
}

// Run runs every test of the package. The migration tests get databases of
// their own; the others share one, each with its own table.
func Run(t *testing.T, b Backend) {
	t.Run("Migrate", func(t *testing.T) { testMigrate(t, b) })
	t.Run("MigrateConcurrently", func(t *testing.T) { testMigrateConcurrently(t, b) })
	t.Run("MigrateFailure", func(t *testing.T) { testMigrateFailure(t, b) })
	shared := b.Fresh(t)
	t.Run("DeadlockRetried", func(t *testing.T) { testDeadlockRetried(t, b, shared) })
	t.Run("LockTimeoutIsConflict", func(t *testing.T) { testLockTimeout(t, b, shared) })
	t.Run("Unicode", func(t *testing.T) { testUnicode(t, b, shared) })
	t.Run("UpdateCountsMatchedRows", func(t *testing.T) { testFoundRows(t, b, shared) })
	t.Run("ReadSnapshot", func(t *testing.T) { testReadSnapshot(t, b, shared) })
	t.Run("Faults", func(t *testing.T) { testFaults(t, b, shared) })
}

// open opens a fresh database, closed when t ends.
func open(t *testing.T, b Backend, url string, o Opts) *sqlstore.DB {
	t.Helper()
	db, err := b.Open(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func testMigrations(t *testing.T, files map[string]string) []sqlstore.Migration {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, src := range files {
		fsys["m/"+name] = &fstest.MapFile{Data: []byte(src)}
	}
	ms, err := sqlstore.LoadMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

var twoMigrations = map[string]string{
	"0001_first.sql": `-- first
CREATE TABLE m_one (
	id BIGINT NOT NULL PRIMARY KEY,
	name VARCHAR(10) NOT NULL
);
CREATE TABLE m_two (id BIGINT NOT NULL PRIMARY KEY);
`,
	"0002_second.sql": `INSERT INTO m_one (id, name) VALUES (1, 'a'), (2, 'b');
`,
}

func version(t *testing.T, db *sqlstore.DB, set string, ms []sqlstore.Migration) int {
	t.Helper()
	st, err := db.Status(context.Background(), set, ms)
	if err != nil {
		t.Fatal(err)
	}
	return st.Current
}

func testMigrate(t *testing.T, b Backend) {
	ctx := context.Background()
	db := open(t, b, b.Fresh(t), Opts{})
	ms := testMigrations(t, twoMigrations)
	if v := version(t, db, "test", ms); v != 0 {
		t.Fatalf("fresh database at version %d", v)
	}
	if err := db.CheckSchema(ctx, "test", ms); err == nil {
		t.Fatal("CheckSchema passed on an empty database")
	}
	var applied []string
	if err := db.Migrate(ctx, "test", ms[:1], func(m sqlstore.Migration) { applied = append(applied, m.Name) }); err != nil {
		t.Fatal(err)
	}
	if v := version(t, db, "test", ms); v != 1 {
		t.Fatalf("after the first migration: version %d", v)
	}
	if err := db.Migrate(ctx, "test", ms, func(m sqlstore.Migration) { applied = append(applied, m.Name) }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(applied, ","); got != "0001_first.sql,0002_second.sql" {
		t.Fatalf("applied %s", got)
	}
	if err := db.CheckSchema(ctx, "test", ms); err != nil {
		t.Fatal(err)
	}
	// Again: nothing to do.
	if err := db.Migrate(ctx, "test", ms, func(m sqlstore.Migration) { t.Errorf("applied %s twice", m.Name) }); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Read.QueryRow("SELECT COUNT(*) FROM m_one").Scan(&n); err != nil || n != 2 {
		t.Fatalf("m_one has %d rows (%v)", n, err)
	}
	// Sets are versioned apart.
	if v := version(t, db, "other", ms); v != 0 {
		t.Fatalf("set other at version %d", v)
	}
	// A binary that knows fewer migrations refuses the database.
	if err := db.Migrate(ctx, "test", ms[:1], nil); !errors.Is(err, weave.ErrSchemaTooNew) {
		t.Fatalf("Migrate with an older binary: %v, want ErrSchemaTooNew", err)
	}
	if err := db.CheckSchema(ctx, "test", ms[:1]); !errors.Is(err, weave.ErrSchemaTooNew) {
		t.Fatalf("CheckSchema with an older binary: %v, want ErrSchemaTooNew", err)
	}
}

// testMigrateConcurrently starts several processes' migrations at once:
// the migration lock lets one apply them and the others find them done.
func testMigrateConcurrently(t *testing.T, b Backend) {
	url := b.Fresh(t)
	ms := testMigrations(t, twoMigrations)
	const n = 4
	dbs := make([]*sqlstore.DB, n)
	for i := range dbs {
		dbs[i] = open(t, b, url, Opts{})
	}
	var applied atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Migrate(context.Background(), "test", ms, func(sqlstore.Migration) { applied.Add(1) })
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	if got := applied.Load(); got != 2 {
		t.Errorf("%d migrations applied in all, want 2", got)
	}
	if v := version(t, dbs[0], "test", ms); v != 2 {
		t.Errorf("version %d, want 2", v)
	}
}

// testMigrateFailure: a migration that fails leaves the version where it
// was (on MySQL its earlier DDL statements stay: they commit implicitly).
func testMigrateFailure(t *testing.T, b Backend) {
	ctx := context.Background()
	db := open(t, b, b.Fresh(t), Opts{})
	files := map[string]string{
		"0001_first.sql": twoMigrations["0001_first.sql"],
		"0002_bad.sql":   "CREATE TABLE m_three (id BIGINT NOT NULL PRIMARY KEY);\nCREATE TABLE m_one (id BIGINT);\n",
	}
	ms := testMigrations(t, files)
	if err := db.Migrate(ctx, "test", ms, nil); err == nil || !strings.Contains(err.Error(), "0002_bad.sql") {
		t.Fatalf("Migrate with a bad migration: %v", err)
	}
	if v := version(t, db, "test", ms); v != 1 {
		t.Fatalf("after a failed migration 2: version %d, want 1", v)
	}
}

func testDeadlockRetried(t *testing.T, b Backend, url string) {
	db := open(t, b, url, Opts{})
	exec(t, db.Write, "CREATE TABLE dl (id BIGINT NOT NULL PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO dl (id, v) VALUES (1, 0), (2, 0)")
	// Two transactions lock the rows in opposite orders; on their first
	// attempt each waits until the other holds its first row, so one of
	// them is the deadlock victim and must be retried.
	var attempts atomic.Int32
	var first sync.WaitGroup
	first.Add(2)
	tx := func(a, b int) error {
		try := 0
		return db.WriteTx(context.Background(), func(tx *sql.Tx) error {
			try++
			attempts.Add(1)
			if _, err := tx.Exec(db.Q("UPDATE dl SET v = v + 1 WHERE id = ?"), a); err != nil {
				return err
			}
			if try == 1 {
				first.Done()
				first.Wait()
			}
			_, err := tx.Exec(db.Q("UPDATE dl SET v = v + 1 WHERE id = ?"), b)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- tx(1, 2) }()
	go func() { errs <- tx(2, 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("transaction failed instead of being retried: %v", err)
		}
	}
	if a := attempts.Load(); a < 3 {
		t.Fatalf("%d attempts: no deadlock happened", a)
	}
	var sum int
	if err := db.Read.QueryRow("SELECT SUM(v) FROM dl").Scan(&sum); err != nil || sum != 4 {
		t.Fatalf("sum %d (%v), want 4: a retried transaction applied twice or not at all", sum, err)
	}
}

func testLockTimeout(t *testing.T, b Backend, url string) {
	holder := open(t, b, url, Opts{})
	exec(t, holder.Write, "CREATE TABLE lt (id BIGINT NOT NULL PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO lt (id, v) VALUES (1, 0)")
	waiter := open(t, b, url, Opts{LockTimeout: time.Second, MaxRetries: -1})

	locked := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- holder.WriteTx(context.Background(), func(tx *sql.Tx) error {
			if _, err := tx.Exec("UPDATE lt SET v = 1 WHERE id = 1"); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	calls := 0
	start := time.Now()
	err := waiter.WriteTx(context.Background(), func(tx *sql.Tx) error {
		calls++
		_, err := tx.Exec("UPDATE lt SET v = 2 WHERE id = 1")
		return err
	})
	close(release)
	if herr := <-done; herr != nil {
		t.Fatal(herr)
	}
	if !errors.Is(err, weave.ErrConflict) {
		t.Fatalf("lock wait timeout: %v, want ErrConflict", err)
	}
	if calls != 1 {
		t.Errorf("%d attempts with MaxRetries -1", calls)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("lock wait took %v with a 1 s lock timeout", d)
	}
}

func testUnicode(t *testing.T, b Backend, url string) {
	db := open(t, b, url, Opts{})
	exec(t, db.Write, "CREATE TABLE u (id BIGINT NOT NULL PRIMARY KEY, s TEXT NOT NULL)")
	want := "emoji 🦊🔥, CJK 火狐, RTL שלום, NUL-free \u00e9\u0301"
	if _, err := db.Write.Exec(db.Q("INSERT INTO u (id, s) VALUES (?, ?)"), 1, want); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.Read.QueryRow("SELECT s FROM u WHERE id = 1").Scan(&got); err != nil || got != want {
		t.Fatalf("read back %q (%v), want %q", got, err, want)
	}
}

// testFoundRows: an UPDATE that matches a row but changes nothing counts
// it, as on SQLite and PostgreSQL.
func testFoundRows(t *testing.T, b Backend, url string) {
	db := open(t, b, url, Opts{})
	exec(t, db.Write, "CREATE TABLE fr (id BIGINT NOT NULL PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO fr (id, v) VALUES (1, 5)")
	res, err := db.Write.Exec("UPDATE fr SET v = 5 WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("RowsAffected = %d, want 1 (matched rows)", n)
	}
}

// testReadSnapshot: ReadTx statements see one snapshot even when a write
// commits between them.
func testReadSnapshot(t *testing.T, b Backend, url string) {
	db := open(t, b, url, Opts{})
	exec(t, db.Write, "CREATE TABLE rs (id BIGINT NOT NULL PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO rs (id, v) VALUES (1, 1)")
	var before, after int
	err := db.ReadTx(context.Background(), func(tx *sql.Tx) error {
		if err := tx.QueryRow("SELECT v FROM rs WHERE id = 1").Scan(&before); err != nil {
			return err
		}
		if _, err := db.Write.Exec("UPDATE rs SET v = 2 WHERE id = 1"); err != nil {
			return err
		}
		return tx.QueryRow("SELECT SUM(v) FROM rs").Scan(&after)
	})
	if err != nil {
		t.Fatal(err)
	}
	if before != 1 || after != 1 {
		t.Fatalf("read transaction saw %d then %d, want 1 both times", before, after)
	}
}

// proxied opens the database of url through a fault proxy, and directly.
func proxied(t *testing.T, b Backend, url string, o Opts) (*sqlstore.DB, *faultproxy.Proxy, *sqlstore.DB) {
	t.Helper()
	p, purl := dbtest.Proxy(t, url)
	direct := open(t, b, url, Opts{})
	return open(t, b, purl, o), p, direct
}

func count(t *testing.T, db *sqlstore.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// insertTx inserts rows from..to-1 into f in one transaction.
func insertTx(ctx context.Context, db *sqlstore.DB, from, to int) error {
	return db.WriteTx(ctx, func(tx *sql.Tx) error {
		for i := from; i < to; i++ {
			if _, err := tx.ExecContext(ctx, db.Q("INSERT INTO f (id, s) VALUES (?, ?)"), i, fmt.Sprintf("row %d", i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func testFaults(t *testing.T, b Backend, url string) {
	ctx := context.Background()
	db, p, direct := proxied(t, b, url, Opts{Timeout: 2 * time.Second})
	exec(t, direct.Write, "CREATE TABLE f (id BIGINT NOT NULL PRIMARY KEY, s TEXT NOT NULL)")
	if err := insertTx(ctx, db, 0, 3); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, what string, err error, want int) {
		t.Helper()
		if !errors.Is(err, weave.ErrUnavailable) {
			t.Fatalf("%s: %v, want ErrUnavailable", what, err)
		}
		if n := count(t, direct, "f"); n != want {
			t.Fatalf("%s: %d rows, want %d: a partial transaction was applied", what, n, want)
		}
		// The pool reconnects by itself.
		if err := insertTx(ctx, db, want+100, want+101); err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
		exec(t, direct.Write, fmt.Sprintf("DELETE FROM f WHERE id = %d", want+100))
	}

	t.Run("CutBeforeCommit", func(t *testing.T) {
		tripped := p.CutOn("COMMIT")
		err := insertTx(ctx, db, 10, 15)
		<-tripped
		check(t, "connection cut before COMMIT", err, 3)
	})
	t.Run("CutMidTransaction", func(t *testing.T) {
		tripped := p.CutOn("row 13")
		err := insertTx(ctx, db, 10, 15)
		<-tripped
		check(t, "connection cut mid-transaction", err, 3)
	})
	t.Run("CutRead", func(t *testing.T) {
		tripped := p.CutOn("SELECT COUNT")
		err := db.ReadTx(ctx, func(tx *sql.Tx) error {
			var n int
			return tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM f").Scan(&n)
		})
		<-tripped
		check(t, "connection cut during a read", err, 3)
	})
	t.Run("Refused", func(t *testing.T) {
		p.Refuse()
		start := time.Now()
		err := insertTx(ctx, db, 10, 15)
		if d := time.Since(start); d > time.Second {
			t.Errorf("refused connection took %v to report", d)
		}
		if !errors.Is(err, weave.ErrUnavailable) {
			t.Fatalf("server down: %v, want ErrUnavailable", err)
		}
		if err := db.Write.PingContext(ctx); !errors.Is(db.Classify(err), weave.ErrUnavailable) {
			t.Fatalf("ping with the server down: %v", err)
		}
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		check(t, "server down", err, 3)
	})
	t.Run("Hung", func(t *testing.T) {
		p.Stall()
		start := time.Now()
		err := insertTx(ctx, db, 10, 15)
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("hung server held the call for %v with a 2 s timeout", d)
		}
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		check(t, "hung server", err, 3)
	})
}
