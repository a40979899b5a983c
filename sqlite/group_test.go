package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// groupDB opens a database with group commit and a table t(k, v), plus a
// child table whose foreign key is checked only at COMMIT.
func groupDB(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "g.db"), sqlstore.PoolOptions{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if !db.GroupCommit {
		t.Fatal("sqlite.Open did not turn group commit on")
	}
	for _, q := range []string{
		"CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)",
		"CREATE TABLE parent (id INTEGER PRIMARY KEY)",
		"CREATE TABLE child (pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)",
	} {
		if _, err := db.Write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// insert is a member that adds row k with v = the number of rows it sees
// before it, so that v records the order members ran in.
func insert(k string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO t (k, v) SELECT ?, COUNT(*) FROM t", k)
		return err
	}
}

// submit runs a write in the background; its outcome arrives on the channel.
func submit(db *sqlstore.DB, ctx context.Context, fn func(context.Context, *sql.Tx) error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- db.GroupWriteTx(ctx, fn) }()
	return ch
}

// hold starts a write that keeps the committer busy until release is
// closed, so that the writes submitted meanwhile form the next group.
func hold(t *testing.T, db *sqlstore.DB) (release func(), done <-chan error) {
	t.Helper()
	started, stop := make(chan struct{}), make(chan struct{})
	done = submit(db, t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		close(started)
		<-stop
		return insert("hold")(ctx, tx)
	})
	<-started
	return func() { close(stop) }, done
}

// queue submits writes one at a time, each after the previous one is
// queued, so that they queue in this order.
func queue(t *testing.T, db *sqlstore.DB, ctxs []context.Context, fns ...func(context.Context, *sql.Tx) error) []<-chan error {
	t.Helper()
	var chs []<-chan error
	for i, fn := range fns {
		ctx := t.Context()
		if ctxs != nil && ctxs[i] != nil {
			ctx = ctxs[i]
		}
		before := db.GroupStats().Queued
		chs = append(chs, submit(db, ctx, fn))
		deadline := time.Now().Add(10 * time.Second)
		for db.GroupStats().Queued == before {
			if time.Now().After(deadline) {
				t.Fatal("write never queued")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return chs
}

// wantRows checks the committed rows of t.
func wantRows(t *testing.T, db *sqlstore.DB, want map[string]int) {
	t.Helper()
	got := rows(t, db)
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for k, v := range want {
		if w, ok := got[k]; !ok || w != v {
			t.Errorf("rows %v, want %v", got, want)
			return
		}
	}
}

func rows(t *testing.T, db *sqlstore.DB) map[string]int {
	t.Helper()
	r, err := db.Read.Query("SELECT k, v FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]int{}
	for r.Next() {
		var k string
		var v int
		if err := r.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	return got
}

// TestGroupCommitMemberFails: a member that fails is undone alone; the
// others of its group commit, in the order they queued, each seeing the
// writes of those before it.
func TestGroupCommitMemberFails(t *testing.T) {
	db := groupDB(t)
	release, held := hold(t, db)
	boom := errors.New("boom")
	chs := queue(t, db, nil,
		insert("a"),
		func(ctx context.Context, tx *sql.Tx) error {
			if err := insert("failed")(ctx, tx); err != nil {
				return err
			}
			return boom
		},
		insert("b"),
		insert("a"), // duplicate key: fails in the database
		insert("c"),
	)
	before := db.GroupStats()
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	want := []error{nil, boom, nil, errors.New("any"), nil}
	for i, ch := range chs {
		err := <-ch
		if (err == nil) != (want[i] == nil) || (want[i] == boom && !errors.Is(err, boom)) {
			t.Errorf("member %d: err %v, want %v", i, err, want[i])
		}
	}
	if got := db.GroupStats(); got.Groups != before.Groups+1 || got.Members != before.Members+5 {
		t.Errorf("stats %+v after %+v: want one more group of 5 members", got, before)
	}
	wantRows(t, db, map[string]int{"hold": 0, "a": 1, "b": 2, "c": 3})
}

// TestGroupCommitAlone: a write alone in its group (no savepoint) commits
// or, failing, leaves nothing behind.
func TestGroupCommitAlone(t *testing.T) {
	db := groupDB(t)
	boom := errors.New("boom")
	err := db.GroupWriteTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		if err := insert("failed")(ctx, tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
	if err := db.GroupWriteTx(t.Context(), insert("a")); err != nil {
		t.Fatal(err)
	}
	wantRows(t, db, map[string]int{"a": 0})
	if got := db.GroupStats(); got.Groups != 2 || got.Members != 2 || got.Wait <= 0 {
		t.Errorf("stats %+v, want two groups of one and their wait", got)
	}
}

// TestGroupCommitFails: when the shared COMMIT fails, every member fails
// and none of their writes remain; the next group works.
func TestGroupCommitFails(t *testing.T) {
	db := groupDB(t)
	release, held := hold(t, db)
	chs := queue(t, db, nil,
		insert("a"),
		func(ctx context.Context, tx *sql.Tx) error {
			// Violates a deferred foreign key: only COMMIT notices.
			_, err := tx.ExecContext(ctx, "INSERT INTO child (pid) VALUES (42)")
			return err
		},
		insert("b"),
	)
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, ch := range chs {
		if err := <-ch; err == nil {
			t.Errorf("member %d succeeded although its group's COMMIT failed", i)
		}
	}
	wantRows(t, db, map[string]int{"hold": 0})
	if err := <-submit(db, t.Context(), insert("after")); err != nil {
		t.Fatalf("write after a failed group: %v", err)
	}
	wantRows(t, db, map[string]int{"hold": 0, "after": 1})
}

// TestGroupCommitCanceledWhileQueued: a write whose request gave up while
// queued does not run; the others do.
func TestGroupCommitCanceledWhileQueued(t *testing.T) {
	db := groupDB(t)
	release, held := hold(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	chs := queue(t, db, []context.Context{nil, ctx, nil}, insert("a"), insert("gone"), insert("b"))
	cancel()
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, ch := range chs {
		err := <-ch
		if (i == 1) != (err != nil) {
			t.Errorf("member %d: err %v", i, err)
		}
	}
	wantRows(t, db, map[string]int{"hold": 0, "a": 1, "b": 2})
}

// TestGroupCommitPanic: a member's panic reaches its own caller, and the
// group goes on without its writes.
func TestGroupCommitPanic(t *testing.T) {
	db := groupDB(t)
	release, held := hold(t, db)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		db.GroupWriteTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			insert("panic")(ctx, tx)
			panic("member panic")
		})
	}()
	for db.GroupStats().Queued == 0 {
		time.Sleep(time.Millisecond)
	}
	chs := queue(t, db, nil, insert("a"))
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if p := <-panicked; p != "member panic" {
		t.Errorf("recovered %v, want the member's panic", p)
	}
	if err := <-chs[0]; err != nil {
		t.Fatal(err)
	}
	wantRows(t, db, map[string]int{"hold": 0, "a": 1})
}

// TestCheckpointer: the WAL reaches the database file without the writer
// checkpointing (its own threshold is far above this write).
func TestCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := sqlite.Open(t.Context(), "sqlite://"+path, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if _, err := db.Write.Exec("CREATE TABLE big (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the table's page reaches the file
	before := size()
	if _, err := db.Write.Exec("INSERT INTO big VALUES (zeroblob(1 << 20))"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); size() < before+1<<20; {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, %d before a 1 MiB write: the WAL was not checkpointed", size(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
