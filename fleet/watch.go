package fleet

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave"
)

// MarkHorizon is how far back the Watcher reads move marks: a client can
// only hold a token naming a user's old node for the token lifetime (1 h)
// plus the expired-token grace of /info/collections (2 h). Older marks still
// refuse writes (checked in the store), they only no longer turn into 401s.
const MarkHorizon = 6 * time.Hour

// Watcher keeps the states of the nodes (from the token database) and the
// move marks of the users of the shards this process serves, re-reading them
// every Refresh.
type Watcher struct {
	dir     NodeLister
	refresh time.Duration
	log     *slog.Logger

	nodes atomic.Pointer[map[string]weave.Node] // normalised URL → node

	// refreshing serialises Refresh: a refresh that read older states
	// must not publish them after one that read newer ones.
	refreshing sync.Mutex

	mu     sync.Mutex
	shards map[string]*shardMarks // normalised node URL → marks
	ready  chan struct{}

	// OnMoveChange, when set (before Run), is called for every user whose
	// move state on a watched node changed, before the new state is
	// published: while it runs, requests still see the old state (a moved
	// user still gets 401), so a cache can be dropped with no fill racing.
	OnMoveChange func(nodeURL string, uid int64)
}

type shardMarks struct {
	mover weave.UserMover
	marks atomic.Pointer[map[int64]weave.MoveState]
}

// NodeLister reads the node table cheaply (implemented by
// *sqlstore.TokenDB).
type NodeLister interface {
	NodeStates(ctx context.Context) ([]weave.Node, error)
}

// NewWatcher returns a Watcher on the token database; refresh 0 means
// DefaultRefresh. Run starts it.
func NewWatcher(dir NodeLister, refresh time.Duration, log *slog.Logger) *Watcher {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{dir: dir, refresh: refresh, log: log, shards: map[string]*shardMarks{}, ready: make(chan struct{})}
	empty := map[string]weave.Node{}
	w.nodes.Store(&empty)
	return w
}

// Watch adds a served node's shard, whose move marks are kept.
func (w *Watcher) Watch(nodeURL string, m weave.UserMover) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sm := &shardMarks{mover: m}
	empty := map[int64]weave.MoveState{}
	sm.marks.Store(&empty)
	w.shards[weave.NodeURLKey(nodeURL)] = sm
}

// Refresh re-reads everything once.
func (w *Watcher) Refresh(ctx context.Context) error {
	w.refreshing.Lock()
	defer w.refreshing.Unlock()
	ns, err := w.dir.NodeStates(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]weave.Node, len(ns))
	for _, n := range ns {
		m[weave.NodeURLKey(n.URL)] = n
	}
	w.nodes.Store(&m)
	w.mu.Lock()
	shards := make(map[string]*shardMarks, len(w.shards))
	for url, s := range w.shards {
		shards[url] = s
	}
	w.mu.Unlock()
	var firstErr error
	for url, s := range shards {
		marks, err := s.mover.MoveStates(ctx, time.Now().Add(-MarkHorizon).UnixMilli())
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if w.OnMoveChange != nil {
			old := *s.marks.Load()
			for uid, st := range marks {
				if old[uid] != st {
					w.OnMoveChange(url, uid)
				}
			}
			for uid := range old {
				if _, ok := marks[uid]; !ok {
					w.OnMoveChange(url, uid)
				}
			}
		}
		s.marks.Store(&marks)
	}
	return firstErr
}

// Run refreshes until ctx ends. Failures keep the last known states.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.refresh)
	defer t.Stop()
	failing := false
	for {
		err := w.Refresh(ctx)
		if err != nil && !failing && ctx.Err() == nil {
			w.log.Warn("fleet: cannot refresh node states; keeping the last known", "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Node returns the last known state of the node at url.
func (w *Watcher) Node(url string) (weave.Node, bool) {
	n, ok := (*w.nodes.Load())[weave.NodeURLKey(url)]
	return n, ok
}

// Nodes returns every known node.
func (w *Watcher) Nodes() []weave.Node {
	m := *w.nodes.Load()
	out := make([]weave.Node, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	return out
}

// MoveState returns the last known move mark of uid on the node at url.
func (w *Watcher) MoveState(url string, uid int64) weave.MoveState {
	return w.moveState(weave.NodeURLKey(url), uid)
}

func (w *Watcher) moveState(key string, uid int64) weave.MoveState {
	w.mu.Lock()
	s := w.shards[key]
	w.mu.Unlock()
	if s == nil {
		return weave.MoveNone
	}
	return (*s.marks.Load())[uid]
}

// NodeStatus is one node as a Watcher last saw it: its state and the move
// marks of its users. It is what the node's storage API asks on every
// request (a weavehttp.NodeStatus).
type NodeStatus struct {
	w   *Watcher
	url string // normalised
}

// Status returns the status of the node at nodeURL.
func (w *Watcher) Status(nodeURL string) NodeStatus {
	return NodeStatus{w: w, url: weave.NodeURLKey(nodeURL)}
}

// State returns the Retry-After of a down node and the X-Weave-Backoff of a
// node in backoff (the node's own, else the defaults); zero otherwise.
func (s NodeStatus) State() (down, backoff time.Duration) {
	n, ok := (*s.w.nodes.Load())[s.url]
	switch {
	case !ok:
	case n.State == weave.NodeDown:
		if down = n.RetryAfter; down <= 0 {
			down = DefaultRetryAfter
		}
	case n.State == weave.NodeBackoff:
		if backoff = n.Backoff; backoff <= 0 {
			backoff = DefaultBackoff
		}
	}
	return down, backoff
}

// Moved reports whether uid is marked moved off the node.
func (s NodeStatus) Moved(uid int64) bool {
	return s.w.moveState(s.url, uid) == weave.MoveMoved
}
