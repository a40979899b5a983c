package fleet_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
)

// A node in maintenance (down) answers its users 503 + Retry-After, but a
// user already moved off it gets 401 at once, so Firefox fetches a token
// for the new node instead of waiting out the maintenance.
func TestNodeGuardDownAndMoved(t *testing.T) {
	w := newWorld(t, backends()[0], 2)
	moved := w.user("moved@example.com")
	stays := w.user("stays@example.com")
	if _, err := w.migrator().MigrateUser(w.ctx, moved, w.nodes[1].URL); err != nil {
		t.Fatal(err)
	}
	n := w.nodes[0]
	if err := w.tokens.SetNodeState(w.ctx, n.ID, weave.NodeDown, 7*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	watcher := fleet.NewWatcher(w.tokens, time.Hour, nil)
	watcher.Watch(n.URL, w.shards[n.ID])
	if err := watcher.Refresh(w.ctx); err != nil {
		t.Fatal(err)
	}
	reached := false
	guard := fleet.NewNodeGuard(n.URL, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }), watcher)
	get := func(uid int64) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		guard.ServeHTTP(rec, httptest.NewRequest("GET", n.URL+"/1.5/"+strconv.FormatInt(uid, 10)+"/info/collections", nil))
		return rec
	}
	if rec := get(moved); rec.Code != 401 {
		t.Errorf("moved user on a down node: %d, want 401", rec.Code)
	}
	if rec := get(stays); rec.Code != 503 || rec.Header().Get("Retry-After") != "7" {
		t.Errorf("user of a down node: %d Retry-After %q, want 503 and 7", rec.Code, rec.Header().Get("Retry-After"))
	}
	if reached {
		t.Error("a request reached the storage API of a down node")
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
		if nodeURL != fleet.NormalizeURL(n.URL) {
			t.Errorf("change reported for %q, want %q", nodeURL, fleet.NormalizeURL(n.URL))
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
