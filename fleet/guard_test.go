package fleet_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
)

// The status of a node in maintenance (down) gives its Retry-After, and a
// user already moved off it shows as moved (weavehttp answers it 401 before
// 503, so Firefox fetches a token for the new node instead of waiting out
// the maintenance).
func TestWatcherStatusDownAndMoved(t *testing.T) {
	w := newWorld(t, backends()[0], 2)
	moved := w.user("moved@example.com")
	stays := w.user("stays@example.com")
	if _, err := w.migrator().MigrateUser(w.ctx, moved, w.nodes[1].URL); err != nil {
		t.Fatal(err)
	}
	n := w.nodes[0]
	watcher := fleet.NewWatcher(w.tokens, time.Hour, nil)
	watcher.Watch(n.URL, w.shards[n.ID])
	refresh := func() {
		if err := watcher.Refresh(w.ctx); err != nil {
			t.Fatal(err)
		}
	}
	refresh()
	st := watcher.Status(strings.ToUpper(n.URL[:4]) + n.URL[4:] + "/")
	if down, backoff := st.State(); down != 0 || backoff != 0 {
		t.Errorf("up node: down %s, backoff %s", down, backoff)
	}
	if !st.Moved(moved) || st.Moved(stays) {
		t.Errorf("moved: %v (moved user), %v (staying user)", st.Moved(moved), st.Moved(stays))
	}
	if err := w.tokens.SetNodeState(w.ctx, n.ID, weave.NodeDown, 7*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	refresh()
	if down, _ := st.State(); down != 7*time.Second {
		t.Errorf("down node: Retry-After %s, want 7s", down)
	}
	if err := w.tokens.SetNodeState(w.ctx, n.ID, weave.NodeBackoff, 0, 0); err != nil {
		t.Fatal(err)
	}
	refresh()
	if down, backoff := st.State(); down != 0 || backoff != fleet.DefaultBackoff {
		t.Errorf("backoff node without its own: down %s, backoff %s", down, backoff)
	}
	if other := watcher.Status("http://unknown.example.com"); other.Moved(moved) {
		t.Error("a user moved on an unwatched node")
	}
}

// OnMoveChange hears of a user moved off, and back onto, a watched node,
// once per change.
func TestWatcherOnMoveChange(t *testing.T) {
	w := newWorld(t, backends()[0], 2)
	uid := w.user("mover@example.com")
	n := w.nodes[0]
	watcher := fleet.NewWatcher(w.tokens, time.Hour, nil)
	watcher.Watch(n.URL, w.shards[n.ID])
	var heard []int64
	watcher.OnMoveChange = func(nodeURL string, u int64) {
		if nodeURL != weave.NodeURLKey(n.URL) {
			t.Errorf("change reported for %q, want %q", nodeURL, weave.NodeURLKey(n.URL))
		}
		heard = append(heard, u)
	}
	refresh := func() {
		if err := watcher.Refresh(w.ctx); err != nil {
			t.Fatal(err)
		}
	}
	refresh()
	if len(heard) != 0 {
		t.Fatalf("changes before any move: %v", heard)
	}
	if _, err := w.migrator().MigrateUser(w.ctx, uid, w.nodes[1].URL); err != nil {
		t.Fatal(err)
	}
	refresh()
	refresh()
	if len(heard) != 1 || heard[0] != uid || watcher.MoveState(n.URL, uid) != weave.MoveMoved {
		t.Fatalf("after moving off: heard %v, state %q", heard, watcher.MoveState(n.URL, uid))
	}
	if _, err := w.migrator().MigrateUser(w.ctx, uid, n.URL); err != nil {
		t.Fatal(err)
	}
	refresh()
	if len(heard) != 2 || watcher.MoveState(n.URL, uid) != weave.MoveNone {
		t.Fatalf("after moving back: heard %v, state %q", heard, watcher.MoveState(n.URL, uid))
	}
}

// slowLister answers its first NodeStates with the old state only when
// released, later ones at once with the new state.
type slowLister struct {
	entered, release chan struct{}
	calls            atomic.Int32
}

func (l *slowLister) NodeStates(context.Context) ([]weave.Node, error) {
	n := weave.Node{URL: "http://127.0.0.1:1/n", State: weave.NodeDown}
	if l.calls.Add(1) == 1 {
		close(l.entered)
		<-l.release
		n.State = weave.NodeUp
	}
	return []weave.Node{n}, nil
}

// Refreshes that overlap publish in the order they started: a slow one
// that read older states never overwrites newer ones.
func TestWatcherRefreshesInOrder(t *testing.T) {
	l := &slowLister{entered: make(chan struct{}), release: make(chan struct{})}
	w := fleet.NewWatcher(l, time.Hour, nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.Refresh(context.Background()) }()
	<-l.entered
	go func() { defer wg.Done(); w.Refresh(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // the second would be done by now
	close(l.release)
	wg.Wait()
	if down, _ := w.Status("http://127.0.0.1:1/n").State(); down == 0 {
		t.Error("the older state was published last")
	}
}
