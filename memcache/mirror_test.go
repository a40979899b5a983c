package memcache_test

import (
	"slices"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/memcache"
)

// TestMirror: writes reach both pools, reads only the primary, and Warm
// fills the mirror so that it can take over as a primary with no misses.
func TestMirror(t *testing.T) {
	primary, mirror := startMemcached(t), startMemcached(t)
	path := tempDB(t)
	prefix := randomPrefix()
	a := newProcess(t, path, memcache.Config{Servers: []string{primary.Addr()},
		MirrorServers: []string{mirror.Addr()}, Prefix: prefix})
	ctx := t.Context()
	us := users(20)
	for _, uid := range us {
		mustTS(a.PutBSO(ctx, uid, "meta", upd("global", "g1"), noPre))(t)
		mustTS(a.PutBSO(ctx, uid, "crypto", upd("keys", "k1"), noPre))(t)
		mustTS(a.PostBSOs(ctx, uid, "history", []weave.Update{upd("h", "1")}, noPre))(t)
	}
	read := func(p process, uid int64) (weave.Timestamp, string) {
		t.Helper()
		_, st, err := p.CollectionTimestamps(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		g, err := p.GetBSO(ctx, uid, "meta", "global")
		if err != nil {
			t.Fatal(err)
		}
		k, err := p.GetBSO(ctx, uid, "crypto", "keys")
		if err != nil {
			t.Fatal(err)
		}
		return st, g.Payload + k.Payload
	}

	// Reads use the primary only.
	rts := a.obs.roundTrips("mirror")
	for range 2 {
		for _, uid := range us {
			read(a, uid)
		}
	}
	if n := a.obs.roundTrips("mirror") - rts; n != 0 {
		t.Fatalf("reads made %d round trips to the mirror", n)
	}
	if a.obs.get("primary", memcache.Hit) < 3*len(us) {
		t.Fatal("reads did not hit the primary")
	}

	// A process using the mirror as its primary: cold, since reads of a
	// do not fill the mirror.
	cut := newProcess(t, path, memcache.Config{Servers: []string{mirror.Addr()}, Prefix: prefix})
	read(cut, us[0])
	if cut.inner.total() == 0 {
		t.Fatal("the mirror was filled by reads of the primary")
	}

	var calls [][2]int
	st, err := a.Warm(ctx, memcache.Mirror, slices.Values(us), len(us), func(done, total int) {
		calls = append(calls, [2]int{done, total})
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Users != len(us) || st.Filled != len(us)-1 || st.Skipped != 1 {
		t.Fatalf("Warm: %+v", st)
	}
	if len(calls) != len(us) || calls[len(calls)-1] != [2]int{len(us), len(us)} {
		t.Fatalf("progress calls %v", calls)
	}

	// After the warm, the mirror serves everything.
	cut.inner.reset()
	for _, uid := range us {
		if _, v := read(cut, uid); v != "g1k1" {
			t.Fatalf("mirror serves %q", v)
		}
	}
	if n := cut.inner.total(); n != 0 {
		t.Fatalf("%d database calls reading a warm mirror", n)
	}

	// Writes update or invalidate the mirror too.
	for _, uid := range us {
		ts := mustTS(a.PostBSOs(ctx, uid, "tabs", []weave.Update{upd("t", "1")}, noPre))(t)
		mustTS(a.PutBSO(ctx, uid, "meta", upd("global", "g2"), noPre))(t)
		tk := mustTS(a.PutBSO(ctx, uid, "crypto", upd("keys", "k2"), noPre))(t)
		if st, v := read(cut, uid); st != tk || v != "g2k2" || ts >= tk {
			t.Fatalf("mirror after writes: %v %q, want %v g2k2", st, v, tk)
		}
	}

	// Warming again costs no database query.
	a.inner.reset()
	st, err = a.Warm(ctx, memcache.Mirror, slices.Values(us), 0, nil)
	if err != nil || st.Filled != 0 || a.inner.total() != 0 {
		t.Fatalf("second Warm: %+v %v, %d database calls", st, err, a.inner.total())
	}
}

// TestMirrorDown: a dead mirror changes nothing for callers or the primary.
func TestMirrorDown(t *testing.T) {
	primary := startMemcached(t)
	// The mirror's port refuses connections at once, so the calm timeout
	// (the default) costs nothing there; faultTimeout let the healthy
	// primary time out on a loaded machine ("i/o timeout", status
	// unhealthy).
	a := newProcess(t, tempDB(t), memcache.Config{Servers: []string{primary.Addr()},
		MirrorServers: []string{"127.0.0.1:" + itoa(freePort(t))}})
	res := runLoad(t, []weave.Store{a}, users(5), 2, 4, time.Second)
	if a.obs.get("primary", memcache.Hit) == 0 {
		t.Fatalf("no hits in the primary: %d misses, %d bypasses, %d errors in %d reads and %d writes",
			a.obs.get("primary", memcache.Miss), a.obs.get("primary", memcache.Bypass), a.obs.errors("primary"), res.reads.Load(), res.writes.Load())
	}
	if st := a.Status(memcache.Mirror); st.Healthy || !st.Configured {
		t.Fatalf("mirror status %+v", st)
	}
	if st := a.Status(memcache.Primary); !st.Healthy || st.DirtyUsers != 0 {
		t.Fatalf("primary status %+v", st)
	}
	if _, err := a.Warm(t.Context(), memcache.Mirror, slices.Values(users(5)), 5, nil); err == nil {
		t.Fatal("Warm of a dead pool succeeded")
	}
	t.Logf("%d writes, %d reads, max latency %v", res.writes.Load(), res.reads.Load(), time.Duration(res.maxLatency.Load()))
}
