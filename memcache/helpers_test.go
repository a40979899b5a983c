package memcache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/memcache"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// startMemcached starts a memcached for the test (see testkit).
func startMemcached(t testing.TB) *testkit.Memcached { return testkit.StartMemcached(t) }

func freePort(t testing.TB) int { return testkit.FreePort(t) }

// proxyMode is how a faultProxy treats traffic.
type proxyMode int32

const (
	pass      proxyMode = iota
	slow                // delays every chunk in both directions
	blackhole           // accepts connections, forwards nothing
	noReplies           // forwards requests, swallows the answers
	casLoses            // makes every compare-and-swap lose (cas unique 0)
)

// faultProxy is a TCP proxy on 127.0.0.1 in front of a memcached, whose
// mode a test switches to simulate a slow, hung or half-broken server.
type faultProxy struct {
	l      net.Listener
	target string
	mode   atomic.Int32
	delay  atomic.Int64 // ns, for slow
	// casLeft, for casLoses: how many more cas requests lose (negative:
	// all of them).
	casLeft atomic.Int64
	mu      sync.Mutex
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

func startProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	p.casLeft.Store(-1)
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

func (p *faultProxy) Addr() string { return p.l.Addr().String() }

func (p *faultProxy) Set(m proxyMode, delay time.Duration) {
	p.delay.Store(int64(delay))
	p.casLeft.Store(-1)
	p.mode.Store(int32(m))
}

func (p *faultProxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && p.conns == nil {
		return false
	}
	if on {
		p.conns[c] = true
	} else if p.conns != nil {
		delete(p.conns, c)
	}
	return true
}

func (p *faultProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Go(func() {
			defer p.track(c, false)
			defer c.Close()
			s, err := net.DialTimeout("tcp", p.target, time.Second)
			if err != nil {
				return
			}
			if !p.track(s, true) {
				s.Close()
				return
			}
			defer p.track(s, false)
			defer s.Close()
			done := make(chan struct{}, 2)
			go func() { p.pipe(s, c, false); done <- struct{}{} }()
			go func() { p.pipe(c, s, true); done <- struct{}{} }()
			<-done
		})
	}
}

// pipe copies src to dst chunk by chunk, applying the mode at each chunk.
func (p *faultProxy) pipe(dst, src net.Conn, reply bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch proxyMode(p.mode.Load()) {
			case slow:
				time.Sleep(time.Duration(p.delay.Load()))
			case blackhole:
				continue
			case noReplies:
				if reply {
					continue
				}
			case casLoses:
				if !reply {
					n = copy(buf, p.loseCAS(buf[:n]))
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// LoseCAS makes the next n cas requests lose (cas unique 0), then lets
// every request through unchanged.
func (p *faultProxy) LoseCAS(n int64) {
	p.casLeft.Store(n)
	p.mode.Store(int32(casLoses))
}

// Conns is the number of client connections open through the proxy.
func (p *faultProxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2 // each has its server side
}

// Cut closes every open connection (as a crash or a network failure would).
func (p *faultProxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *faultProxy) Close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// openSQLite opens (creating) the SQLite store at path.
func openSQLite(t testing.TB, path string) weave.Store {
	t.Helper()
	s, err := sqlstore.OpenStore(context.Background(), "sqlite://"+path, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "weave.db") }

// casCommand is the line of a memcached "cas" request up to its cas unique.
var casCommand = regexp.MustCompile(`(?m)^(cas \S+ \d+ \d+ \d+ )\d+`)

// loseCAS gives the cas requests in a chunk that are still to lose (see
// casLeft) the cas unique 0, which no item has: memcached answers EXISTS,
// as when another client changed the item since it was read. The chunk
// only gets shorter.
func (p *faultProxy) loseCAS(chunk []byte) []byte {
	return casCommand.ReplaceAllFunc(chunk, func(cmd []byte) []byte {
		for {
			left := p.casLeft.Load()
			if left == 0 {
				return cmd
			}
			if left < 0 || p.casLeft.CompareAndSwap(left, left-1) {
				break
			}
		}
		return casCommand.ReplaceAll(cmd, []byte("${1}0"))
	})
}

func randomPrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t" + hex.EncodeToString(b) + ":"
}

// calmTimeout is the round-trip timeout of tests that are not about
// faults, so that a loaded machine does not turn them into fault tests.
const calmTimeout = 2 * time.Second

// newCache wraps inner in a cache on servers with a fresh key prefix unless
// cfg has one; the cache (and inner) close with the test.
func newCache(t testing.TB, inner weave.Store, cfg memcache.Config) *memcache.Store {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = randomPrefix()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = calmTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	s, err := memcache.New(inner, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// counting is a decorator over a real store that counts the calls reaching
// it and lets a test act in the middle of one (hooks run after the inner
// call, before it returns).
type counting struct {
	weave.Store
	mu     sync.Mutex
	calls  map[string]int
	before func(op string)
	after  func(op string)
}

func newCounting(inner weave.Store) *counting {
	return &counting{Store: inner, calls: map[string]int{}}
}

func (c *counting) count(op string) func() {
	c.mu.Lock()
	c.calls[op]++
	before, after := c.before, c.after
	c.mu.Unlock()
	if before != nil {
		before(op)
	}
	return func() {
		if after != nil {
			after(op)
		}
	}
}

// hooks sets the functions run around every call (nil: none).
func (c *counting) hooks(before, after func(op string)) {
	c.mu.Lock()
	c.before, c.after = before, after
	c.mu.Unlock()
}

func (c *counting) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *counting) total() int {
	n := 0
	for _, v := range c.snapshot() {
		n += v
	}
	return n
}

func (c *counting) reset() {
	c.mu.Lock()
	c.calls = map[string]int{}
	c.mu.Unlock()
}

func (c *counting) LastModified(ctx context.Context, uid int64) (weave.Timestamp, error) {
	defer c.count("LastModified")()
	return c.Store.LastModified(ctx, uid)
}

func (c *counting) CollectionTimestamps(ctx context.Context, uid int64) (map[string]weave.Timestamp, weave.Timestamp, error) {
	defer c.count("CollectionTimestamps")()
	return c.Store.CollectionTimestamps(ctx, uid)
}

func (c *counting) CollectionCounts(ctx context.Context, uid int64) (map[string]int64, error) {
	defer c.count("CollectionCounts")()
	return c.Store.CollectionCounts(ctx, uid)
}

func (c *counting) CollectionUsage(ctx context.Context, uid int64) (map[string]int64, error) {
	defer c.count("CollectionUsage")()
	return c.Store.CollectionUsage(ctx, uid)
}

func (c *counting) Usage(ctx context.Context, uid int64) (int64, error) {
	defer c.count("Usage")()
	return c.Store.Usage(ctx, uid)
}

func (c *counting) CollectionModified(ctx context.Context, uid int64, coll string) (weave.Timestamp, error) {
	defer c.count("CollectionModified")()
	return c.Store.CollectionModified(ctx, uid, coll)
}

func (c *counting) GetBSOs(ctx context.Context, uid int64, coll string, q weave.Query) (weave.Page, error) {
	defer c.count("GetBSOs")()
	return c.Store.GetBSOs(ctx, uid, coll, q)
}

func (c *counting) GetBSO(ctx context.Context, uid int64, coll, id string) (weave.BSO, error) {
	defer c.count("GetBSO")()
	return c.Store.GetBSO(ctx, uid, coll, id)
}

func (c *counting) PutBSO(ctx context.Context, uid int64, coll string, u weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("PutBSO")()
	return c.Store.PutBSO(ctx, uid, coll, u, pre)
}

func (c *counting) PostBSOs(ctx context.Context, uid int64, coll string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("PostBSOs")()
	return c.Store.PostBSOs(ctx, uid, coll, us, pre)
}

func (c *counting) DeleteBSO(ctx context.Context, uid int64, coll, id string, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("DeleteBSO")()
	return c.Store.DeleteBSO(ctx, uid, coll, id, pre)
}

func (c *counting) DeleteBSOs(ctx context.Context, uid int64, coll string, ids []string, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("DeleteBSOs")()
	return c.Store.DeleteBSOs(ctx, uid, coll, ids, pre)
}

func (c *counting) DeleteCollection(ctx context.Context, uid int64, coll string, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("DeleteCollection")()
	return c.Store.DeleteCollection(ctx, uid, coll, pre)
}

func (c *counting) DeleteStorage(ctx context.Context, uid int64, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("DeleteStorage")()
	return c.Store.DeleteStorage(ctx, uid, pre)
}

func (c *counting) CreateBatch(ctx context.Context, uid int64, coll string, us []weave.Update, pre weave.Precondition) (string, weave.Timestamp, error) {
	defer c.count("CreateBatch")()
	return c.Store.CreateBatch(ctx, uid, coll, us, pre)
}

func (c *counting) AppendBatch(ctx context.Context, uid int64, coll, batch string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("AppendBatch")()
	return c.Store.AppendBatch(ctx, uid, coll, batch, us, pre)
}

func (c *counting) CommitBatch(ctx context.Context, uid int64, coll, batch string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	defer c.count("CommitBatch")()
	return c.Store.CommitBatch(ctx, uid, coll, batch, us, pre)
}

// observer counts lookups and failed round trips per pool.
type observer struct {
	mu      sync.Mutex
	lookups map[string]int // pool/outcome
	errs    map[string]int // pool
	rts     map[string]int // pool
}

func newObserver() *observer {
	return &observer{lookups: map[string]int{}, errs: map[string]int{}, rts: map[string]int{}}
}

func (o *observer) Lookup(pool, op string, out memcache.Outcome) {
	o.mu.Lock()
	o.lookups[pool+"/"+string(out)]++
	o.mu.Unlock()
}

func (o *observer) RoundTrip(pool, cmd string, d time.Duration, err error) {
	o.mu.Lock()
	o.rts[pool]++
	if err != nil {
		o.errs[pool]++
	}
	o.mu.Unlock()
}

func (o *observer) PoolState(string, bool, bool) {}

func (o *observer) get(pool string, out memcache.Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lookups[pool+"/"+string(out)]
}

func (o *observer) roundTrips(pool string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rts[pool]
}

func (o *observer) errors(pool string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.errs[pool]
}

func upd(id, payload string) weave.Update {
	return weave.Update{ID: id, Payload: weave.Some(payload)}
}

var noPre weave.Precondition

func itoa(n int) string { return strconv.Itoa(n) }
