package memcache_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/memcache"
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
