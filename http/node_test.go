package http

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

// stubStatus is a NodeStatus set by the test.
type stubStatus struct {
	down, backoff atomic.Int64 // time.Duration
	moved         atomic.Int64 // uid, 0: none
}

func (s *stubStatus) State() (down, backoff time.Duration) {
	return time.Duration(s.down.Load()), time.Duration(s.backoff.Load())
}

func (s *stubStatus) Moved(uid int64) bool { return uid == s.moved.Load() }

// touchStore notes whether the API reached the store.
type touchStore struct {
	weave.Store
	reached atomic.Bool
}

func (s *touchStore) CollectionTimestamps(ctx context.Context, uid int64) (map[string]weave.Timestamp, weave.Timestamp, error) {
	s.reached.Store(true)
	return s.Store.CollectionTimestamps(ctx, uid)
}

// A node in maintenance (down) answers its users 503 + Retry-After, but a
// user already moved off it gets 401 at once, so Firefox fetches a token
// for the new node instead of waiting out the maintenance. Neither reaches
// the store.
func TestNodeStatusDownAndMoved(t *testing.T) {
	st := &stubStatus{}
	var store *touchStore
	e := newEnv(t, func(c *Config) {
		store = &touchStore{Store: c.Store}
		c.Store, c.Node = store, st
	})
	moved, stays := int64(7), int64(8)
	get := func(uid int64, path string) *httptest.ResponseRecorder {
		c := e.tokenWith(tokenOpts{uid: uid})
		return e.do(req{method: "GET", path: "/1.5/" + strconv.FormatInt(uid, 10) + path, creds: &c})
	}
	st.moved.Store(moved)
	for _, path := range []string{"/info/collections", "/no/such/route"} {
		w := get(moved, path)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != "Hawk" || w.Body.String() != "0" || w.Header().Get("X-Weave-Timestamp") == "" {
			t.Errorf("moved user, %s: %d %v %q, want 401 with a Hawk challenge", path, w.Code, w.Header(), w.Body)
		}
	}
	expect(t, get(stays, "/info/collections"), 200, "")
	store.reached.Store(false)

	st.down.Store(int64(7 * time.Second))
	if w := get(moved, "/info/collections"); w.Code != 401 {
		t.Errorf("moved user on a down node: %d, want 401", w.Code)
	}
	for _, w := range []*httptest.ResponseRecorder{get(stays, "/info/collections"), e.do(req{method: "GET", path: "/1.5/x", noAuth: true})} {
		if w.Code != 503 || w.Header().Get("Retry-After") != "7" || w.Body.String() != "0" {
			t.Errorf("user of a down node: %d Retry-After %q, want 503 and 7", w.Code, w.Header().Get("Retry-After"))
		}
	}
	if store.reached.Load() {
		t.Error("a request reached the store of a down node")
	}
	st.down.Store(0)
	expect(t, get(stays, "/info/collections"), 200, "")
}

// A middleware's RouteNote learns the matched storage route.
func TestRouteNote(t *testing.T) {
	e := newEnv(t)
	for path, want := range map[string]string{
		e.u("/info/collections"):        "/1.5/{uid}/info/collections",
		e.u("/storage/tabs"):            "/1.5/{uid}/storage/{collection}",
		e.u("/storage/tabs/a%2Fb"):      "/1.5/{uid}/storage/{collection}/{id}",
		e.u(""):                         "/1.5/{uid}",
		e.u("/storage/tabs/a/b"):        "",
		"/__heartbeat__":                "",
		"/1.5/12345678901/info/collect": "",
	} {
		r := httptest.NewRequest("GET", path, nil)
		r, note := WithRouteNote(r)
		e.srv.ServeHTTP(httptest.NewRecorder(), r)
		if note.Endpoint() != want {
			t.Errorf("%s: route %q, want %q", path, note.Endpoint(), want)
		}
	}
}
