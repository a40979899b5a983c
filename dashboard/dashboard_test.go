package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/dashboard"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/memcache"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

const token = "test-admin-token-0123456789"

func get(t testing.TB, h http.Handler, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestDisabledWithoutToken(t *testing.T) {
	h := dashboard.Handler(dashboard.Options{Metrics: metrics.New(metrics.Options{})})
	for _, target := range []string{"/__dashboard__", "/__dashboard__/", "/__dashboard__/api/series", "/__dashboard__/?token=", "/__dashboard__/?token=x"} {
		if rec := get(t, h, target, "Authorization", "Bearer "); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s on a dashboard without token: %d, want 404", target, rec.Code)
		}
	}
}

func TestAuth(t *testing.T) {
	m := metrics.New(metrics.Options{})
	h := dashboard.Handler(dashboard.Options{Token: token, Metrics: m, Context: t.Context()})

	for _, c := range []struct {
		target string
		hdr    []string
		want   int
	}{
		{"/__dashboard__/", nil, http.StatusUnauthorized},
		{"/__dashboard__/api/series", nil, http.StatusUnauthorized},
		{"/__dashboard__/app.js", nil, http.StatusUnauthorized},
		{"/__dashboard__/", []string{"Authorization", "Bearer wrong"}, http.StatusUnauthorized},
		{"/__dashboard__/", []string{"Authorization", "Bearer " + token + "x"}, http.StatusUnauthorized},
		{"/__dashboard__/", []string{"Authorization", "Basic " + token}, http.StatusUnauthorized},
		{"/__dashboard__/?token=wrong", nil, http.StatusUnauthorized},
		{"/__dashboard__/?token=", nil, http.StatusUnauthorized},
		{"/__dashboard__/", []string{"Cookie", "weave_dashboard=" + token}, http.StatusUnauthorized},
		// A wrong token is refused even next to a right one.
		{"/__dashboard__/?token=wrong", []string{"Authorization", "Bearer " + token}, http.StatusUnauthorized},
		{"/__dashboard__/", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"/__dashboard__/api/series", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"/__dashboard__/app.js", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"/__dashboard__/style.css", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"/__dashboard__/nope", []string{"Authorization", "Bearer " + token}, http.StatusNotFound},
		{"/__dashboardx", []string{"Authorization", "Bearer " + token}, http.StatusNotFound},
		{"/__dashboard__", []string{"Authorization", "Bearer " + token}, http.StatusFound},
		{"/__dashboard__/?token=" + token, nil, http.StatusOK},
	} {
		rec := get(t, h, c.target, c.hdr...)
		if rec.Code != c.want {
			t.Errorf("GET %s %v: %d, want %d", c.target, c.hdr, rec.Code, c.want)
		}
		if rec.Code == http.StatusUnauthorized && rec.Header().Get("Set-Cookie") != "" {
			t.Errorf("GET %s %v: 401 sets a cookie", c.target, c.hdr)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: missing protective headers: %v", c.target, rec.Header())
		}
	}

	rec := get(t, h, "/__dashboard__/app.js", "Authorization", "Bearer "+token)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js Content-Type %q", ct)
	}
	req := httptest.NewRequest("POST", "/__dashboard__/api/series", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}

// The browser flow: ?token= once, then the cookie carries the session.
func TestCookieFlow(t *testing.T) {
	m := metrics.New(metrics.Options{})
	mux := http.NewServeMux()
	h := dashboard.Handler(dashboard.Options{Token: token, Metrics: m, Context: t.Context()})
	mux.Handle("/__dashboard__", h)
	mux.Handle("/__dashboard__/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}

	resp, err := client.Get(srv.URL + "/__dashboard__/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "app.js") {
		t.Fatalf("page with ?token=: %d %.200s", resp.StatusCode, body)
	}
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "weave_dashboard" {
			c = ck
		}
	}
	switch {
	case c == nil:
		t.Fatalf("no session cookie; Set-Cookie: %q", resp.Header.Values("Set-Cookie"))
	case !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/__dashboard__":
		t.Errorf("cookie %q: want HttpOnly, SameSite=Strict, Path=/__dashboard__", resp.Header.Get("Set-Cookie"))
	case strings.Contains(c.Value, token):
		t.Errorf("the cookie holds the admin token itself")
	}

	for _, p := range []string{"/__dashboard__/api/series", "/__dashboard__/app.js", "/__dashboard__/"} {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the cookie: %d", p, resp.StatusCode)
		}
	}
	// The cookie is for the dashboard only, and without it: 401.
	resp, err = http.Get(srv.URL + "/__dashboard__/api/series")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no cookie: %d, want 401", resp.StatusCode)
	}
}

// fleet is a test server with weave's metrics wired as cmd/weave would:
// the middleware around everything, a storage-like handler, the dashboard,
// a watched SQLite database, a node list and cache events.
type fleet struct {
	srv     *httptest.Server
	m       *metrics.Metrics
	stop    chan struct{}
	wg      sync.WaitGroup
	extraDB func() // optional load on other databases
}

func newFleet(t *testing.T, interval time.Duration) *fleet {
	t.Helper()
	m := metrics.New(metrics.Options{PollInterval: interval, NodePollInterval: interval})
	path := filepath.Join(t.TempDir(), "storage.db")
	db, err := sqlite.Open(context.Background(), "sqlite://"+path, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Write.Exec("CREATE TABLE bso (id INTEGER PRIMARY KEY, payload TEXT)"); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchDB(metrics.Database{Name: "storage", Kind: "sqlite", Read: db.Read, Write: db.Write, Path: path}); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchNodes(func(context.Context) ([]weave.Node, error) {
		return []weave.Node{
			{URL: "https://sync-1.example.net", Capacity: 50000, CurrentLoad: 31250, Available: 900, State: weave.NodeUp, Users: 31000},
			{URL: "https://sync-2.example.net", Capacity: 50000, CurrentLoad: 18020, Available: 0, State: weave.NodeDraining, Users: 17500},
			{URL: "https://sync-3.example.net", Capacity: 20000, CurrentLoad: 4000, Available: 0, State: weave.NodeBackoff, Users: 3900},
		}, nil
	}); err != nil {
		t.Fatal(err)
	}

	cache := m.CacheObserver()
	mux := http.NewServeMux()
	// A stand-in for the storage server: it routes by itself under /1.5/
	// and names the route it served, as the real one does.
	mux.HandleFunc("/1.5/", func(w http.ResponseWriter, r *http.Request) {
		weavehttp.NoteRoute(r, "/1.5/{uid}/storage/{collection}")
		cache.Lookup("primary", "CollectionTimestamps", []memcache.Outcome{memcache.Hit, memcache.Hit, memcache.Hit, memcache.Miss}[rand.IntN(4)])
		cache.RoundTrip("primary", "get", time.Duration(200+rand.IntN(400))*time.Microsecond, nil)
		time.Sleep(time.Duration(rand.IntN(8)) * time.Millisecond)
		switch {
		case strings.Contains(r.URL.Path, "/missing"):
			http.Error(w, "0", http.StatusNotFound)
		case strings.Contains(r.URL.Path, "/boom"):
			http.Error(w, "0", http.StatusServiceUnavailable)
			m.Conflict(http.StatusServiceUnavailable)
		case r.Method == http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			if _, err := db.Write.Exec("INSERT INTO bso (payload) VALUES (?)", string(b)); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if rand.IntN(4) == 0 {
				// Every fourth upload stands for a whole batch.
				m.BatchOpened()
				m.BatchCommitted(20, int64(20*len(b)))
				m.RecordsWritten(20, int64(20*len(b)))
			} else {
				m.RecordsWritten(1, int64(len(b)))
			}
			w.Write([]byte(`{"success":["a"]}`))
		default:
			var n int
			db.Read.QueryRow("SELECT COUNT(*) FROM bso").Scan(&n)
			m.RecordsRead(n%50, int64(n%50)*200)
			fmt.Fprintf(w, `{"count":%d}`, n)
		}
	})
	// A stand-in for the 1.1 front end.
	legacy := m.LegacyObserver()
	mux.HandleFunc("/1.1/", func(w http.ResponseWriter, r *http.Request) {
		weavehttp.NoteRoute(r, "/1.1/{user}/storage/{collection}")
		legacy.RecordsWritten(3, 300)
		w.Write([]byte("1700000000.00"))
	})
	// A stand-in for the push endpoint: each POST is a message stored and
	// delivered over one of three open connections.
	push := m.PushObserver()
	var pushOnce sync.Once
	mux.HandleFunc("/wpush/", func(w http.ResponseWriter, r *http.Request) {
		pushOnce.Do(func() {
			push.Connections(3)
			push.Registration("register")
		})
		push.Message("stored", 1)
		push.Message("delivered", 1)
		push.Delivered(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /1.0/sync/1.5", func(w http.ResponseWriter, r *http.Request) {
		m.TokenIssued(rand.IntN(10) == 0)
		w.Write([]byte("{}"))
	})
	h := dashboard.Handler(dashboard.Options{Token: token, Metrics: m, Interval: interval, Context: t.Context()})
	mux.Handle("/__dashboard__", h)
	mux.Handle("/__dashboard__/", h)
	f := &fleet{srv: httptest.NewServer(m.Middleware(mux)), m: m, stop: make(chan struct{})}
	t.Cleanup(f.close)
	return f
}

// traffic sends a Firefox-like mix of requests until close.
func (f *fleet) traffic(workers int) {
	for w := 0; w < workers; w++ {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			paths := []string{
				"/1.5/%d/info/collections", "/1.5/%d/info/collections", "/1.5/%d/storage/bookmarks",
				"/1.5/%d/storage/history", "/1.5/%d/storage/tabs/missing", "/1.5/%d/storage/boom",
				"/1.5/%d/storage/meta/global",
			}
			for {
				select {
				case <-f.stop:
					return
				default:
				}
				uid := 1000 + rand.IntN(500)
				var resp *http.Response
				var err error
				switch r := rand.IntN(20); {
				case r < 3:
					resp, err = http.Post(fmt.Sprintf(f.srv.URL+"/1.5/%d/storage/history", uid), "application/json",
						strings.NewReader(strings.Repeat("x", 100+rand.IntN(2000))))
				case r == 3:
					resp, err = http.Get(f.srv.URL + "/1.0/sync/1.5")
				case r == 4:
					resp, err = http.Post(f.srv.URL+"/1.1/joe/storage/history", "application/json", strings.NewReader("[]"))
				case r == 5:
					resp, err = http.Post(f.srv.URL+"/wpush/v1/token", "", nil)
				default:
					resp, err = http.Get(fmt.Sprintf(f.srv.URL+paths[rand.IntN(len(paths))], uid))
				}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if f.extraDB != nil && rand.IntN(10) == 0 {
					f.extraDB()
				}
				time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
			}
		}()
	}
}

func (f *fleet) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.wg.Wait()
	f.srv.Close()
}

// series reads the dashboard's series API.
func (f *fleet) series(t *testing.T) seriesResponse {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+"/__dashboard__/api/series", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("series API: %d", resp.StatusCode)
	}
	var s seriesResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

type seriesResponse struct {
	T        []int64         `json:"t"`
	Sections []seriesSection `json:"sections"`
	Nodes    []struct {
		Node  string  `json:"node"`
		State string  `json:"state"`
		Users float64 `json:"users"`
	} `json:"nodes"`
	Databases []struct {
		DB   string `json:"db"`
		Kind string `json:"kind"`
		Up   *bool  `json:"up"`
	} `json:"databases"`
	Endpoints []struct {
		Endpoint string   `json:"endpoint"`
		Rate     float64  `json:"rate"`
		P95      *float64 `json:"p95_ms"`
	} `json:"endpoints"`
}

type seriesSection struct {
	Title  string `json:"title"`
	Charts []struct {
		ID    string `json:"id"`
		Unit  string `json:"unit"`
		Lines []struct {
			Name   string     `json:"name"`
			Values []*float64 `json:"values"`
		} `json:"lines"`
	} `json:"charts"`
}

// line returns the non-null values of a chart line.
func (s *seriesResponse) line(chart, line string) ([]float64, bool) {
	for _, sec := range s.Sections {
		for _, c := range sec.Charts {
			if c.ID != chart {
				continue
			}
			for _, l := range c.Lines {
				if l.Name == line {
					var out []float64
					for _, v := range l.Values {
						if v != nil {
							out = append(out, *v)
						}
					}
					return out, true
				}
			}
		}
	}
	return nil, false
}

func TestSeriesAfterTraffic(t *testing.T) {
	f := newFleet(t, 50*time.Millisecond)
	f.traffic(4)

	// Rare events (one request in twenty asks for a token) need a moment
	// on a slow machine: wait until every line has moved, then check.
	wanted := [][2]string{
		{"traffic.requests", "all"}, {"traffic.errors", "4xx"}, {"traffic.errors", "5xx"},
		{"traffic.latency", "p50"}, {"traffic.latency", "p99"}, {"traffic.bytes", "in"},
		{"sync.records", "written"}, {"sync.batches", "committed"}, {"sync.auth", "tokens issued"},
		{"sync.conflicts", "503"}, {"cache.hit", "hit"}, {"nodes.users", "https://sync-1.example.net"},
		{"db.storage.size", "database"}, {"sync.legacy", "requests"}, {"sync.legacy", "written"},
		{"push.connections", "open"}, {"push.messages", "stored"}, {"push.messages", "delivered"}, {"push.latency", "p99"},
	}
	var s seriesResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s = f.series(t)
		moved := len(s.T) >= 5
		for _, w := range wanted {
			vals, _ := s.line(w[0], w[1])
			moved = moved && slices.ContainsFunc(vals, func(v float64) bool { return v > 0 })
		}
		if moved || time.Now().After(deadline) {
			break
		}
	}
	if len(s.T) < 5 {
		t.Fatalf("%d samples", len(s.T))
	}
	positive := func(chart, line string) {
		t.Helper()
		vals, ok := s.line(chart, line)
		if !ok {
			t.Errorf("no line %s/%s", chart, line)
			return
		}
		if !slices.ContainsFunc(vals, func(v float64) bool { return v > 0 }) {
			t.Errorf("line %s/%s never above 0: %v", chart, line, vals)
		}
	}
	for _, w := range wanted {
		positive(w[0], w[1])
	}
	if open, _ := s.line("push.connections", "open"); len(open) == 0 || open[len(open)-1] != 3 {
		t.Errorf("push connections %v, want 3 at the end", open)
	}
	if p99, _ := s.line("push.latency", "p99"); len(p99) > 0 && p99[len(p99)-1] > 50 {
		t.Errorf("push p99 %v ms: every delivery took < 25 ms", p99[len(p99)-1])
	}
	if p99, _ := s.line("traffic.latency", "p99"); len(p99) > 0 && p99[len(p99)-1] > 1000 {
		t.Errorf("p99 %v ms: implausible for handlers sleeping < 8 ms", p99[len(p99)-1])
	}
	// Three lookups in four hit; single intervals hold few lookups, so
	// the mean is what must come close.
	if hit, _ := s.line("cache.hit", "hit"); len(hit) > 0 {
		mean := 0.0
		for _, v := range hit {
			mean += v / float64(len(hit))
		}
		if mean < 40 || mean > 100 {
			t.Errorf("cache hit rate averages %.1f %%, want about 75: %v", mean, hit)
		}
	}
	// The dashboard's own polling is not traffic.
	for _, e := range s.Endpoints {
		if strings.HasPrefix(e.Endpoint, "/__dashboard__") {
			t.Errorf("endpoints table lists the dashboard itself")
		}
	}
	found := false
	for _, e := range s.Endpoints {
		if e.Endpoint == "/1.5/{uid}/storage/{collection}" && e.Rate > 0 && e.P95 != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("endpoints table lacks /1.5/{uid}/storage/{collection}: %+v", s.Endpoints)
	}
	if len(s.Nodes) != 3 || s.Nodes[1].State != "draining" || s.Nodes[0].Users != 31000 {
		t.Errorf("nodes table: %+v", s.Nodes)
	}
	if len(s.Databases) != 1 || s.Databases[0].Kind != "sqlite" || s.Databases[0].Up == nil || !*s.Databases[0].Up {
		t.Errorf("databases table: %+v", s.Databases)
	}
}

// TestPushSectionOnlyWithPush: a process that never served push (its
// weave_push_* families exist all the same) shows no Push section; the
// first connection brings it.
func TestPushSectionOnlyWithPush(t *testing.T) {
	f := newFleet(t, 20*time.Millisecond)
	hasPush := func(s seriesResponse) bool {
		return slices.ContainsFunc(s.Sections, func(sec seriesSection) bool {
			return sec.Title == "Push"
		})
	}
	var s seriesResponse
	for deadline := time.Now().Add(10 * time.Second); len(s.T) < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s = f.series(t)
	}
	if len(s.T) < 3 || hasPush(s) {
		t.Fatalf("%d samples, push section %v before any push", len(s.T), hasPush(s))
	}
	f.m.PushObserver().Connections(1)
	for deadline := time.Now().Add(10 * time.Second); !hasPush(s) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s = f.series(t)
	}
	if open, _ := s.line("push.connections", "open"); len(open) == 0 || open[len(open)-1] != 1 {
		t.Fatalf("push connections %v after one connection", open)
	}
}
