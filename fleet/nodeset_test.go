package fleet_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
)

// fakeCache notes the users it is told to forget.
type fakeCache struct {
	weave.Store
	mu     sync.Mutex
	forgot []int64
	closed bool
}

func (c *fakeCache) Forget(uid int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgot = append(c.forgot, uid)
}

func (c *fakeCache) forgotten() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.forgot)
}

func (c *fakeCache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Store.Close()
}

// fakeFront answers with its node's URL.
type fakeFront struct {
	url   string
	mu    sync.Mutex
	ready bool
}

func (f *fakeFront) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, f.url) }
func (f *fakeFront) SetReady(r bool)                                  { f.mu.Lock(); f.ready = r; f.mu.Unlock() }

type nodeSetEnv struct {
	*world
	set     *fleet.NodeSet
	watcher *fleet.Watcher
	router  *fleet.Router
	mu      sync.Mutex
	caches  map[string]*fakeCache
	fronts  map[string]*fakeFront
	opened  map[string]fleet.Shard
}

func newNodeSetEnv(t *testing.T, nodes int) *nodeSetEnv {
	e := &nodeSetEnv{world: newWorld(t, backends()[0], nodes), caches: map[string]*fakeCache{},
		fronts: map[string]*fakeFront{}, opened: map[string]fleet.Shard{}}
	e.watcher = fleet.NewWatcher(e.tokens, 20*time.Millisecond, nil)
	e.router = &fleet.Router{}
	e.set = fleet.NewNodeSet(fleet.NodeSetConfig{
		OpenShard: func(ctx context.Context, n weave.Node) (fleet.Shard, error) {
			s, err := openShard(ctx, n.DatabaseURL)
			if err == nil {
				e.mu.Lock()
				e.opened[n.URL] = s
				e.mu.Unlock()
			}
			return s, err
		},
		Cache: func(nodeURL string, store weave.Store) (fleet.Cache, error) {
			c := &fakeCache{Store: store}
			e.mu.Lock()
			e.caches[nodeURL] = c
			e.mu.Unlock()
			return c, nil
		},
		Handler: func(n *fleet.Node) (fleet.NodeHandler, error) {
			if n.Store != fleet.Cache(e.cache(n.URL)) || n.Shard == nil {
				t.Errorf("node %s: the front end is not given the cache over the shard", n.URL)
			}
			f := &fakeFront{url: n.URL, ready: true}
			e.mu.Lock()
			e.fronts[n.URL] = f
			e.mu.Unlock()
			return f, nil
		},
		Watcher: e.watcher,
		Router:  e.router,
	})
	t.Cleanup(func() { e.set.Close() })
	return e
}

func (e *nodeSetEnv) cache(url string) *fakeCache {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.caches[url]
}

func (e *nodeSetEnv) served(url string) string {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", url+"/1.5/1/info/collections", nil)
	e.router.ServeHTTP(w, r)
	return w.Body.String()
}

// Every node of a NodeSet, the own one and the others, is built the same
// way (shard, cache, front end, routed), and a user's cache entries on a
// node are dropped when a move onto or off it becomes visible.
func TestNodeSetCachesEveryNodeAndForgetsMoves(t *testing.T) {
	e := newNodeSetEnv(t, 3)
	own, others := e.nodes[0], e.nodes[1:]
	uid := e.user("mover@example.com")
	n, err := e.set.ServeOwn(e.ctx, own.URL, e.shards[own.ID])
	if err != nil {
		t.Fatal(err)
	}
	if !n.Own || n.Shard != e.shards[own.ID] {
		t.Fatalf("own node %+v", n)
	}
	if follow, err := e.set.AddNodes(e.ctx, e.tokens, "all"); err != nil || !follow {
		t.Fatalf("AddNodes(all) = %v, %v", follow, err)
	}
	for _, n := range e.nodes {
		if got := e.served(n.URL); got != n.URL {
			t.Errorf("request for %s served by %q", n.URL, got)
		}
		if e.cache(n.URL) == nil {
			t.Errorf("node %s not cached", n.URL)
		}
	}
	if _, ok := e.opened[own.URL]; ok {
		t.Error("the own node's database was opened again")
	}
	refresh := func() {
		t.Helper()
		if err := e.watcher.Refresh(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	refresh()
	m := e.migrator()
	if _, err := m.MigrateUser(e.ctx, uid, others[0].URL); err != nil {
		t.Fatal(err)
	}
	refresh()
	if got := e.cache(own.URL).forgotten(); !slices.Equal(got, []int64{uid}) {
		t.Errorf("moved off the own node: forgot %v there, want [%d]", got, uid)
	}
	if _, err := m.MigrateUser(e.ctx, uid, own.URL); err != nil {
		t.Fatal(err)
	}
	refresh()
	if got := e.cache(own.URL).forgotten(); !slices.Equal(got, []int64{uid, uid}) {
		t.Errorf("moved back onto the own node: forgot %v there, want [%d %d]", got, uid, uid)
	}
	if got := e.cache(others[0].URL).forgotten(); !slices.Equal(got, []int64{uid}) {
		t.Errorf("moved off another node: forgot %v there, want [%d]", got, uid)
	}
	if got := e.cache(others[1].URL).forgotten(); len(got) != 0 {
		t.Errorf("a node the user never touched forgot %v", got)
	}

	e.set.SetReady(false)
	for url, f := range e.fronts {
		if f.ready {
			t.Errorf("node %s still ready", url)
		}
	}
	if err := e.set.Close(); err != nil {
		t.Fatal(err)
	}
	for url, c := range e.caches {
		if !c.closed {
			t.Errorf("cache of %s not closed", url)
		}
	}
	if err := e.shards[own.ID].Ping(e.ctx); err != nil {
		t.Errorf("the own node's database closed with the set: %v", err)
	}
	if err := e.opened[others[0].URL].Ping(e.ctx); err == nil {
		t.Error("another node's database still open after Close")
	}
	if err := e.set.Add(e.ctx, others[0]); err == nil {
		t.Error("Add after Close")
	}
}

// Follow serves a node added to the token database while it runs, and
// --nodes with URLs serves exactly those.
func TestNodeSetFollowAndSelect(t *testing.T) {
	e := newNodeSetEnv(t, 3)
	if _, err := e.set.ServeOwn(e.ctx, e.nodes[0].URL, e.shards[e.nodes[0].ID]); err != nil {
		t.Fatal(err)
	}
	if follow, err := e.set.AddNodes(e.ctx, e.tokens, " "+e.nodes[2].URL+"/ , "); err != nil || follow {
		t.Fatalf("AddNodes(URL) = %v, %v", follow, err)
	}
	if e.set.Serves(e.nodes[1].URL) || !e.set.Serves(e.nodes[2].URL) {
		t.Fatalf("serves node 2: %v, node 3: %v; want only node 3", e.set.Serves(e.nodes[1].URL), e.set.Serves(e.nodes[2].URL))
	}
	if _, err := e.set.AddNodes(e.ctx, e.tokens, "http://127.0.0.1:1/unknown"); err == nil {
		t.Error("an unknown node URL accepted")
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go e.watcher.Run(ctx)
	go e.set.Follow(ctx, 20*time.Millisecond)
	added, err := e.tokens.AddNode(e.ctx, weave.Node{URL: "http://127.0.0.1:1/node9", Capacity: 1, DatabaseURL: backends()[0].fresh(t)})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !e.set.Serves(added.URL) || !e.set.Serves(e.nodes[1].URL); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Follow did not serve the nodes added (node 2 %v, new node %v)", e.set.Serves(e.nodes[1].URL), e.set.Serves(added.URL))
		}
	}
	if got := e.served(added.URL); got != added.URL {
		t.Errorf("request for the new node served by %q", got)
	}
}

// A Deleter in a serving process deletes on the shards it serves, and its
// nodes refuse the deleted uid at once.
func TestDeleterUsesServedNodes(t *testing.T) {
	e := newNodeSetEnv(t, 2)
	uid := e.user("gone@example.com")
	own := e.nodes[0]
	if _, err := e.set.ServeOwn(e.ctx, own.URL, e.shards[own.ID]); err != nil {
		t.Fatal(err)
	}
	if err := e.watcher.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	opened := 0
	d := &fleet.Deleter{Nodes: e.set, Migrator: func() *fleet.Migrator {
		m := e.migrator()
		open := m.Open
		m.Open = func(ctx context.Context, n weave.Node) (fleet.Shard, error) {
			opened++
			return open(ctx, n)
		}
		return m
	}}
	if err := d.DeleteAccount(e.ctx, "gone@example.com"); err != nil {
		t.Fatal(err)
	}
	if opened != 0 {
		t.Errorf("the Deleter opened %d shards of served nodes", opened)
	}
	if !e.watcher.Status(own.URL).Moved(uid) {
		t.Error("the deleted uid is not refused at once")
	}
	if got := e.cache(own.URL).forgotten(); !slices.Equal(got, []int64{uid}) {
		t.Errorf("forgot %v, want [%d]", got, uid)
	}
	colls, _, err := e.shards[own.ID].CollectionTimestamps(e.ctx, uid)
	if err != nil || len(colls) != 0 {
		t.Errorf("the deleted user's data: %v, %v", colls, err)
	}
}

// purgeCounter is a store whose expired rows are a counter.
type purgeCounter struct {
	weave.Store
	mu           sync.Mutex
	left, calls  int64
	limitsPassed []int
}

func (p *purgeCounter) PurgeExpired(_ context.Context, limit int) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.limitsPassed = append(p.limitsPassed, limit)
	n := min(p.left, int64(limit))
	p.left -= n
	return n, nil
}

// PurgeLoop purges in batches until a batch comes back short, once per
// interval; a zero interval never purges.
func TestPurgeLoop(t *testing.T) {
	p := &purgeCounter{left: 2500}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fleet.PurgeLoop(ctx, p, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		left, calls := p.left, p.calls
		p.mu.Unlock()
		if left == 0 && calls >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: %d rows left, %d calls", left, calls)
		}
	}
	cancel()
	<-done
	if p.limitsPassed[0] != 1000 || p.calls < 4 {
		t.Errorf("batches %v", p.limitsPassed)
	}
	idle := &purgeCounter{left: 10}
	fleet.PurgeLoop(context.Background(), idle, 0, nil) // returns at once
	if idle.calls != 0 {
		t.Errorf("a zero interval purged %d times", idle.calls)
	}
}
