package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

// lockedStore is the real store behind a decorator that refuses one user,
// the way the fleet layer will answer for a user being migrated or a node
// marked down.
type lockedStore struct {
	weave.Store
	uid int64
	err error
}

func (s lockedStore) CollectionTimestamps(ctx context.Context, uid int64) (map[string]weave.Timestamp, weave.Timestamp, error) {
	if uid == s.uid {
		return nil, 0, s.err
	}
	return s.Store.CollectionTimestamps(ctx, uid)
}

func (s lockedStore) PostBSOs(ctx context.Context, uid int64, coll string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	if uid == s.uid {
		return 0, s.err
	}
	return s.Store.PostBSOs(ctx, uid, coll, us, pre)
}

func TestStoreErrorMapping(t *testing.T) {
	for _, c := range []struct {
		name       string
		err        error
		status     int
		retryAfter string
		body       string
	}{
		{"user locked for migration", &weave.UnavailableError{Reason: "migrating", RetryAfter: 90 * time.Second}, 503, "90", "0"},
		{"node down without hint", &weave.UnavailableError{Reason: "node down"}, 503, "30", "0"},
		{"database unavailable", fmt.Errorf("dial: %w", weave.ErrUnavailable), 503, "30", "0"},
		{"storage full", fmt.Errorf("%w: database or disk is full (13)", weave.ErrStorageFull), 503, "30", "0"},
		{"write conflict", fmt.Errorf("lock timeout: %w", weave.ErrConflict), 503, "10", "0"},
		{"unexpected error", fmt.Errorf("disk on fire"), 503, "30", "0"},
		{"over quota", weave.ErrOverQuota, 400, "", "14"},
		{"too large for the database", fmt.Errorf("%w: max_allowed_packet", weave.ErrTooLarge), 413, "", "17"},
		{"timeout", context.DeadlineExceeded, 503, "30", "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := newEnv(t, func(cfg *Config) {
				cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			e.srv.store = lockedStore{Store: e.store, uid: e.uid, err: c.err}
			for _, w := range []struct{ method, path, body string }{
				{"GET", e.u("/info/collections"), ""},
				{"POST", e.u("/storage/tabs"), `[{"id":"a","payload":"x"}]`},
			} {
				rec := e.do(req{method: w.method, path: w.path, body: w.body})
				expect(t, rec, c.status, c.body)
				if got := rec.Header().Get("Retry-After"); got != c.retryAfter {
					t.Errorf("%s: Retry-After %q, want %q", w.method, got, c.retryAfter)
				}
			}
			// Other users are unaffected.
			other := e.tokenWith(tokenOpts{uid: 7})
			expect(t, e.do(req{method: "GET", path: "/1.5/7/info/collections", creds: &other}), 200, "{}")
			if c.name == "unexpected error" && !strings.Contains(logs.String(), "disk on fire") {
				t.Errorf("unexpected error not logged: %s", logs.String())
			}
			if c.name == "storage full" {
				// One clear line for the operator, not one per request.
				if n := strings.Count(logs.String(), "database storage full"); n != 1 {
					t.Errorf("%d storage-full log lines for two refused requests, want 1: %s", n, logs.String())
				}
			}
		})
	}
}

func TestRequestLog(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	c := e.token()
	secretPayload := "very-secret-payload"
	expect(t, e.do(req{method: "PUT", path: e.u("/storage/passwords/p?x=sensitive"), body: `{"payload":"` + secretPayload + `"}`, creds: &c}), 200, "")
	expect(t, e.do(req{method: "GET", path: e.u("/storage/passwords/zz"), creds: &c}), 404, "0")
	expect401(t, e.do(req{method: "GET", path: e.u("/storage/passwords"), noAuth: true}))

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want one per request:\n%s", len(lines), logs.String())
	}
	for _, forbidden := range []string{c.id, c.key, secretPayload, "Hawk", "sensitive"} {
		if strings.Contains(logs.String(), forbidden) {
			t.Errorf("log contains %q", forbidden)
		}
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"method": "PUT", "path": e.u("/storage/passwords/p"), "status": float64(200), "uid": float64(42)} {
		if first[k] != want {
			t.Errorf("log %s = %v, want %v (line %s)", k, first[k], want, lines[0])
		}
	}
	if first["bytes_in"].(float64) == 0 || first["bytes_out"].(float64) == 0 || first["duration"] == nil {
		t.Errorf("log line lacks sizes or duration: %s", lines[0])
	}
	if !strings.Contains(lines[2], `"status":401`) || !strings.Contains(lines[2], `"err":`) {
		t.Errorf("401 line: %s", lines[2])
	}
}

func TestPanicBecomes503(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	e.mountTokens(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := e.do(req{method: "GET", path: "/1.0/sync/1.5", noAuth: true})
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("panic gave %d %v", w.Code, w.Header())
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged")
	}
}

func TestTokenCacheGenerations(t *testing.T) {
	e := newEnv(t)
	e.srv.tokens = newTokenCache(2)
	var cs []creds
	for uid := int64(1); uid <= 5; uid++ {
		cs = append(cs, e.tokenWith(tokenOpts{uid: uid}))
	}
	for round := 0; round < 2; round++ {
		for i, c := range cs {
			expect(t, e.do(req{method: "GET", path: fmt.Sprintf("/1.5/%d/info/collections", i+1), creds: &c}), 200, "")
		}
	}
	if n := len(e.srv.tokens.cur) + len(e.srv.tokens.old); n > 4 {
		t.Errorf("cache holds %d entries, bound is 4", n)
	}
}

func TestBackoffHeader(t *testing.T) {
	st := &stubStatus{}
	e := newEnv(t, func(c *Config) { c.Node = st })
	w := e.get(e.u("/info/collections"))
	if w.Header().Get("X-Weave-Backoff") != "" {
		t.Fatalf("backoff header while not backing off")
	}
	st.backoff.Store(int64(1500 * time.Millisecond))
	for _, w := range []*httptest.ResponseRecorder{e.get(e.u("/info/collections")), e.get(e.u("/storage/x/missing"))} {
		if got := w.Header().Get("X-Weave-Backoff"); got != "2" {
			t.Errorf("X-Weave-Backoff %q on %d", got, w.Code)
		}
	}
}
