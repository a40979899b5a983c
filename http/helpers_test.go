package http

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

const testSecret = "test-node-secret-0123456789"

// clock is the shared test clock: real time plus an adjustable offset, so
// that timestamps still advance (the store needs strictly increasing write
// times) while tests can jump ahead to expire tokens and batches.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// openStore opens a fresh SQLite store in a temporary directory.
func openStore(t testing.TB, now func() time.Time) weave.Store {
	t.Helper()
	return openStoreWith(t, now, sqlstore.PoolOptions{})
}

// openStoreWith is openStore with pool options (a test that needs a longer
// database Timeout than the default 10 s).
func openStoreWith(t testing.TB, now func() time.Time, o sqlstore.PoolOptions) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.OpenStore(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "storage.db"), o, true, sqlstore.StoreOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// env is a storage node over a real SQLite store, driven in-process.
type env struct {
	t     testing.TB
	store weave.Store
	srv   *Server
	clock *clock
	cfg   Config
	uid   int64
	// tokens, when set, is served at /1.0/ beside the node.
	tokens http.Handler
}

// mountTokens serves ts at /1.0/ beside the node, below its prefix or
// not, as weave's route table does.
func (e *env) mountTokens(ts http.Handler) { e.tokens = ts }

// handler serves the env's requests.
func (e *env) handler() http.Handler {
	if e.tokens == nil {
		return e.srv
	}
	tokens := e.srv.Mount(e.tokens)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; strings.HasPrefix(p, "/1.0/") || strings.HasPrefix(p, e.srv.prefix+"/1.0/") {
			tokens.ServeHTTP(w, r)
			return
		}
		e.srv.ServeHTTP(w, r)
	})
}

func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	c := &clock{}
	st := openStore(t, c.Now)
	cfg := Config{
		Store:     st,
		Limits:    weave.DefaultLimits(),
		PublicURL: "http://127.0.0.1:8000",
		Secrets:   []string{testSecret},
		Now:       c.Now,
		Version:   "1.2.3",
		Commit:    "abc123",
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// cfg.Store: an option may have replaced the store.
	return &env{t: t, store: cfg.Store, srv: srv, clock: c, cfg: cfg, uid: 42}
}

// creds are a token id and its Hawk key.
type creds struct{ id, key string }

type tokenOpts struct {
	uid     int64
	node    string
	expires time.Time
	secret  string
}

// token mints credentials for e.uid on this node, valid for an hour.
func (e *env) token() creds {
	return e.tokenWith(tokenOpts{})
}

func (e *env) tokenWith(o tokenOpts) creds {
	if o.uid == 0 {
		o.uid = e.uid
	}
	if o.node == "" {
		o.node = e.cfg.PublicURL
	}
	if o.expires.IsZero() {
		o.expires = e.clock.Now().Add(time.Hour)
	}
	if o.secret == "" {
		o.secret = testSecret
	}
	return mintToken(e.t, o)
}

// req describes a test request.
type req struct {
	method, path string
	body         string
	hdr          map[string]string
	creds        *creds // nil: e.token()
	noAuth       bool
	hash         bool // sign a payload hash
	ts           time.Time
	nonce        string
	host         string // Host header / signing host override
	signHost     string
	signPort     string
	signPath     string
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.host != "" {
		hr.Host = r.host
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	if !r.noAuth {
		c := r.creds
		if c == nil {
			t := e.token()
			c = &t
		}
		host, port := "127.0.0.1", "8000"
		if r.signHost != "" {
			host = r.signHost
		}
		if r.signPort != "" {
			port = r.signPort
		}
		target := r.path
		if r.signPath != "" {
			target = r.signPath
		}
		ts := r.ts
		if ts.IsZero() {
			ts = e.clock.Now()
		}
		hash := ""
		if r.hash {
			hash = payloadHash(hr.Header.Get("Content-Type"), []byte(r.body))
		}
		hr.Header.Set("Authorization", signHawk(*c, r.method, target, host, port, ts, r.nonce, hash))
	}
	w := httptest.NewRecorder()
	e.handler().ServeHTTP(w, hr)
	return w
}

// get/put/post/del are shorthands for authenticated requests.
func (e *env) get(path string, hdr ...string) *httptest.ResponseRecorder {
	return e.do(req{method: "GET", path: path, hdr: pairs(hdr)})
}

func (e *env) put(path, body string, hdr ...string) *httptest.ResponseRecorder {
	return e.do(req{method: "PUT", path: path, body: body, hdr: pairs(hdr)})
}

func (e *env) post(path, body string, hdr ...string) *httptest.ResponseRecorder {
	return e.do(req{method: "POST", path: path, body: body, hdr: pairs(hdr)})
}

func (e *env) del(path string, hdr ...string) *httptest.ResponseRecorder {
	return e.do(req{method: "DELETE", path: path, hdr: pairs(hdr)})
}

func pairs(kv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// u prefixes a path with this user's endpoint.
func (e *env) u(path string) string {
	return "/1.5/" + strconv.FormatInt(e.uid, 10) + path
}

// expect checks a response's status and, when wantBody is not "", its body.
func expect(t testing.TB, w *httptest.ResponseRecorder, status int, wantBody string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %q", w.Code, status, w.Body.String())
	}
	if wantBody != "" && strings.TrimSpace(w.Body.String()) != wantBody {
		t.Fatalf("body %q, want %q", w.Body.String(), wantBody)
	}
	if w.Header().Get("X-Weave-Timestamp") == "" && w.Code != http.StatusNotModified {
		t.Fatalf("no X-Weave-Timestamp on %d", w.Code)
	}
}

// decode unmarshals a JSON response body.
func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
	return v
}

func ts(t testing.TB, s string) weave.Timestamp {
	t.Helper()
	v, err := weave.ParseTimestamp(s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return v
}
