package memcache_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/memcache"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

// device is one Firefox profile syncing a user's data.
type device struct {
	name string
	last map[string]weave.Timestamp // last synced timestamp per collection
}

var syncedColls = []string{"bookmarks", "clients", "forms", "history", "passwords", "prefs", "tabs"}

// session plays one Firefox sync: info/collections, meta/global,
// crypto/keys, a GET ?newer= per collection (every synced collection with
// allColls, else only those that changed since the device's last sync, as
// Firefox does), and a POST of the device's tabs.
func session(ctx context.Context, s weave.Store, uid int64, d *device, allColls bool) error {
	colls, _, err := s.CollectionTimestamps(ctx, uid)
	if err != nil {
		return err
	}
	for _, r := range [][2]string{{"meta", "global"}, {"crypto", "keys"}} {
		if _, err := s.GetBSO(ctx, uid, r[0], r[1]); err != nil {
			return fmt.Errorf("%s/%s: %w", r[0], r[1], err)
		}
	}
	n := 0
	for _, c := range syncedColls {
		if !allColls && colls[c] <= d.last[c] {
			continue
		}
		p, err := s.GetBSOs(ctx, uid, c, weave.Query{Newer: d.last[c]})
		if err != nil {
			return err
		}
		d.last[c] = p.Modified
		if n++; allColls && n == 3 { // "a few" collections
			break
		}
	}
	ts, err := s.PostBSOs(ctx, uid, "tabs", []weave.Update{upd(d.name, "open tabs of "+d.name)}, noPre)
	if err != nil {
		return err
	}
	d.last["tabs"] = ts
	return nil
}

// countSessions plays sessions of 3 devices of one user over store
// (cached or not) on top of counter, and returns the database calls per
// session and their breakdown.
func countSessions(t *testing.T, store weave.Store, counter *counting, allColls bool) (float64, map[string]int) {
	ctx := t.Context()
	const uid, sessions = 1234, 30
	for _, c := range syncedColls {
		mustTS(store.PostBSOs(ctx, uid, c, []weave.Update{upd("seed-"+c, "x")}, noPre))(t)
	}
	mustTS(store.PutBSO(ctx, uid, "meta", upd("global", `{"syncID":"abc","storageVersion":5}`), noPre))(t)
	mustTS(store.PutBSO(ctx, uid, "crypto", upd("keys", strings.Repeat("k", 700)), noPre))(t)
	devs := []*device{{name: "laptop", last: map[string]weave.Timestamp{}},
		{name: "desktop", last: map[string]weave.Timestamp{}}, {name: "phone", last: map[string]weave.Timestamp{}}}
	// First syncs fetch everything; the steady state is what is measured.
	for _, d := range devs {
		if err := session(ctx, store, uid, d, false); err != nil {
			t.Fatal(err)
		}
	}
	counter.reset()
	for i := range sessions {
		if err := session(ctx, store, uid, devs[i%len(devs)], allColls); err != nil {
			t.Fatal(err)
		}
	}
	return float64(counter.total()) / sessions, counter.snapshot()
}

// TestQueryCounts shows the database calls per sync session with and
// without the cache, on a real SQLite store.
func TestQueryCounts(t *testing.T) {
	mc := startMemcached(t)
	for _, allColls := range []bool{false, true} {
		name := map[bool]string{false: "changed collections only", true: "three GET newer"}[allColls]
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			plain := newCounting(openSQLite(t, tempDB(t)))
			t.Cleanup(func() { plain.Close() })
			without, wb := countSessions(t, plain, plain, allColls)

			counter := newCounting(openSQLite(t, tempDB(t)))
			cached := newCache(t, counter, memcache.Config{Servers: []string{mc.Addr()}})
			with, cb := countSessions(t, cached, counter, allColls)

			t.Logf("%s: database calls per sync session: %.2f without the cache %v, %.2f with it %v",
				name, without, sorted(wb), with, sorted(cb))
			if with >= without {
				t.Fatalf("the cache saves nothing: %.2f vs %.2f", with, without)
			}
			if !allColls && with > without/2 {
				t.Fatalf("less than 2x fewer database calls: %.2f vs %.2f", with, without)
			}
		})
	}
}

func sorted(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return "{" + strings.TrimSpace(b.String()) + "}"
}

// benchSQLiteAndCache runs a benchmark body on SQLite alone and through the
// cache over a real memcached; cachedInner, when set, then looks at the
// database calls of the cached run.
func benchSQLiteAndCache(b *testing.B, run func(b *testing.B, s weave.Store), cachedInner func(b *testing.B, inner *counting)) {
	mc := startMemcached(b)
	b.Run("sqlite", func(b *testing.B) {
		s := openSQLite(b, tempDB(b))
		b.Cleanup(func() { s.Close() })
		run(b, s)
	})
	b.Run("memcache", func(b *testing.B) {
		inner := newCounting(openSQLite(b, tempDB(b)))
		run(b, newCache(b, inner, memcache.Config{Servers: []string{mc.Addr()}}))
		if cachedInner != nil {
			cachedInner(b, inner)
		}
	})
}

// BenchmarkCollectionTimestamps compares info/collections of a user with
// ten collections on SQLite alone and through the cache (a hit).
func BenchmarkCollectionTimestamps(b *testing.B) {
	benchSQLiteAndCache(b, func(b *testing.B, s weave.Store) {
		for i := range 10 {
			if _, err := s.PostBSOs(b.Context(), 1, fmt.Sprintf("coll%d", i), []weave.Update{upd("a", "x")}, noPre); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.CollectionTimestamps(b.Context(), 1); err != nil {
				b.Fatal(err)
			}
		}
	}, func(b *testing.B, inner *counting) {
		if n := inner.snapshot()["CollectionTimestamps"]; n > 1 {
			b.Fatalf("%d database reads: not served from the cache", n)
		}
	})
}

// BenchmarkPostBSOs compares a one-record POST on SQLite alone and through
// the cache, whose write marks itself before the database write and
// updates the timestamps after it (two memcached round trips each).
func BenchmarkPostBSOs(b *testing.B) {
	benchSQLiteAndCache(b, func(b *testing.B, s weave.Store) {
		// A cached read first, as a sync does, so that the cache has
		// timestamps for the writes to keep up to date.
		if _, _, err := s.CollectionTimestamps(b.Context(), 1); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.PostBSOs(b.Context(), 1, "tabs", []weave.Update{upd("a", "open tabs")}, noPre); err != nil {
				b.Fatal(err)
			}
		}
	}, nil)
}

// step is one request of a Firefox-like sync, as the HTTP handlers call
// the store for it.
type step struct {
	name string
	do   func(ctx context.Context, s weave.Store, uid int64, st *syncState) error
}

// syncState is what a client remembers between its requests.
type syncState struct {
	colls map[string]weave.Timestamp // from the last info/collections
	wrote weave.Timestamp            // of its last upload
	n     int
}

// firefoxSteps are the requests of the firefox-reads mix (loadtest), in
// the order a sync makes them, plus the reads that follow a client's own
// upload.
var firefoxSteps = []step{
	{"GET info/collections", func(ctx context.Context, s weave.Store, uid int64, st *syncState) (err error) {
		st.colls, _, err = s.CollectionTimestamps(ctx, uid)
		return err
	}},
	{"GET meta/global", func(ctx context.Context, s weave.Store, uid int64, _ *syncState) error {
		_, err := s.GetBSO(ctx, uid, "meta", "global")
		return err
	}},
	{"GET ?newer (unchanged)", func(ctx context.Context, s weave.Store, uid int64, st *syncState) error {
		p, err := s.GetBSOs(ctx, uid, "bookmarks", weave.Query{Newer: st.colls["bookmarks"]})
		if err == nil && len(p.BSOs) != 0 {
			err = fmt.Errorf("%d records newer than the collection's timestamp", len(p.BSOs))
		}
		return err
	}},
	{"GET ?full&newer (changed)", func(ctx context.Context, s weave.Store, uid int64, st *syncState) error {
		p, err := s.GetBSOs(ctx, uid, "history", weave.Query{Newer: st.colls["history"] - 1})
		if err == nil && len(p.BSOs) == 0 {
			err = errors.New("no records read")
		}
		return err
	}},
	{"POST 3 records", func(ctx context.Context, s weave.Store, uid int64, st *syncState) (err error) {
		// A write must take a later timestamp (10 ms grid) than the user's
		// last one: in the same tick the store rolls back after its lock
		// read and tries again in the next, three round trips more. A
		// round of these steps can take less than a tick, above all with
		// the cache, so start each POST in a fresh one.
		time.Sleep(15 * time.Millisecond)
		st.n++
		us := []weave.Update{upd(fmt.Sprintf("a%d", st.n), "x"), upd(fmt.Sprintf("b%d", st.n), "y"), upd(fmt.Sprintf("c%d", st.n), "z")}
		st.wrote, err = s.PostBSOs(ctx, uid, "history", us, noPre)
		return err
	}},
	{"GET info/collections after the POST", func(ctx context.Context, s weave.Store, uid int64, st *syncState) (err error) {
		st.colls, _, err = s.CollectionTimestamps(ctx, uid)
		if err == nil && st.colls["history"] != st.wrote {
			err = fmt.Errorf("history at %v after a write at %v", st.colls["history"], st.wrote)
		}
		return err
	}},
	{"GET ?newer=own upload", func(ctx context.Context, s weave.Store, uid int64, st *syncState) error {
		_, err := s.GetBSOs(ctx, uid, "history", weave.Query{Newer: st.wrote})
		return err
	}},
}

// roundTrips counts memcached round trips.
type roundTrips struct {
	memcache.NopObserver
	n atomic.Int64
}

func (r *roundTrips) RoundTrip(string, string, time.Duration, error) { r.n.Add(1) }

// TestRoundTripsPerRequest counts the round trips each request of a
// Firefox-like sync makes to a real MariaDB and PostgreSQL (the chunks a
// fault proxy in front of the server forwards) and to memcached, without
// and with the cache. These counts, unlike timings, do not depend on the
// machine's load; with a database a network hop away each database round
// trip costs that hop (1 ms in issue 14), a memcached one about 0.1 ms.
func TestRoundTripsPerRequest(t *testing.T) {
	mc := startMemcached(t)
	for _, kind := range []string{"mysql", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			proxy, purl := dbtest.Proxy(t, dbtest.Fresh(t, kind))
			inner := sqltest.OpenStore(t, purl, sqlstore.StoreOptions{})
			rts := new(roundTrips)
			cached := newCache(t, nopClose{inner}, memcache.Config{Servers: []string{mc.Addr()}, Observer: rts})
			// The fewest over the rounds: now and then the pool opens a
			// connection (or PostgreSQL's driver prepares a statement on
			// it), which adds its own round trips to whichever request
			// needed it, with or without the cache.
			const rounds = 5
			var samples [2]map[string][2][]int64 // without/with → step → database/memcached
			for i, s := range []weave.Store{inner, cached} {
				samples[i] = map[string][2][]int64{}
				uid := int64(100 + i)
				ctx := t.Context()
				for _, c := range []string{"bookmarks", "history"} {
					mustTS(s.PostBSOs(ctx, uid, c, []weave.Update{upd("seed", "x")}, noPre))(t)
				}
				mustTS(s.PutBSO(ctx, uid, "meta", upd("global", `{"syncID":"abc","storageVersion":5}`), noPre))(t)
				st := &syncState{}
				for r := range rounds + 1 {
					for _, stp := range firefoxSteps {
						db0, mc0 := proxy.Requests(), rts.n.Load()
						if err := stp.do(ctx, s, uid, st); err != nil {
							t.Fatalf("%s: %v", stp.name, err)
						}
						if r == 0 {
							continue // the first round fills the cache
						}
						v := samples[i][stp.name]
						v[0] = append(v[0], proxy.Requests()-db0)
						v[1] = append(v[1], rts.n.Load()-mc0)
						samples[i][stp.name] = v
					}
				}
			}
			per := map[string][2][2]int64{} // step → without/with → database/memcached
			for _, stp := range firefoxSteps {
				var v [2][2]int64
				for i := range samples {
					for j, xs := range samples[i][stp.name] {
						v[i][j] = slices.Min(xs)
					}
				}
				per[stp.name] = v
			}
			t.Logf("round trips per request on %s: database without the cache → with it (+ memcached)", kind)
			for _, stp := range firefoxSteps {
				v := per[stp.name]
				t.Logf("  %-38s %d → %d (+ %d)", stp.name, v[0][0], v[1][0], v[1][1])
			}
			// What the cache must do, per request.
			for _, name := range []string{"GET info/collections", "GET meta/global", "GET ?newer (unchanged)",
				"GET info/collections after the POST", "GET ?newer=own upload"} {
				if v := per[name]; v[1][0] != 0 || v[1][1] != 1 {
					t.Errorf("%s: %d database and %d memcached round trips with the cache, want 0 and 1", name, v[1][0], v[1][1])
				}
			}
			// Every read is one statement, one round trip, also when
			// nothing matches (the collection timestamp comes with the
			// records: sqlstore's readKey.header).
			for _, stp := range firefoxSteps {
				if v := per[stp.name]; strings.HasPrefix(stp.name, "GET") && v[0][0] != 1 {
					t.Errorf("%s: %d database round trips without the cache, want 1", stp.name, v[0][0])
				}
			}
			// A write is two round trips: START TRANSACTION (BEGIN) with
			// the user's lock (on PostgreSQL with the locked state, a
			// statement of its own there), then the records, the
			// collection timestamp and COMMIT (mysql's and postgres's
			// pipeConn).
			if v := per["POST 3 records"]; v[0][0] != 2 {
				t.Errorf("a write: %d database round trips on %s, want 2", v[0][0], kind)
			}
			// A write reaches the database exactly as without the cache.
			if v := per["POST 3 records"]; v[1][0] > v[0][0] {
				t.Errorf("a write: the cache adds database round trips: %d → %d", v[0][0], v[1][0])
			}
			if v := per["GET ?full&newer (changed)"]; v[1][0] > v[0][0] {
				t.Errorf("a read of records: the cache adds database round trips: %d → %d", v[0][0], v[1][0])
			}
			// info/collections just showed the collection changed: the
			// read goes straight to the database.
			if v := per["GET ?full&newer (changed)"]; v[1][1] != 0 {
				t.Errorf("a read the cache cannot answer costs %d memcached round trips, want 0", v[1][1])
			}
			if v := per["POST 3 records"]; v[1][1] > 4 {
				t.Errorf("a write costs %d memcached round trips, want at most 4 (mark: gets+cas, finish: gets+cas)", v[1][1])
			}
		})
	}
}

// nopClose keeps the cache from closing a store the test closes.
type nopClose struct{ weave.Store }

func (nopClose) Close() error { return nil }

// TestReadWithoutFillCreatesNothing: a read the cache never fills (records
// of a collection) costs one memcached round trip for a user with nothing
// cached, not three (the empty record a fill needs is created by reads
// that fill, and they still fill).
func TestReadWithoutFillCreatesNothing(t *testing.T) {
	mc := startMemcached(t)
	rts := new(roundTrips)
	s := newCache(t, openSQLite(t, tempDB(t)), memcache.Config{Servers: []string{mc.Addr()}, Observer: rts})
	ctx := t.Context()
	// Another user first: the pool's first use reads its epoch key.
	if _, _, err := s.CollectionTimestamps(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rts.n.Store(0)
	if _, err := s.GetBSOs(ctx, 7, "history", weave.Query{Newer: 1}); err != nil {
		t.Fatal(err)
	}
	if n := rts.n.Load(); n != 1 {
		t.Fatalf("a read that does not fill took %d memcached round trips, want 1", n)
	}
	// info/collections fills (absent record: get, add, gets, cas) and is
	// then a hit.
	for range 2 {
		if _, _, err := s.CollectionTimestamps(ctx, 7); err != nil {
			t.Fatal(err)
		}
	}
	if n := rts.n.Load(); n != 1+4+1 {
		t.Fatalf("fill and hit took %d memcached round trips, want 5", n-1)
	}
}

// TestHintsOnlyRouteToTheDatabase: what a process remembers of collection
// timestamps only sends reads to the database, so it cannot serve old data
// even when it is out of date (a collection deleted, or written by another
// process).
func TestHintsOnlyRouteToTheDatabase(t *testing.T) {
	mc := startMemcached(t)
	path := tempDB(t)
	inner := openSQLite(t, path)
	t.Cleanup(func() { inner.Close() })
	cfg := memcache.Config{Servers: []string{mc.Addr()}, Prefix: randomPrefix()}
	rtsA := new(roundTrips)
	cfgA := cfg
	cfgA.Observer = rtsA
	a := newCache(t, nopClose{inner}, cfgA)
	b := newCache(t, nopClose{inner}, cfg) // another process on the same database
	ctx := t.Context()
	const uid = 5
	t1 := mustTS(a.PostBSOs(ctx, uid, "history", []weave.Update{upd("h1", "x")}, noPre))(t)
	if _, _, err := a.CollectionTimestamps(ctx, uid); err != nil {
		t.Fatal(err)
	}
	check := func(newer weave.Timestamp, wantRTs int64) {
		t.Helper()
		rtsA.n.Store(0)
		got, err := a.GetBSOs(ctx, uid, "history", weave.Query{Newer: newer})
		if err != nil {
			t.Fatal(err)
		}
		want, err := inner.GetBSOs(ctx, uid, "history", weave.Query{Newer: newer})
		if err != nil {
			t.Fatal(err)
		}
		if got.Modified != want.Modified || len(got.BSOs) != len(want.BSOs) {
			t.Fatalf("newer=%v: %d records at %v, the database has %d at %v", newer, len(got.BSOs), got.Modified, len(want.BSOs), want.Modified)
		}
		if n := rtsA.n.Load(); n != wantRTs {
			t.Fatalf("newer=%v: %d memcached round trips, want %d", newer, n, wantRTs)
		}
	}
	check(t1-1, 0) // known changed: straight to the database
	check(t1, 1)   // not known changed: the cache answers "nothing new"
	// Another process writes: this one's hint is behind, and the cache
	// (which b updated) answers.
	t2 := mustTS(b.PostBSOs(ctx, uid, "history", []weave.Update{upd("h2", "y")}, noPre))(t)
	check(t1, 1)
	check(t2, 1)
	// The collection is deleted: the hint says changed after t1-1, the
	// database says there is nothing.
	mustTS(b.DeleteCollection(ctx, uid, "history", noPre))(t)
	check(t1-1, 0)
}
