package http

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

// client signs requests to a real listener the way Firefox does.
type client struct {
	t    testing.TB
	base *url.URL
	c    creds
	http *http.Client
}

// do sends a signed request. It is safe in any goroutine: failures are
// reported with Errorf and a nil response.
func (c *client) do(method, path, body string) (*http.Response, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, c.base.String()+path, rd)
	if err != nil {
		c.t.Errorf("new request: %v", err)
		return nil, nil
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Authorization", signHawk(c.c, method, path, c.base.Hostname(), c.base.Port(), time.Now(), "", ""))
	resp, err := c.http.Do(r)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Errorf("%s %s: reading body: %v", method, path, err)
		return nil, nil
	}
	return resp, b
}

// startServer runs the handler on a 127.0.0.1 listener.
func startServer(t testing.TB, opts ...func(*Config)) (*env, *client) {
	t.Helper()
	return startServerOn(t, nil, opts...)
}

// startServerOn is startServer with the listener wrapped by wrap (if not
// nil), for a test that watches the server's connections.
func startServerOn(t testing.TB, wrap func(net.Listener) net.Listener, opts ...func(*Config)) (*env, *client) {
	t.Helper()
	e := newEnv(t, append([]func(*Config){func(c *Config) { c.PublicURL = "" }}, opts...)...)
	hs := httptest.NewUnstartedServer(e.srv)
	if wrap != nil {
		hs.Listener = wrap(hs.Listener)
	}
	hs.Start()
	t.Cleanup(hs.Close)
	base, _ := url.Parse(hs.URL)
	c := e.tokenWith(tokenOpts{node: hs.URL})
	return e, &client{t: t, base: base, c: c, http: hs.Client()}
}

func TestConcurrentPosts(t *testing.T) {
	e, cl := startServer(t)
	const workers, perWorker, recs = 8, 12, 5
	type ok struct {
		ts  weave.Timestamp
		ids []string
	}
	var (
		mu       sync.Mutex
		oks      []ok
		statuses = map[int]int{}
	)
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last weave.Timestamp
			for i := 0; i < perWorker; i++ {
				var items []string
				var ids []string
				for k := 0; k < recs; k++ {
					id := fmt.Sprintf("g%d-%d-%d", g, i, k)
					ids = append(ids, id)
					items = append(items, fmt.Sprintf(`{"id":%q,"payload":"payload of %s"}`, id, id))
				}
				resp, body := cl.do("POST", e.u("/storage/history"), "["+strings.Join(items, ",")+"]")
				if resp == nil {
					return
				}
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
				switch resp.StatusCode {
				case http.StatusOK:
					var res postOut
					if err := json.Unmarshal(body, &res); err != nil {
						t.Errorf("body %q: %v", body, err)
						return
					}
					T, err := weave.ParseTimestamp(resp.Header.Get("X-Last-Modified"))
					if err != nil || weave.Timestamp(res.Modified*1000+0.5) != T {
						t.Errorf("X-Last-Modified %q vs modified %v", resp.Header.Get("X-Last-Modified"), res.Modified)
					}
					if T <= last {
						t.Errorf("worker %d: timestamp %s not after %s", g, T, last)
					}
					last = T
					if !slices.Equal(res.Success, ids) {
						t.Errorf("success %v, want %v", res.Success, ids)
					}
					mu.Lock()
					oks = append(oks, ok{T, ids})
					mu.Unlock()
				case http.StatusServiceUnavailable:
					// A conflict the store could not serialise: allowed, must
					// carry Retry-After.
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
				default:
					t.Errorf("status %d body %q", resp.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("statuses: %v", statuses)
	if len(oks) == 0 {
		t.Fatal("no write succeeded")
	}
	// Every write got its own timestamp: strictly increasing per user.
	seen := map[weave.Timestamp]bool{}
	for _, o := range oks {
		if seen[o.ts] {
			t.Errorf("timestamp %s given to two writes", o.ts)
		}
		seen[o.ts] = true
	}
	// Every acknowledged record is there, with its write's timestamp.
	resp, body := cl.do("GET", e.u("/storage/history?full=1"), "")
	if resp == nil || resp.StatusCode != 200 {
		t.Fatalf("GET failed")
	}
	var all []bsoOut
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatal(err)
	}
	stored := map[string]weave.Timestamp{}
	for _, b := range all {
		stored[b.ID] = weave.Timestamp(b.Modified*1000 + 0.5)
	}
	var maxT weave.Timestamp
	for _, o := range oks {
		maxT = max(maxT, o.ts)
		for _, id := range o.ids {
			if got, ok := stored[id]; !ok || got != o.ts {
				t.Errorf("record %s: stored %v (present %v), acknowledged at %s", id, got, ok, o.ts)
			}
		}
	}
	if lm, _ := weave.ParseTimestamp(resp.Header.Get("X-Last-Modified")); lm != maxT {
		t.Errorf("collection X-Last-Modified %s, want latest write %s", lm, maxT)
	}
	if len(all) != len(oks)*recs {
		t.Errorf("%d records stored, %d acknowledged", len(all), len(oks)*recs)
	}
}
