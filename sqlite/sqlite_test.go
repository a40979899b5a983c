package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/storagetest"
)

func openStore(t testing.TB, dsn string, pool sqlstore.PoolOptions, migrate bool, opts sqlstore.StoreOptions) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenStore(context.Background(), dsn, pool, migrate, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func tempDSN(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "weave.db")
}

// TestStore runs the conformance suite on one database file shared by all
// subtests, as a node's shard is shared by its users.
func TestStore(t *testing.T) {
	dsn := tempDSN(t)
	s := openStore(t, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	storagetest.Run(t,
		func(*testing.T) weave.Store { return s },
		storagetest.WithBatchLifetime(func(t *testing.T, d time.Duration) weave.Store {
			return openStore(t, dsn, sqlstore.PoolOptions{}, false, sqlstore.StoreOptions{BatchLifetime: d})
		}))
}

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, openStore(b, tempDSN(b), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{}))
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	dsn := tempDSN(t)
	if _, err := sqlstore.OpenStore(ctx, dsn, sqlstore.PoolOptions{}, false, sqlstore.StoreOptions{}); err == nil {
		t.Fatal("OpenStore with NoMigrate accepted an empty database")
	}
	openStore(t, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	// Migrating again is a no-op; the schema is current.
	s := openStore(t, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	ms, err := sqlite.Migrations(sqlstore.SetStorage)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.DB().Status(ctx, sqlstore.SetStorage, ms)
	if err != nil || st.Pending() || st.Current != len(ms) {
		t.Fatalf("status %+v, %v", st, err)
	}
	openStore(t, dsn, sqlstore.PoolOptions{}, false, sqlstore.StoreOptions{})
}

// clock is a settable clock for StoreOptions.Now.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Now().UnixMilli())
	return c
}

func (c *clock) now() time.Time        { return time.UnixMilli(c.ms.Load()) }
func (c *clock) add(d time.Duration)   { c.ms.Add(d.Milliseconds()) }
func (c *clock) set(t weave.Timestamp) { c.ms.Store(int64(t)) }

func count(t *testing.T, s *sqlstore.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().Read.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPurgeExpired checks with a controlled clock that PurgeExpired removes
// exactly the expired rows, in chunks, and respects its limit.
func TestPurgeExpired(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{Now: c.now, BatchLifetime: time.Hour})
	var us []weave.Update
	for i := range 1500 {
		u := weave.Update{ID: "r" + strconv.Itoa(i), Payload: weave.Some("x"), TTL: weave.Some[int64](60)}
		if i%5 == 0 {
			u.TTL = weave.Optional[int64]{} // never expires
		}
		us = append(us, u)
	}
	uids := []int64{101, 102}
	for _, uid := range uids {
		for i := 0; i < len(us); i += 500 {
			if _, err := s.PostBSOs(ctx, uid, "history", us[i:i+500], weave.Precondition{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 3 {
		if _, _, err := s.CreateBatch(ctx, 101, "tabs", us[:10], weave.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PurgeExpired(ctx, 0); err != nil || n != 0 {
		t.Fatalf("purge before expiry: %d, %v", n, err)
	}
	c.add(2 * time.Hour)
	expired := 2 * 1200
	if n, err := s.PurgeExpired(ctx, 1200); err != nil || n != 1200 {
		t.Fatalf("PurgeExpired(1200) = %d, %v", n, err)
	}
	if got := count(t, s, "bsos"); got != 2*1500-1200 {
		t.Fatalf("%d records left after purging 1200", got)
	}
	n, err := s.PurgeExpired(ctx, 0)
	if err != nil || n != int64(expired-1200+3) {
		t.Fatalf("PurgeExpired(0) = %d, %v; want %d", n, err, expired-1200+3)
	}
	if got := count(t, s, "bsos"); got != 2*300 {
		t.Fatalf("%d records left, want %d", got, 2*300)
	}
	for _, table := range []string{"batches", "batch_bsos"} {
		if got := count(t, s, table); got != 0 {
			t.Fatalf("%d rows left in %s", got, table)
		}
	}
	if n, err := s.PurgeExpired(ctx, 0); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
	// A record renewed before the purge survives it.
	if _, err := s.PutBSO(ctx, 101, "history", weave.Update{ID: "renew", Payload: weave.Some("x"), TTL: weave.Some[int64](1)}, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Second)
	if _, err := s.PutBSO(ctx, 101, "history", weave.Update{ID: "renew", TTL: weave.Some[int64](60)}, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeExpired(ctx, 0); err != nil || n != 0 {
		t.Fatalf("purge after renewal: %d, %v", n, err)
	}
	if b, err := s.GetBSO(ctx, 101, "history", "renew"); err != nil || b.Payload != "" {
		// The renewal came after expiry: a new, empty record.
		t.Fatalf("renewed record: %+v, %v", b, err)
	}
}

// TestBatchRowsRemoved: commits and deletes leave no staged rows behind
// (they would be invisible, so only the tables tell).
func TestBatchRowsRemoved(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	us := []weave.Update{{ID: "a", Payload: weave.Some("a")}, {ID: "b", SortIndex: weave.Some[int64](1)}}
	var pre weave.Precondition
	b1, _, err := s.CreateBatch(ctx, 1, "tabs", us, pre)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, 1, "tabs", b1, us[:1], pre); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitBatch(ctx, 1, "tabs", b1, us[1:], pre); err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"tabs", "forms"} {
		if _, _, err := s.CreateBatch(ctx, 1, coll, us, pre); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.CreateBatch(ctx, 2, "tabs", us, pre); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s, "batch_bsos"); got != 6 {
		t.Fatalf("%d staged rows, want 6", got)
	}
	if _, err := s.DeleteCollection(ctx, 1, "tabs", pre); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s, "batch_bsos"); got != 4 {
		t.Fatalf("%d staged rows after DeleteCollection, want 4", got)
	}
	if _, err := s.DeleteStorage(ctx, 1, pre); err != nil {
		t.Fatal(err)
	}
	if got, gotB := count(t, s, "batch_bsos"), count(t, s, "batches"); got != 2 || gotB != 1 {
		t.Fatalf("%d staged rows, %d batches after DeleteStorage, want 2, 1 (user 2's)", got, gotB)
	}
}

// TestClockSkew: timestamps keep increasing when the clock goes back or
// stands still.
func TestClockSkew(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{Now: c.now})
	var last weave.Timestamp
	for i := range 20 {
		if i == 10 {
			c.add(-time.Hour)
		}
		ts, err := s.PutBSO(ctx, 7, "tabs", weave.Update{ID: "t", Payload: weave.Some("x")}, weave.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		if ts <= last || ts%10 != 0 {
			t.Fatalf("write %d: timestamp %d after %d", i, ts, last)
		}
		last = ts
	}
	c.set(last + 1000)
	ts, err := s.PutBSO(ctx, 7, "tabs", weave.Update{ID: "t", Payload: weave.Some("x")}, weave.Precondition{})
	if err != nil || ts != last+1000 {
		t.Fatalf("after the clock caught up: %d, %v; want %d", ts, err, last+1000)
	}
}

// TestQueryPlans guards the indexes the hot statements rely on.
func TestQueryPlans(t *testing.T) {
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	for _, db := range []*sql.DB{s.DB().Read, s.DB().Write} {
		// A ?ids= read looks the ids up by primary key and sorts the few
		// it finds, rather than filtering the collection in the order of
		// bsos_modified: planner statistics, which Tune seeds.
		ids := strings.Repeat("'x', ", 99) + "'y'" // as many as a request may carry
		for _, q := range []string{
			`SELECT id, modified, sortindex, payload FROM bsos WHERE uid = 1 AND collection_id = 2 AND expiry > 3 AND id IN (` + ids + `) ORDER BY modified DESC, id DESC`,
			`SELECT id, modified, sortindex, payload FROM bsos WHERE uid = 1 AND collection_id = 2 AND expiry > 3 AND modified > 4 AND id IN (` + ids + `) ORDER BY modified DESC, id DESC LIMIT 10`,
		} {
			if p := queryPlan(t, db, q); !strings.Contains(p, "sqlite_autoindex_bsos_1 (uid=? AND collection_id=? AND id=?)") {
				t.Errorf("%s\nplan: %s\nwant the primary key", q, p)
			}
		}
	}
	for _, tc := range []struct{ query, want string }{
		{`SELECT id, modified, sortindex, expiry, payload FROM bsos WHERE uid = 1 AND collection_id = 2 AND expiry > 3 AND modified > 4 ORDER BY modified DESC, id DESC LIMIT 10`, "bsos_modified"},
		{`SELECT id, modified, sortindex, expiry, payload FROM bsos WHERE uid = 1 AND collection_id = 2 AND expiry > 3 ORDER BY modified ASC, id ASC`, "bsos_modified"},
		{`SELECT modified, sortindex, payload, expiry FROM bsos WHERE uid = 1 AND collection_id = 2 AND id = 'x' AND expiry > 3`, "sqlite_autoindex_bsos_1"},
		{`SELECT COUNT(*) FROM bsos WHERE uid = 1 AND collection_id = 2 AND expiry > 3 AND modified > 4`, "bsos_modified (uid=? AND collection_id=? AND modified>?)"},
		{`SELECT uid, collection_id, id FROM bsos WHERE expiry <= 5 LIMIT 10`, "bsos_expiry"},
		{`SELECT uid, id FROM batches WHERE expiry <= 5 LIMIT 10`, "batches_expiry"},
		{`SELECT collection_id, COUNT(*) FROM bsos WHERE uid = 1 AND expiry > 3 GROUP BY collection_id`, "(uid=?)"},
	} {
		p := queryPlan(t, s.DB().Read, tc.query)
		if !strings.Contains(p, tc.want) || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s\nwant index %s and no sort", tc.query, p, tc.want)
		}
	}
}

// TestTuneKeepsStatistics: statistics an operator's ANALYZE wrote are not
// replaced by the seeded ones when weave starts again.
func TestTuneKeepsStatistics(t *testing.T) {
	dsn := tempDSN(t)
	s := openStore(t, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if _, err := s.DB().Write.Exec(`UPDATE sqlite_stat1 SET stat = '42 7 3 1' WHERE tbl = 'bsos' AND idx = 'sqlite_autoindex_bsos_1'`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	var n int
	var stat string
	if err := s.DB().Read.QueryRow(`SELECT COUNT(*), MAX(CASE WHEN idx = 'sqlite_autoindex_bsos_1' THEN stat END) FROM sqlite_stat1 WHERE tbl = 'bsos'`).Scan(&n, &stat); err != nil {
		t.Fatal(err)
	}
	if n != 3 || stat != "42 7 3 1" {
		t.Fatalf("after a restart: %d rows for bsos, primary key %q; want 3 rows and the operator's %q", n, stat, "42 7 3 1")
	}
}

// queryPlan returns the details of EXPLAIN QUERY PLAN, joined by "; ".
func queryPlan(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN " + query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// TestTTLFromClock: when the clock is behind the user's timestamps (it
// went back), writes still take increasing timestamps, but a TTL counts
// from the clock, for PUT, POST and a batch commit alike.
func TestTTLFromClock(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{Now: c.now})
	ttl := func(id string) weave.Update {
		return weave.Update{ID: id, Payload: weave.Some("x"), TTL: weave.Some[int64](60)}
	}
	if _, err := s.PutBSO(ctx, 7, "tabs", ttl("first"), weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	c.add(-time.Hour)
	clock := weave.TimestampAt(c.now())
	t1, err := s.PutBSO(ctx, 7, "tabs", ttl("put"), weave.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := s.PostBSOs(ctx, 7, "tabs", []weave.Update{ttl("post")}, weave.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.CreateBatch(ctx, 7, "tabs", []weave.Update{ttl("batch")}, weave.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	t3, err := s.CommitBatch(ctx, 7, "tabs", id, nil, weave.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if t1 < clock+weave.Timestamp(time.Hour.Milliseconds())-1000 || t2 <= t1 || t3 <= t2 {
		t.Fatalf("timestamps %d, %d, %d with the clock at %d", t1, t2, t3, clock)
	}
	for _, id := range []string{"put", "post", "batch"} {
		b, err := s.GetBSO(ctx, 7, "tabs", id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Expires != clock+60_000 {
			t.Errorf("%s: expires %d, want the clock %d + 60 s (write timestamp %d)", id, b.Expires, clock, b.Modified)
		}
	}
}

// TestCloseTwice: closing a database a second time (an explicit Close and
// then a test's or a shutdown path's deferred one) returns and does not
// panic on the checkpointer's already stopped loop.
func TestCloseTwice(t *testing.T) {
	db, err := sqlite.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "w.db"), sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestRowidOrder: the records of one write, posted or committed from a
// batch, take consecutive rowids in the order a newest-first read walks
// them (ids descending), so that the read steps from row to row.
func TestRowidOrder(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	var pre weave.Precondition
	us := func(ids ...string) []weave.Update {
		out := make([]weave.Update, len(ids))
		for i, id := range ids {
			out[i] = weave.Update{ID: id, Payload: weave.Some(id)}
		}
		return out
	}
	if _, err := s.PostBSOs(ctx, 1, "history", us("b", "d", "a", "c"), pre); err != nil {
		t.Fatal(err)
	}
	id, _, err := s.CreateBatch(ctx, 1, "bookmarks", us("y", "w"), pre)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitBatch(ctx, 1, "bookmarks", id, us("x", "z"), pre); err != nil {
		t.Fatal(err)
	}
	for coll, want := range map[string]string{"history": "d c b a", "bookmarks": "z y x w"} {
		rows, err := s.DB().Read.QueryContext(ctx, `SELECT b.rowid, b.id FROM bsos b JOIN collections c ON c.id = b.collection_id WHERE c.name = ? ORDER BY b.rowid`, coll)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		var prev int64
		for rows.Next() {
			var rowid int64
			var id string
			if err := rows.Scan(&rowid, &id); err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 && rowid != prev+1 {
				t.Errorf("%s: rowid %d after %d", coll, rowid, prev)
			}
			prev = rowid
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if got := strings.Join(ids, " "); got != want {
			t.Errorf("%s in rowid order: %s, want %s", coll, got, want)
		}
	}
}

// TestReaderCacheSize: read connections keep a small page cache (their
// whole cache is dropped after any commit, docs/benchmarks.md "Target 5
// in session 9"); the writer, whose cache stays valid, keeps SQLite's
// default.
func TestReaderCacheSize(t *testing.T) {
	db, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"), sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var read, write int
	if err := db.Read.QueryRow("PRAGMA cache_size").Scan(&read); err != nil {
		t.Fatal(err)
	}
	if err := db.Write.QueryRow("PRAGMA cache_size").Scan(&write); err != nil {
		t.Fatal(err)
	}
	if read != -500 || write != -2000 {
		t.Errorf("cache_size: readers %d, writer %d; want -500 and SQLite's default -2000", read, write)
	}
}

// TestReadManyRecords: a read returning more records than its slice
// starts with (sqlstore grows it as rows come) returns every one intact,
// and a limit below the count still ends the page at the limit.
func TestReadManyRecords(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	const n = 150
	us := make([]weave.Update, n)
	for i := range us {
		id := fmt.Sprintf("r%03d", i)
		us[i] = weave.Update{ID: id, Payload: weave.Some("payload " + id), SortIndex: weave.Some(int64(i))}
	}
	if _, err := s.PostBSOs(ctx, 1, "history", us, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1000, n, 100} {
		page, err := s.GetBSOs(ctx, 1, "history", weave.Query{Sort: weave.SortIndex, Limit: limit, Lean: true})
		if err != nil {
			t.Fatal(err)
		}
		want := min(limit, n)
		if len(page.BSOs) != want || (page.NextOffset != "") != (limit < n) {
			t.Fatalf("limit %d: %d records, next offset %q; want %d", limit, len(page.BSOs), page.NextOffset, want)
		}
		for i, b := range page.BSOs {
			j := n - 1 - i // highest sort index first
			if id := fmt.Sprintf("r%03d", j); b.ID != id || b.Payload != "payload "+id || b.SortIndex == nil || *b.SortIndex != int64(j) {
				t.Fatalf("limit %d: record %d = %+v, want id %s", limit, i, b, id)
			}
		}
	}
}
