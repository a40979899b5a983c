package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/hawk"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/memcache"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/tokenlib"
)

func TestMiddlewareSeesMuxPattern(t *testing.T) {
	m := metrics.New(metrics.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "item "+r.PathValue("id"))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%d", len(b))
	})
	// A subtree handled by a handler that routes by itself, as weave's
	// storage server does: the pattern "/1.5/" says too little, so the
	// handler names the route it matched in the route note.
	mux.HandleFunc("/1.5/", func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasSuffix(p, "/info/collections"):
			weavehttp.NoteRoute(r, "/1.5/{uid}/info/collections")
			w.WriteHeader(http.StatusUnauthorized)
			return
		case strings.Count(p, "/") == 4:
			weavehttp.NoteRoute(r, "/1.5/{uid}/storage/{collection}")
		case strings.Count(p, "/") == 5:
			weavehttp.NoteRoute(r, "/1.5/{uid}/storage/{collection}/{id}")
		}
		w.Write([]byte("{}"))
	})
	var seen []string
	// Check the premise of the middleware directly: the pattern the mux
	// matched is visible to an outer handler once next returns.
	probe := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			seen = append(seen, r.Pattern)
		})
	}
	srv := httptest.NewServer(probe(m.Middleware(mux)))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on 127.0.0.1: %s", srv.URL)
	}

	do := func(method, path, body string) int {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 3; i++ {
		do("GET", fmt.Sprintf("/items/%d", 1000+i), "")
	}
	do("POST", "/upload", strings.Repeat("x", 1000))
	do("GET", "/1.5/12345/storage/bookmarks?full=1", "")
	do("GET", "/1.5/67890/storage/history/abcdefghijkl", "")
	do("GET", "/1.5/12345/info/collections", "")
	do("GET", "/no/such/thing", "")

	if seen[0] != "GET /items/{id}" {
		t.Fatalf("outer middleware saw r.Pattern %q after next returned, want %q", seen[0], "GET /items/{id}")
	}

	f := scrape(t, m)
	if v := f.get(t, "weave_http_requests_total", "endpoint=/items/{id}", "method=GET", "status=200"); v != 3 {
		t.Errorf("items requests = %v, want 3", v)
	}
	f.get(t, "weave_http_requests_total", "endpoint=/upload", "method=POST", "status=201")
	f.get(t, "weave_http_requests_total", "endpoint=/1.5/{uid}/storage/{collection}", "status=200")
	f.get(t, "weave_http_requests_total", "endpoint=/1.5/{uid}/storage/{collection}/{id}", "status=200")
	f.get(t, "weave_http_requests_total", "endpoint=/1.5/{uid}/info/collections", "status=401")
	f.get(t, "weave_http_requests_total", "endpoint=other", "status=404")
	if v := f.get(t, "weave_http_request_body_bytes_total", "endpoint=/upload"); v != 1000 {
		t.Errorf("bytes in = %v, want 1000", v)
	}
	if v := f.get(t, "weave_http_response_body_bytes_total", "endpoint=/items/{id}"); v != float64(3*len("item 1000")) {
		t.Errorf("bytes out = %v, want %d", v, 3*len("item 1000"))
	}
	if v := f.get(t, "weave_http_request_duration_seconds", "endpoint=/items/{id}", "class=2xx"); v != 3 {
		t.Errorf("latency observations = %v, want 3", v)
	}
	if v := f.get(t, "weave_http_requests_in_flight"); v != 0 {
		t.Errorf("in flight = %v after all requests ended", v)
	}
	// No raw uid, id or unknown path may become a label value.
	for _, fam := range f {
		for _, mm := range fam.GetMetric() {
			for _, lp := range mm.GetLabel() {
				for _, raw := range []string{"12345", "67890", "abcdefghijkl", "1000", "/no/such"} {
					if strings.Contains(lp.GetValue(), raw) {
						t.Errorf("%s has label %s=%q containing raw path part %q", fam.GetName(), lp.GetName(), lp.GetValue(), raw)
					}
				}
			}
		}
	}
}

func TestMiddlewarePanicAndFlush(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	mux := http.NewServeMux()
	h := m.Middleware(mux)
	hf := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/__heartbeat__" {
			// Handlers below test for http.Flusher with a type assertion.
			f, ok := w.(http.Flusher)
			if !ok {
				t.Error("middleware's writer is not an http.Flusher")
				return
			}
			f.Flush()
			return
		}
		panic(http.ErrAbortHandler)
	})
	mux.Handle("/__heartbeat__", hf)
	mux.Handle("/__version__", hf)
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/__heartbeat__")
	if err != nil {
		t.Fatal(err)
	}
	// The flushed response ends only after the middleware has recorded the
	// request; closing it unread raced the scrape below (CI, once).
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := srv.Client().Get(srv.URL + "/__version__"); err == nil {
		t.Fatal("aborted handler gave a response")
	}
	f := scrape(t, m)
	f.get(t, "weave_http_requests_total", "endpoint=/__heartbeat__", "status=200")
	f.get(t, "weave_http_requests_total", "endpoint=/__version__", "status=500")
	if v := f.get(t, "weave_http_requests_in_flight"); v != 0 {
		t.Errorf("in flight = %v after a panic", v)
	}
}

func TestObserverMethods(t *testing.T) {
	var nilM *metrics.Metrics
	// A nil *Metrics is a valid "no metrics" observer.
	nilM.TokenIssued(true)
	nilM.TokenRefused(metrics.RefusedNoNode)
	nilM.HawkFailed(metrics.HawkBadMAC)
	nilM.BatchOpened()
	nilM.BatchCommitted(1, 2)
	nilM.RecordsWritten(1, 2)
	nilM.RecordsRead(1, 2)
	nilM.Conflict(412)
	nilM.MoveResumed(true)
	nilM.CacheObserver().Lookup("primary", "GetBSO", memcache.Hit)

	m := metrics.New(metrics.Options{})
	m.TokenIssued(false)
	m.TokenIssued(true)
	m.TokenRefused(metrics.RefusedInvalidGeneration)
	m.TokenRefused("something a caller made up")
	m.HawkFailed(metrics.HawkReason(hawk.ErrBadMAC))
	m.HawkFailed(metrics.HawkReason(&hawk.StaleTimestampError{}))
	m.HawkFailed(metrics.HawkReason(&hawk.KeyLookupError{Err: fmt.Errorf("x: %w", tokenlib.ErrExpired)}))
	m.HawkFailed(metrics.HawkReason(&hawk.KeyLookupError{Err: errors.New("token is for another node")}))
	m.HawkFailed(metrics.HawkMissing)
	m.BatchOpened()
	m.BatchCommitted(150, 300_000)
	m.RecordsWritten(150, 300_000)
	m.RecordsRead(20, 4_000)
	m.Conflict(412)
	m.Conflict(503)
	m.Conflict(418)
	m.MoveResumed(true)
	m.MoveResumed(true)
	obs := m.CacheObserver()
	obs.Lookup("primary", "CollectionTimestamps", memcache.Hit)
	obs.Lookup("primary", "CollectionTimestamps", memcache.Miss)
	obs.RoundTrip("primary", "get", 300*time.Microsecond, nil)
	obs.RoundTrip("mirror", "cas", time.Millisecond, errors.New("i/o timeout"))
	obs.PoolState("mirror", false, true)

	f := scrape(t, m)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"weave_tokens_issued_total", nil, 2},
		{"weave_token_users_allocated_total", nil, 1},
		{"weave_token_refusals_total", []string{"reason=invalid-generation"}, 1},
		{"weave_token_refusals_total", []string{"reason=other"}, 1},
		{"weave_hawk_failures_total", []string{"reason=bad-mac"}, 1},
		{"weave_hawk_failures_total", []string{"reason=stale-timestamp"}, 1},
		{"weave_hawk_failures_total", []string{"reason=expired-token"}, 1},
		{"weave_hawk_failures_total", []string{"reason=token-rejected"}, 1},
		{"weave_hawk_failures_total", []string{"reason=missing"}, 1},
		{"weave_batches_opened_total", nil, 1},
		{"weave_batches_committed_total", nil, 1},
		{"weave_batch_committed_records", nil, 1},
		{"weave_batch_committed_bytes", nil, 1},
		{"weave_records_written_total", nil, 150},
		{"weave_record_bytes_written_total", nil, 300_000},
		{"weave_records_read_total", nil, 20},
		{"weave_record_bytes_read_total", nil, 4_000},
		{"weave_conflicts_total", []string{"status=412"}, 1},
		{"weave_conflicts_total", []string{"status=503"}, 1},
		{"weave_conflicts_total", []string{"status=409"}, 0},
		{"weave_conflicts_total", []string{"status=other"}, 1},
		{"weave_user_moves_resumed_total", []string{"result=finished"}, 2},
		{"weave_user_moves_resumed_total", []string{"result=failed"}, 0},
		{"weave_cache_lookups_total", []string{"outcome=hit", "pool=primary"}, 1},
		{"weave_cache_lookups_total", []string{"outcome=miss"}, 1},
		{"weave_cache_roundtrip_duration_seconds", []string{"pool=primary", "cmd=get"}, 1},
		{"weave_cache_roundtrip_errors_total", []string{"pool=mirror", "cmd=cas"}, 1},
		{"weave_cache_pool_healthy", []string{"pool=primary"}, 1},
		{"weave_cache_pool_healthy", []string{"pool=mirror"}, 0},
		{"weave_cache_pool_trusted", []string{"pool=mirror"}, 1},
	}
	for _, c := range checks {
		if got := f.get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, n := f.find("go_goroutines"); n != 1 {
		t.Error("Go runtime collector missing")
	}
	if _, n := f.find("process_cpu_seconds_total"); n != 1 {
		t.Error("process collector missing")
	}
}

func TestNodes(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true, NodePollInterval: time.Millisecond})
	var fail atomic.Bool
	err := m.WatchNodes(func(ctx context.Context) ([]weave.Node, error) {
		if fail.Load() {
			return nil, errors.New("token db down")
		}
		return []weave.Node{
			{ID: 1, URL: "https://sync1.example.com", Capacity: 1000, CurrentLoad: 120, Available: 80, State: weave.NodeUp, Users: 100},
			{ID: 2, URL: "https://sync2.example.com", Capacity: 1000, CurrentLoad: 5, Available: 0, State: weave.NodeDraining, Users: 4},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WatchNodes(func(context.Context) ([]weave.Node, error) { return nil, nil }); err == nil {
		t.Error("a second WatchNodes was accepted")
	}
	f := scrape(t, m)
	if v := f.get(t, "weave_node_users", "node=https://sync1.example.com"); v != 100 {
		t.Errorf("users = %v", v)
	}
	f.get(t, "weave_node_capacity", "node=https://sync2.example.com")
	f.get(t, "weave_node_available_slots", "node=https://sync1.example.com")
	if v := f.get(t, "weave_node_state", "node=https://sync2.example.com", "state=draining"); v != 1 {
		t.Errorf("draining state = %v", v)
	}
	if v := f.get(t, "weave_node_state", "node=https://sync2.example.com", "state=up"); v != 0 {
		t.Errorf("up state of a draining node = %v", v)
	}
	if v := f.get(t, "weave_collector_up", "collector=nodes"); v != 1 {
		t.Errorf("collector up = %v", v)
	}

	fail.Store(true)
	time.Sleep(5 * time.Millisecond)
	f = scrape(t, m)
	if v := f.get(t, "weave_collector_errors_total", "collector=nodes"); v != 1 {
		t.Errorf("collector errors = %v, want 1", v)
	}
	if v := f.get(t, "weave_collector_up", "collector=nodes"); v != 0 {
		t.Errorf("collector up = %v after a failure", v)
	}
	// The last good answer is still served until it is stale.
	f.get(t, "weave_node_users", "node=https://sync1.example.com")
}

func TestRequireToken(t *testing.T) {
	m := metrics.New(metrics.Options{})
	for _, c := range []struct {
		token, authz string
		want         int
	}{
		{"", "", http.StatusNotFound},
		{"", "Bearer anything", http.StatusNotFound},
		{"s3cret", "", http.StatusUnauthorized},
		{"s3cret", "Bearer wrong", http.StatusUnauthorized},
		{"s3cret", "Basic czNjcmV0", http.StatusUnauthorized},
		{"s3cret", "Bearer s3cret", http.StatusOK},
		{"s3cret", "bearer s3cret", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		metrics.RequireToken(c.token, m.Handler()).ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("token %q, Authorization %q: status %d, want %d", c.token, c.authz, rec.Code, c.want)
		}
		if c.want == http.StatusOK && !strings.Contains(rec.Body.String(), "weave_http_requests_in_flight") {
			t.Errorf("authorised scrape lacks weave metrics")
		}
	}
}

// TestTokenMatchTimeIndependentOfLength: how long a wrong admin token takes
// to refuse does not depend on whether its length is the secret's (a plain
// subtle.ConstantTimeCompare returns at once on a length mismatch, which
// makes the other-length refusals several times faster). The two guesses are
// timed in alternating rounds, so drift in the machine's speed (a neighbour,
// the race detector, frequency) falls on both alike, and the fastest round of
// each is compared, which scheduling noise can only slow down.
func TestTokenMatchTimeIndependentOfLength(t *testing.T) {
	secret := strings.Repeat("s", 48)
	m := metrics.NewTokenMatcher(secret)
	sameLen := strings.Repeat("x", 48)
	otherLen := strings.Repeat("x", 47)
	if !m.Match(secret) {
		t.Fatal("the token does not match itself")
	}
	timeRound := func(guess string) time.Duration {
		start := time.Now()
		for range 200 {
			if m.Match(guess) {
				t.Fatal("wrong token matched")
			}
		}
		return time.Since(start)
	}
	// measure times the two guesses in alternating rounds and keeps each
	// one's fastest. A machine busy with other tests can still slow one
	// side for a whole measurement (CI saw 1.57 once with Match as it is),
	// so the test fails only when five measurements in a row say the
	// times differ; a length check in Match makes every one of them say
	// so (ratio 2).
	measure := func() (a, b time.Duration) {
		a, b = time.Duration(1<<62), time.Duration(1<<62)
		for round := range 400 {
			if round%2 == 0 {
				a = min(a, timeRound(sameLen))
				b = min(b, timeRound(otherLen))
			} else {
				b = min(b, timeRound(otherLen))
				a = min(a, timeRound(sameLen))
			}
		}
		return a, b
	}
	var ratios []float64
	for range 5 {
		a, b := measure()
		ratio := float64(a) / float64(b)
		if ratio <= 1.5 && ratio >= 1/1.5 {
			t.Logf("same length %v, other length %v per 200 compares", a, b)
			return
		}
		ratios = append(ratios, ratio)
	}
	t.Fatalf("refusing a wrong token of the secret's length and of another length take different times, ratios %.2f in five measurements: the time reveals the length", ratios)
}

// TestLegacyObserver: 1.1 records count in the totals and in the 1.1
// share; reasons and outcomes outside the lists are "other".
func TestLegacyObserver(t *testing.T) {
	var nilM *metrics.Metrics
	nilM.LegacyObserver().RecordsWritten(1, 2)
	nilM.LegacyObserver().Signup("created")

	m := metrics.New(metrics.Options{})
	o := m.LegacyObserver()
	o.RecordsWritten(100, 5000)
	o.RecordsRead(50, 2500)
	o.AuthFailed("node")
	o.AuthFailed("made-up")
	o.Signup("created")
	o.Signup("captcha")
	f := scrape(t, m)
	for name, want := range map[string]float64{
		"weave_records_written_total":        100,
		"weave_legacy_records_written_total": 100,
		"weave_records_read_total":           50,
		"weave_legacy_records_read_total":    50,
	} {
		if got := f.get(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if f.get(t, "weave_legacy_auth_failures_total", "reason=node") != 1 || f.get(t, "weave_legacy_auth_failures_total", "reason=other") != 1 {
		t.Error("auth failure reasons")
	}
	if f.get(t, "weave_legacy_signups_total", "outcome=created") != 1 || f.get(t, "weave_legacy_signups_total", "outcome=captcha") != 1 {
		t.Error("sign-up outcomes")
	}
}

// TestPushObserver: the push service's events land in weave_push_*;
// unknown events and ops count as "other".
func TestPushObserver(t *testing.T) {
	var nilM *metrics.Metrics
	nilM.PushObserver().Connections(1)
	nilM.PushObserver().Delivered(time.Second)

	m := metrics.New(metrics.Options{})
	var o push.Observer = m.PushObserver()
	f := scrape(t, m)
	if f.get(t, "weave_push_messages_total", "event=delivered") != 0 || f.get(t, "weave_push_registrations_total", "op=register") != 0 {
		t.Fatal("push series not present from the start")
	}
	o.Connections(1)
	o.Connections(1)
	o.Connections(-1)
	o.Registration("register")
	o.Registration("register")
	o.Registration("unregister")
	o.Registration("made-up")
	o.Message("stored", 3)
	o.Message("delivered", 2)
	o.Message("expired", 1)
	o.Message("dropped", 0)
	o.Delivered(20 * time.Millisecond)
	o.Delivered(2 * time.Hour)
	f = scrape(t, m)
	for _, c := range []struct {
		name  string
		label []string
		want  float64
	}{
		{"weave_push_connections", nil, 1},
		{"weave_push_registrations_total", []string{"op=register"}, 2},
		{"weave_push_registrations_total", []string{"op=unregister"}, 1},
		{"weave_push_registrations_total", []string{"op=other"}, 1},
		{"weave_push_messages_total", []string{"event=stored"}, 3},
		{"weave_push_messages_total", []string{"event=delivered"}, 2},
		{"weave_push_messages_total", []string{"event=expired"}, 1},
		{"weave_push_messages_total", []string{"event=dropped"}, 0},
		{"weave_push_delivery_seconds", nil, 2},
	} {
		if got := f.get(t, c.name, c.label...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.label, got, c.want)
		}
	}
}
