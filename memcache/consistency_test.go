package memcache_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/memcache"
)

// process is one simulated weave process: its own database connections
// (to a shared SQLite file) and its own memcached clients.
type process struct {
	*memcache.Store
	inner *counting
	obs   *observer
}

// failures is how many memcached round trips of p failed.
func (p process) failures() int { return p.obs.errors("primary") }

// confirmed reports whether p has confirmed every invalidation it sent.
func (p process) confirmed() bool {
	st := p.Status(memcache.Primary)
	return st.Trusted && st.DirtyUsers == 0
}

// faulty is a process as runLoad sees it, to tell the reads the protocol
// does not cover.
type faulty interface {
	failures() int
	confirmed() bool
}

func newProcess(t *testing.T, dbPath string, cfg memcache.Config) process {
	t.Helper()
	inner := newCounting(openSQLite(t, dbPath))
	obs := newObserver()
	cfg.Observer = obs
	return process{Store: newCache(t, inner, cfg), inner: inner, obs: obs}
}

// mustTS returns ts, failing the test on err: mustTS(s.PutBSO(...))(t).
func mustTS(ts weave.Timestamp, err error) func(t *testing.T) weave.Timestamp {
	return func(t *testing.T) weave.Timestamp {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
}

// wantTimestamps checks the three timestamp reads of s against the
// database's truth.
func wantTimestamps(t *testing.T, s weave.Store, uid int64, coll string, want weave.Timestamp, what string) {
	t.Helper()
	ctx := t.Context()
	colls, st, err := s.CollectionTimestamps(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	if colls[coll] != want || st != want {
		t.Fatalf("%s: CollectionTimestamps %v storage %v, want %s and storage at %v", what, colls, st, coll, want)
	}
	if got := mustTS(s.LastModified(ctx, uid))(t); got != want {
		t.Fatalf("%s: LastModified %v, want %v", what, got, want)
	}
	if got := mustTS(s.CollectionModified(ctx, uid, coll))(t); got != want {
		t.Fatalf("%s: CollectionModified %v, want %v", what, got, want)
	}
}

// TestFillCannotStoreOldData replays the classic race: reader A misses and
// reads v1 from the database; writer B (another process) commits v2 and
// finishes; only then does A try to store v1. A's store must fail, so
// nobody reads v1 afterwards.
func TestFillCannotStoreOldData(t *testing.T) {
	mc := startMemcached(t)
	path := tempDB(t)
	cfg := memcache.Config{Servers: []string{mc.Addr()}, Prefix: randomPrefix()}
	a, b := newProcess(t, path, cfg), newProcess(t, path, cfg)
	ctx := t.Context()
	const uid = 7

	t1 := mustTS(a.PostBSOs(ctx, uid, "history", []weave.Update{upd("h1", "x")}, noPre))(t)
	var t2 weave.Timestamp
	var once sync.Once
	a.inner.hooks(nil, func(op string) {
		if op == "CollectionTimestamps" {
			once.Do(func() { t2 = mustTS(b.PostBSOs(ctx, uid, "history", []weave.Update{upd("h2", "y")}, noPre))(t) })
		}
	})
	_, st, err := a.CollectionTimestamps(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	a.inner.hooks(nil, nil)
	if st != t1 || t2 <= t1 {
		t.Fatalf("race not replayed: read %v, t1 %v, t2 %v", st, t1, t2)
	}
	for i, s := range []process{a, b, a} {
		wantTimestamps(t, s, uid, "history", t2, fmt.Sprintf("read %d after the race", i))
	}
	if a.obs.get("primary", memcache.Hit) == 0 {
		t.Fatal("the cache was never used")
	}

	// The same for a hot record.
	mustTS(a.PutBSO(ctx, uid, "meta", upd("global", "v1"), noPre))(t)
	var tg weave.Timestamp
	once = sync.Once{}
	a.inner.hooks(nil, func(op string) {
		if op == "GetBSO" {
			once.Do(func() { tg = mustTS(b.PutBSO(ctx, uid, "meta", upd("global", "v2"), noPre))(t) })
		}
	})
	got, err := a.GetBSO(ctx, uid, "meta", "global")
	a.inner.hooks(nil, nil)
	if err != nil || got.Payload != "v1" {
		t.Fatalf("race not replayed: %+v %v", got, err)
	}
	for i, s := range []process{a, b, a, b} {
		got, err := s.GetBSO(ctx, uid, "meta", "global")
		if err != nil || got.Payload != "v2" || got.Modified != tg {
			t.Fatalf("read %d after the race: %+v %v, want v2 at %v", i, got, err, tg)
		}
	}
}

// TestWriteInProgressBlocksReads: while a write is between its mark and
// its commit, other processes read the database and fill nothing.
func TestWriteInProgressBlocksReads(t *testing.T) {
	mc := startMemcached(t)
	path := tempDB(t)
	cfg := memcache.Config{Servers: []string{mc.Addr()}, Prefix: randomPrefix()}
	a, b := newProcess(t, path, cfg), newProcess(t, path, cfg)
	ctx := t.Context()
	const uid = 8

	t1 := mustTS(a.PostBSOs(ctx, uid, "tabs", []weave.Update{upd("t", "1")}, noPre))(t)
	wantTimestamps(t, b, uid, "tabs", t1, "before")
	hits := b.obs.get("primary", memcache.Hit)
	wantTimestamps(t, b, uid, "tabs", t1, "cached")
	if b.obs.get("primary", memcache.Hit) != hits+3 {
		t.Fatal("timestamps not served from the cache")
	}

	bypassed := b.obs.get("primary", memcache.Bypass)
	a.inner.hooks(func(op string) {
		if op == "PostBSOs" {
			// a's mark is in memcached; its transaction has not begun.
			wantTimestamps(t, b, uid, "tabs", t1, "during the write")
		}
	}, nil)
	t2 := mustTS(a.PostBSOs(ctx, uid, "tabs", []weave.Update{upd("t", "2")}, noPre))(t)
	a.inner.hooks(nil, nil)
	if n := b.obs.get("primary", memcache.Bypass) - bypassed; n != 3 {
		t.Fatalf("%d of 3 reads during the write bypassed the cache", n)
	}
	wantTimestamps(t, b, uid, "tabs", t2, "after")
}

// TestTimestampsUpdatedInPlace: a write that was alone updates the cached
// timestamps, so the next info/collections of any process is still a hit.
func TestTimestampsUpdatedInPlace(t *testing.T) {
	mc := startMemcached(t)
	path := tempDB(t)
	cfg := memcache.Config{Servers: []string{mc.Addr()}, Prefix: randomPrefix()}
	a, b := newProcess(t, path, cfg), newProcess(t, path, cfg)
	ctx := t.Context()
	const uid = 9

	mustTS(a.PostBSOs(ctx, uid, "history", []weave.Update{upd("h", "1")}, noPre))(t)
	colls, _, err := b.CollectionTimestamps(ctx, uid) // fills
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		coll := []string{"tabs", "history", "clients"}[i%3]
		ts := mustTS(a.PostBSOs(ctx, uid, coll, []weave.Update{upd("x", fmt.Sprint(i))}, noPre))(t)
		colls[coll] = ts
		b.inner.reset()
		got, st, err := b.CollectionTimestamps(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, colls) || st != ts {
			t.Fatalf("after write %d: %v at %v, want %v at %v", i, got, st, colls, ts)
		}
		if n := b.inner.total(); n != 0 {
			t.Fatalf("after write %d: %d database calls, want a cache hit", i, n)
		}
	}
	// Deleting a collection drops the timestamps instead.
	st := mustTS(a.DeleteCollection(ctx, uid, "tabs", noPre))(t)
	delete(colls, "tabs")
	got, st2, err := b.CollectionTimestamps(ctx, uid)
	if err != nil || !maps.Equal(got, colls) || st2 != st {
		t.Fatalf("after DeleteCollection: %v at %v (%v), want %v at %v", got, st2, err, colls, st)
	}
	// And deleting everything empties them.
	mustTS(a.DeleteStorage(ctx, uid, noPre))(t)
	got, _, err = b.CollectionTimestamps(ctx, uid)
	if err != nil || len(got) != 0 {
		t.Fatalf("after DeleteStorage: %v %v", got, err)
	}
}

// TestFailedWritesKeepTheCache: a write that certainly changed nothing
// (a failed precondition) leaves the cached figures in place.
func TestFailedWritesKeepTheCache(t *testing.T) {
	mc := startMemcached(t)
	cfg := memcache.Config{Servers: []string{mc.Addr()}, Prefix: randomPrefix()}
	a := newProcess(t, tempDB(t), cfg)
	ctx := t.Context()
	const uid = 10
	t1 := mustTS(a.PutBSO(ctx, uid, "meta", upd("global", "g"), noPre))(t)
	wantTimestamps(t, a, uid, "meta", t1, "fill")
	if _, err := a.GetBSO(ctx, uid, "meta", "global"); err != nil {
		t.Fatal(err)
	}
	old := t1 - 10
	_, err := a.PutBSO(ctx, uid, "meta", upd("global", "h"), weave.Precondition{IfUnmodifiedSince: &old})
	var pf *weave.PreconditionFailedError
	if !errors.As(err, &pf) {
		t.Fatalf("want a precondition failure, got %v", err)
	}
	a.inner.reset()
	wantTimestamps(t, a, uid, "meta", t1, "after the failed write")
	if b, err := a.GetBSO(ctx, uid, "meta", "global"); err != nil || b.Payload != "g" {
		t.Fatalf("meta/global %+v %v", b, err)
	}
	if n := a.inner.total(); n != 0 {
		t.Fatalf("%d database calls after a failed write, want hits", n)
	}
}

// history is what a load test knows: the newest timestamp acknowledged to
// a writer and the newest returned by a finished read, per user and
// collection ("" for the storage).
type history struct {
	mu    sync.Mutex
	acked map[hkey]weave.Timestamp
	seen  map[hkey]weave.Timestamp
	// windows and lapses are for the one case the protocol leaves open
	// (see the package comment): a write whose mark or invalidation did
	// not reach memcached lets processes that reach it serve the parts
	// from before the write, from its commit until its process confirms
	// its invalidations again. A read older than its floor (a lapse) is a
	// failure unless it overlaps the window of such a write of its user.
	windows []*window
	lapses  []lapse
}

// window is a write during which its process saw a memcached round trip
// fail, from its start until the process was next seen with every
// invalidation confirmed (zero: not within the load).
type window struct {
	uid        int64
	start, end time.Time
}

// lapse is a read that returned something older than its floor.
type lapse struct {
	uid        int64
	start, end time.Time
	msg        string
}

func (h *history) open(uid int64, start time.Time) *window {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := &window{uid: uid, start: start}
	h.windows = append(h.windows, w)
	return w
}

func (h *history) close(w *window, end time.Time) {
	h.mu.Lock()
	w.end = end
	h.mu.Unlock()
}

func (h *history) lapsed(uid int64, start time.Time, format string, args ...any) {
	h.mu.Lock()
	h.lapses = append(h.lapses, lapse{uid, start, time.Now(), fmt.Sprintf(format, args...)})
	h.mu.Unlock()
}

// uncovered returns the lapses no window explains.
func (h *history) uncovered() (out []lapse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.lapses {
		if !slices.ContainsFunc(h.windows, func(w *window) bool {
			return w.uid == l.uid && w.start.Before(l.end) && (w.end.IsZero() || l.start.Before(w.end))
		}) {
			out = append(out, l)
		}
	}
	return out
}

type hkey struct {
	uid  int64
	coll string
}

func newHistory() *history {
	return &history{acked: map[hkey]weave.Timestamp{}, seen: map[hkey]weave.Timestamp{}}
}

func (h *history) ack(uid int64, coll string, ts weave.Timestamp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range []hkey{{uid, coll}, {uid, ""}} {
		h.acked[k] = max(h.acked[k], ts)
	}
}

// floor is the lowest timestamp a read of uid's coll starting now may
// return: nothing older than an acknowledged write or an earlier read.
func (h *history) floor(uid int64, coll string) weave.Timestamp {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := hkey{uid, coll}
	return max(h.acked[k], h.seen[k])
}

func (h *history) floors(uid int64, colls []string) map[string]weave.Timestamp {
	out := map[string]weave.Timestamp{}
	for _, c := range append([]string{""}, colls...) {
		out[c] = h.floor(uid, c)
	}
	return out
}

func (h *history) saw(uid int64, coll string, ts weave.Timestamp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := hkey{uid, coll}
	h.seen[k] = max(h.seen[k], ts)
}

// loadResult sums up a load run.
type loadResult struct {
	reads, writes, conflicts atomic.Int64
	maxLatency               atomic.Int64 // ns
}

func (r *loadResult) took(d time.Duration) {
	for {
		cur := r.maxLatency.Load()
		if int64(d) <= cur || r.maxLatency.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

var loadColls = []string{"history", "tabs", "meta", "crypto", "clients"}

// runLoad runs writers and readers over stores (any of them for any call)
// for d, and fails the test on any error and on any read older than an
// acknowledged write or an earlier read. Collections only grow: every
// timestamp read must be at least its floor.
func runLoad(t *testing.T, stores []weave.Store, users []int64, writers, readers int, d time.Duration) *loadResult {
	t.Helper()
	h := newHistory()
	res := new(loadResult)
	stop := time.Now().Add(d)
	var wg, pollers sync.WaitGroup
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
	}
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; time.Now().Before(stop); i++ {
				s := stores[r.IntN(len(stores))]
				uid := users[r.IntN(len(users))]
				coll := loadColls[r.IntN(len(loadColls))]
				id := fmt.Sprintf("w%d-%d", w, i%7)
				switch coll {
				case "meta":
					id = "global"
				case "crypto":
					id = "keys"
				}
				start := time.Now()
				fs, _ := s.(faulty)
				var failures int
				if fs != nil {
					failures = fs.failures()
				}
				var ts weave.Timestamp
				var err error
				if r.IntN(2) == 0 {
					ts, err = s.PutBSO(t.Context(), uid, coll, upd(id, fmt.Sprintf("%d:%d", w, i)), noPre)
				} else {
					ts, err = s.PostBSOs(t.Context(), uid, coll, []weave.Update{upd(id, fmt.Sprintf("%d:%d", w, i))}, noPre)
				}
				res.took(time.Since(start))
				if errors.Is(err, weave.ErrConflict) || errors.Is(err, memcache.ErrContended) {
					// Refused, nothing written.
					res.conflicts.Add(1)
					continue
				}
				if err != nil {
					fail("write %s of %d: %v", coll, uid, err)
					return
				}
				h.ack(uid, coll, ts)
				res.writes.Add(1)
				if fs != nil && fs.failures() > failures {
					w := h.open(uid, start)
					pollers.Go(func() {
						for ; time.Now().Before(stop); time.Sleep(5 * time.Millisecond) {
							if fs.confirmed() {
								h.close(w, time.Now())
								return
							}
						}
					})
				}
			}
		})
	}
	for rd := range readers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			for time.Now().Before(stop) {
				s := stores[r.IntN(len(stores))]
				uid := users[r.IntN(len(users))]
				ctx := t.Context()
				start := time.Now()
				switch k := r.IntN(10); {
				case k == 5:
					// A read of what is newer than the last acknowledged
					// write, which the cache may answer empty: its
					// timestamp must not be older than that write.
					coll := loadColls[r.IntN(len(loadColls))]
					fl := h.floor(uid, coll)
					p, err := s.GetBSOs(ctx, uid, coll, weave.Query{Newer: fl})
					if err != nil {
						fail("GetBSOs: %v", err)
						return
					}
					if p.Modified < fl {
						h.lapsed(uid, start, "user %d: %s newer than %v read timestamp %v", uid, coll, fl, p.Modified)
					}
					h.saw(uid, coll, p.Modified)
				case k < 6:
					fl := h.floors(uid, loadColls)
					colls, st, err := s.CollectionTimestamps(ctx, uid)
					if err != nil {
						fail("CollectionTimestamps: %v", err)
						return
					}
					if st < fl[""] {
						h.lapsed(uid, start, "user %d: storage timestamp %v older than %v", uid, st, fl[""])
					}
					for _, c := range loadColls {
						if colls[c] < fl[c] {
							h.lapsed(uid, start, "user %d: %s timestamp %v older than %v", uid, c, colls[c], fl[c])
						}
						h.saw(uid, c, colls[c])
					}
					h.saw(uid, "", st)
				case k < 7:
					fl := h.floor(uid, "")
					st, err := s.LastModified(ctx, uid)
					if err != nil {
						fail("LastModified: %v", err)
						return
					}
					if st < fl {
						h.lapsed(uid, start, "user %d: LastModified %v older than %v", uid, st, fl)
					}
					h.saw(uid, "", st)
				default:
					coll, id := "meta", "global"
					if k == 9 {
						coll, id = "crypto", "keys"
					}
					// Only the hot record is written in these collections,
					// so its modified time is the collection's.
					fl := h.floor(uid, coll)
					b, err := s.GetBSO(ctx, uid, coll, id)
					if errors.Is(err, weave.ErrNotFound) {
						if fl != 0 {
							h.lapsed(uid, start, "user %d: %s/%s not found after a write at %v", uid, coll, id, fl)
						}
						continue
					}
					if err != nil {
						fail("GetBSO: %v", err)
						return
					}
					if b.Modified < fl {
						h.lapsed(uid, start, "user %d: %s/%s modified %v older than %v", uid, coll, id, b.Modified, fl)
					}
					h.saw(uid, coll, b.Modified)
				}
				res.took(time.Since(start))
				res.reads.Add(1)
			}
		})
	}
	wg.Wait()
	pollers.Wait()
	uncovered := h.uncovered()
	for _, l := range uncovered {
		t.Error(l.msg)
	}
	if n := len(h.lapses) - len(uncovered); n > 0 {
		t.Logf("%d reads older than their floor during writes whose process saw memcached fail, before it confirmed its invalidations (not covered by the protocol)", n)
	}
	return res
}

// TestTwoProcessesManyWriters: two weave processes share one memcached and
// one database; many writers and readers go through either. No read may
// return a timestamp older than one acknowledged to a writer before the
// read began, or older than one returned by a read that ended before it
// began (monotonic for everyone, hence read-your-writes for each client).
func TestTwoProcessesManyWriters(t *testing.T) {
	mc := startMemcached(t)
	path := tempDB(t)
	cfg := memcache.Config{Servers: []string{mc.Addr()}, Prefix: randomPrefix()}
	a, b := newProcess(t, path, cfg), newProcess(t, path, cfg)
	users := make([]int64, 12)
	for i := range users {
		users[i] = int64(100 + i)
	}
	res := runLoad(t, []weave.Store{a, b}, users, 6, 10, 3*time.Second)
	hits := a.obs.get("primary", memcache.Hit) + b.obs.get("primary", memcache.Hit)
	misses := a.obs.get("primary", memcache.Miss) + b.obs.get("primary", memcache.Miss)
	bypass := a.obs.get("primary", memcache.Bypass) + b.obs.get("primary", memcache.Bypass)
	t.Logf("%d writes (%d conflicts), %d reads: %d hits, %d misses, %d bypassed; max latency %v",
		res.writes.Load(), res.conflicts.Load(), res.reads.Load(), hits, misses, bypass, time.Duration(res.maxLatency.Load()))
	if res.writes.Load() < 20 || res.reads.Load() < 50 {
		t.Fatalf("too little load to mean anything")
	}
	if hits == 0 {
		t.Fatal("no read was served from the cache")
	}
	if e := a.obs.errors("primary") + b.obs.errors("primary"); e != 0 {
		// Possible on an overloaded machine (a round trip over the
		// timeout); the checks above hold all the same.
		t.Logf("%d memcached errors", e)
	}
}
