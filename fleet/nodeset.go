package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/weave-sync/weave"
)

// Node is one storage node a process serves, as a NodeSet built it:
// database → Store → cache decorator → front end asking the node's status.
type Node struct {
	// URL is the node's public URL.
	URL string
	// Shard is the node's database: user moves and deletions go here,
	// behind any cache.
	Shard Shard
	// Store is what the node's front ends read and write: the cache over
	// Shard, or Shard itself without a cache.
	Store weave.Store
	// Status is the node's state and its users' move marks, for its
	// front ends.
	Status NodeStatus
	// Own is set on the process's own node, whose database belongs to
	// the caller (it is not closed with the set).
	Own bool

	handler NodeHandler
	cache   Cache // nil: not cached
}

// Handler returns the node's front end.
func (n *Node) Handler() http.Handler { return n.handler }

// NodeHandler is the front end of one node (its storage API, and the 1.1
// front end when served), whose heartbeats turn 503 when it is not ready.
type NodeHandler interface {
	http.Handler
	SetReady(ready bool)
}

// Cache is a cache decorator over a node's Store (memcache.Store). Its
// Close closes the Store under it.
type Cache interface {
	weave.Store
	// Forget drops everything cached for uid, whose data changed behind
	// the cache (a move onto or off the node).
	Forget(uid int64)
}

// NodeSetConfig says how a NodeSet builds a node.
type NodeSetConfig struct {
	// OpenShard opens node n's database, its schema current. Required to
	// Add nodes.
	OpenShard func(ctx context.Context, n weave.Node) (Shard, error)
	// Cache, when set, puts a cache over a node's store.
	Cache func(nodeURL string, store weave.Store) (Cache, error)
	// Handler builds the front end of node n over n.Store, asking
	// n.Status on every request. Required.
	Handler func(n *Node) (NodeHandler, error)
	// Watcher keeps the node states and move marks. Required.
	Watcher *Watcher
	// Router routes requests to the nodes added (the own node is its
	// Fallback). Required.
	Router *Router
	// PurgeEvery is how often a node's expired records and batches are
	// purged (0: never).
	PurgeEvery time.Duration
	// Log receives node events (nil: discarded).
	Log *slog.Logger
}

// NodeSet builds and keeps the storage nodes a process serves. Every node,
// the process's own and the others it serves, is built the same way, and a
// user's cached data on any of them is dropped as soon as a move onto or off
// that node becomes visible to the Watcher.
type NodeSet struct {
	cfg NodeSetConfig

	mu      sync.Mutex
	nodes   map[string]*Node // normalised URL → node
	closers []func() error
	closed  bool
}

// NewNodeSet returns an empty set. It takes over cfg.Watcher's
// OnMoveChange.
func NewNodeSet(cfg NodeSetConfig) *NodeSet {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &NodeSet{cfg: cfg, nodes: map[string]*Node{}}
	// The Watcher calls this before it publishes the new mark: requests
	// still see the old one (a user moved off still gets 401), so no
	// cache fill races the drop.
	cfg.Watcher.OnMoveChange = func(nodeURL string, uid int64) {
		if n := s.node(nodeURL); n != nil && n.cache != nil {
			n.cache.Forget(uid)
		}
	}
	return s
}

func (s *NodeSet) node(url string) *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[weave.NodeURLKey(url)]
}

// Node returns the served node at url, or nil.
func (s *NodeSet) Node(url string) *Node { return s.node(url) }

// Serves reports whether the node at url is served.
func (s *NodeSet) Serves(url string) bool { return s.node(url) != nil }

// ServeOwn builds the process's own node at url over shard, whose database
// the caller keeps (and closes), and makes it the Router's fallback.
func (s *NodeSet) ServeOwn(ctx context.Context, url string, shard Shard) (*Node, error) {
	n, err := s.build(ctx, url, shard, true)
	if err != nil {
		return nil, err
	}
	s.cfg.Router.Fallback = n.handler
	return n, nil
}

// Add opens node n's database, builds the node and routes its requests.
func (s *NodeSet) Add(ctx context.Context, n weave.Node) error {
	if n.DatabaseURL == "" {
		return fmt.Errorf("--nodes: node %s has no database URL (set one with `weave node add URL --database-url DSN`)", n.URL)
	}
	shard, err := s.cfg.OpenShard(ctx, n)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.URL, err)
	}
	node, err := s.build(ctx, n.URL, shard, false)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.URL, err)
	}
	if err := s.cfg.Router.Add(n.URL, node.handler); err != nil {
		return err
	}
	s.cfg.Log.Info("serving node", "url", n.URL, "state", n.State)
	return nil
}

// build makes a node of shard: the cache over it, its front end, its
// watched marks and its purges.
func (s *NodeSet) build(ctx context.Context, url string, shard Shard, own bool) (*Node, error) {
	n := &Node{URL: url, Shard: shard, Store: shard, Status: s.cfg.Watcher.Status(url), Own: own}
	closeStore := shard.Close
	if s.cfg.Cache != nil {
		var under weave.Store = shard
		if own {
			under = keepOpenShard{shard}
		}
		c, err := s.cfg.Cache(url, under)
		if err != nil {
			if !own {
				shard.Close()
			}
			return nil, err
		}
		n.Store, n.cache, closeStore = c, c, c.Close
	} else if own {
		closeStore = func() error { return nil }
	}
	h, err := s.cfg.Handler(n)
	if err != nil {
		closeStore()
		return nil, err
	}
	n.handler = h
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		closeStore()
		return nil, context.Canceled
	}
	s.nodes[weave.NodeURLKey(url)] = n
	s.closers = append(s.closers, closeStore)
	s.mu.Unlock()
	s.cfg.Watcher.Watch(url, shard)
	log := s.cfg.Log
	if !own {
		log = log.With("node", url)
	}
	go PurgeLoop(ctx, n.Store, s.cfg.PurgeEvery, log)
	return n, nil
}

// SetReady switches the heartbeats of every node.
func (s *NodeSet) SetReady(ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		n.handler.SetReady(ready)
	}
}

// Close closes the nodes' stores (not the own node's database); nodes
// added later are refused.
func (s *NodeSet) Close() error {
	s.mu.Lock()
	closers := s.closers
	s.closers, s.closed = nil, true
	s.mu.Unlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// AddNodes serves the nodes spec names besides the own node: "" none,
// "all" every node of the token database with a database URL, else
// comma-separated node URLs. It reports whether spec is "all", for Follow.
func (s *NodeSet) AddNodes(ctx context.Context, dir weave.TokenDB, spec string) (all bool, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return false, nil
	}
	var want []weave.Node
	if spec == "all" {
		ns, err := dir.Nodes(ctx)
		if err != nil {
			return true, err
		}
		for _, n := range ns {
			if n.DatabaseURL != "" {
				want = append(want, n)
			}
		}
	} else {
		for _, u := range strings.Split(spec, ",") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			n, err := dir.NodeByURL(ctx, weave.CleanNodeURL(u))
			if err != nil {
				return false, fmt.Errorf("--nodes: node %s: %w (add it with `weave node add`)", u, err)
			}
			want = append(want, n)
		}
	}
	for _, n := range want {
		if s.Serves(n.URL) {
			continue // the process's own node
		}
		if err := s.Add(ctx, n); err != nil {
			return spec == "all", err
		}
	}
	return spec == "all", nil
}

// Follow serves every node with a database that appears in the token
// database while ctx lasts (`--nodes all`), looking at the node list the
// Watcher keeps at each refresh. A node whose shard cannot be opened is
// retried, its error logged when it changes.
func (s *NodeSet) Follow(ctx context.Context, refresh time.Duration) {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	t := time.NewTicker(refresh)
	defer t.Stop()
	lastErr := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range s.cfg.Watcher.Nodes() {
			if n.DatabaseURL == "" || s.Serves(n.URL) {
				continue
			}
			err := s.Add(ctx, n)
			switch {
			case err == nil:
				delete(lastErr, n.URL)
			case ctx.Err() != nil:
				return
			case lastErr[n.URL] != err.Error():
				lastErr[n.URL] = err.Error()
				s.cfg.Log.Error("fleet: cannot serve a new node; retrying", "node", n.URL, "err", err)
			}
		}
	}
}

// PurgeLoop removes a store's expired records and batches every interval
// until ctx ends (a zero interval: never). Reads already hide them; purging
// only reclaims space.
func PurgeLoop(ctx context.Context, store weave.Store, every time.Duration, log *slog.Logger) {
	Every(ctx, every, func() {
		var total int64
		for ctx.Err() == nil {
			n, err := store.PurgeExpired(ctx, 1000)
			total += n
			if err != nil {
				log.Warn("purge of expired records failed; will retry", "err", err)
				break
			}
			if n < 1000 {
				break
			}
		}
		if total > 0 {
			log.Info("purged expired records and batches", "rows", total)
		}
	})
}

// Every runs fn every interval until ctx ends; a zero interval never.
func Every(ctx context.Context, every time.Duration, fn func()) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
