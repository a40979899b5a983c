package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave/fxa/issuer"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/testkit"
)

// TestFleetCacheMoveBackAndForth: two `weave serve` processes (one in this
// test process, one the weave binary) serve the same two nodes with
// --memcache on one memcached, and a user is moved to the second node and
// back while a reader on each process keeps reading. Process A has node 1 as
// its own node, process B serves it as one of --nodes all, so the two agree
// on the node's cache keys only if every node is built the same way. No read
// that starts after a write was acknowledged may show older data: not the
// meta/global record, not its timestamp in info/collections, not the count
// of records (all three cached).
func TestFleetCacheMoveBackAndForth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts weave processes")
	}
	for _, bc := range []struct {
		name  string
		shard func(t *testing.T, dir string, i int) string
	}{
		{"sqlite", func(t *testing.T, dir string, i int) string {
			return sqliteURL(filepath.Join(dir, fmt.Sprintf("node%d.db", i)))
		}},
		{"mysql", func(t *testing.T, _ string, _ int) string { return dbtest.MySQL(t) }},
		{"postgres", func(t *testing.T, _ string, _ int) string { return dbtest.Postgres(t) }},
	} {
		t.Run(bc.name, func(t *testing.T) { testFleetCacheMoves(t, bc.shard) })
	}
}

// moveClient is a Sync client of one user, safe for concurrent use, that
// reaches every node URL through the process listening at dial.
type moveClient struct {
	iss    *issuer.Issuer
	tokens string // token server URL
	fxaUID string
	http   *http.Client

	mu    sync.Mutex
	token tokenResponse
}

func newMoveClient(iss *issuer.Issuer, tokens, fxaUID, dial string) *moveClient {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, dial)
	}}
	return &moveClient{iss: iss, tokens: tokens, fxaUID: fxaUID, http: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

func (c *moveClient) fetchToken() error {
	req, _ := http.NewRequest("GET", c.tokens+"/1.0/sync/1.5", nil)
	req.Header.Set("Authorization", "Bearer "+c.iss.Mint(issuer.Token{Sub: c.fxaUID, Generation: 1}))
	req.Header.Set("X-KeyID", "1700000000000-ASNFZ4mrze8BI0VniavN7w")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("token server: %d %s", resp.StatusCode, body)
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return err
	}
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return nil
}

// do sends one request, fetching a new token on 401 and retrying on 503
// (a locked user) for up to 20 s. It returns the node the answer came from.
func (c *moveClient) do(method, path string, body any) (response, string, error) {
	for deadline := time.Now().Add(20 * time.Second); ; {
		c.mu.Lock()
		tok := c.token
		c.mu.Unlock()
		hr, err := testkit.HawkDo(c.http, tok.Key, tok.ID, method, tok.APIEndpoint+path, body)
		if err != nil {
			return response{}, "", err
		}
		r := response{hr.Status, hr.Header, hr.Body}
		switch {
		case time.Now().After(deadline):
			return r, "", fmt.Errorf("%s %s: still %d after 20 s: %s", method, path, r.status, r.body)
		case r.status == 401:
			if err := c.fetchToken(); err != nil {
				return r, "", err
			}
		case r.status == 503:
			time.Sleep(20 * time.Millisecond)
		default:
			return r, strings.TrimSuffix(tok.APIEndpoint, fmt.Sprintf("/1.5/%d", tok.UID)), nil
		}
	}
}

// floor is what the writer had acknowledged: version n of meta/global,
// written at ts, with n bookmarks.
type floor struct {
	n  int
	ts float64
}

func testFleetCacheMoves(t *testing.T, shard func(t *testing.T, dir string, i int) string) {
	dir := t.TempDir()
	mc := testkit.StartMemcached(t).Addr()
	e := &fleetEnv{t: t, dir: dir, addr: testkit.FreeAddr(t)}
	addrB := testkit.FreeAddr(t)
	e.tokens = sqliteURL(filepath.Join(dir, "tokens.db"))
	e.node1, e.node2 = "http://"+e.addr, "http://"+e.addr+"/n2"
	node3 := "http://" + addrB
	db1, db3 := shard(t, dir, 1), shard(t, dir, 3)
	for _, n := range []struct{ url, db string }{{e.node2, shard(t, dir, 2)}, {node3, db3}} {
		e.weave("node", "add", n.url, "--database-url", n.db, "--token-database-url", e.tokens)
		// New users go to node 1.
		e.weave("node", "set-state", n.url, "draining", "--token-database-url", e.tokens)
	}
	iss := issuer.New()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, iss.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--data-dir", filepath.Join(dir, "data"), "--fxa-jwks-file", jwks, "--fxa-oauth-url", "http://127.0.0.1:1",
		"--shutdown-grace", "0s", "--log-level", "warn", "--token-database-url", e.tokens, "--nodes", "all",
		"--state-refresh", "100ms", "--memcache", mc}

	// Process A, in this test process: node 1 is its own.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", e.addr, "--database-url", db1}, common...), io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("weave serve did not stop")
		}
	})
	waitHealthy(t, e.node1, done)
	// Process B, the weave binary: node 3 is its own, nodes 1 and 2 are
	// among --nodes all. It shares A's data directory, so its master
	// secret.
	startWeave(t, append([]string{"serve", "--listen", addrB, "--database-url", db3}, common...)...)
	waitHealthy(t, node3+"/n2", nil)

	writer := newMoveClient(iss, e.node1, "dddd0000000000000000000000000004", e.addr)
	if err := writer.fetchToken(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(writer.token.APIEndpoint, e.node1+"/1.5/") {
		t.Fatalf("user on %s, want node 1", writer.token.APIEndpoint)
	}
	uid := writer.token.UID
	var acked atomic.Pointer[floor]
	acked.Store(&floor{})
	version := 0
	write := func(k int) {
		t.Helper()
		for range k {
			version++
			if r, _, err := writer.do("POST", "/storage/bookmarks", []map[string]any{{"id": fmt.Sprintf("b%03d", version), "payload": "bm"}}); err != nil || r.status != 200 {
				t.Fatalf("POST bookmark %d: %v %d %s", version, err, r.status, r.body)
			}
			r, _, err := writer.do("PUT", "/storage/meta/global", map[string]any{"payload": fmt.Sprintf(`{"v":%d}`, version)})
			if err != nil || r.status != 200 {
				t.Fatalf("PUT meta/global %d: %v %d %s", version, err, r.status, r.body)
			}
			var ts float64
			if err := json.Unmarshal(r.body, &ts); err != nil {
				t.Fatalf("PUT meta/global: %s", r.body)
			}
			acked.Store(&floor{n: version, ts: ts})
			time.Sleep(10 * time.Millisecond)
		}
	}

	// The readers: one through each process.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stale []string
	reads := map[string]int{} // "process node" → good reads
	for _, via := range []struct{ name, addr string }{{"A", e.addr}, {"B", addrB}} {
		rc := newMoveClient(iss, e.node1, "dddd0000000000000000000000000004", via.addr)
		if err := rc.fetchToken(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			bad := func(format string, args ...any) {
				mu.Lock()
				stale = append(stale, via.name+": "+fmt.Sprintf(format, args...))
				mu.Unlock()
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				f := acked.Load()
				var colls map[string]float64
				r, node, err := rc.do("GET", "/info/collections", nil)
				if err != nil || r.status != 200 || json.Unmarshal(r.body, &colls) != nil {
					bad("info/collections: %v %d %s", err, r.status, r.body)
					return
				}
				if colls["meta"] < f.ts {
					bad("info/collections on %s: meta %.2f, older than the acknowledged %.2f (v%d)", node, colls["meta"], f.ts, f.n)
				}
				var counts map[string]int
				r, _, err = rc.do("GET", "/info/collection_counts", nil)
				if err != nil || r.status != 200 || json.Unmarshal(r.body, &counts) != nil {
					bad("info/collection_counts: %v %d %s", err, r.status, r.body)
					return
				}
				if counts["bookmarks"] < f.n {
					bad("collection_counts on %s: %d bookmarks, %d acknowledged", node, counts["bookmarks"], f.n)
				}
				r, node, err = rc.do("GET", "/storage/meta/global", nil)
				if f.n == 0 && r.status == 404 {
					continue
				}
				var rec struct {
					Payload  string  `json:"payload"`
					Modified float64 `json:"modified"`
				}
				var p struct {
					V int `json:"v"`
				}
				if err != nil || r.status != 200 || json.Unmarshal(r.body, &rec) != nil || json.Unmarshal([]byte(rec.Payload), &p) != nil {
					bad("meta/global: %v %d %s", err, r.status, r.body)
					return
				}
				if p.V < f.n || rec.Modified < f.ts {
					bad("meta/global on %s: v%d at %.2f, older than the acknowledged v%d at %.2f", node, p.V, rec.Modified, f.n, f.ts)
				}
				mu.Lock()
				reads[via.name+" "+node]++
				mu.Unlock()
			}
		}()
	}
	migrate := func(to string) {
		t.Helper()
		out := e.weave("user", "migrate", fmt.Sprint(uid), "--to", to, "--settle", "300ms", "--token-database-url", e.tokens)
		if !strings.Contains(out, "moved uid") {
			t.Fatalf("migrate: %s", out)
		}
	}
	pause := func() { time.Sleep(500 * time.Millisecond) } // readers fill the caches
	write(5)
	pause()
	e.weave("node", "set-state", e.node2, "up", "--token-database-url", e.tokens)
	migrate(e.node2)
	write(5)
	pause()
	migrate(e.node1)
	write(5)
	pause()
	close(stop)
	wg.Wait()
	if len(stale) > 0 {
		t.Errorf("%d stale or failed reads, the first:\n%s", len(stale), strings.Join(stale[:min(len(stale), 10)], "\n"))
	}
	t.Logf("good reads by process and node: %v", reads)
	for _, p := range []string{"A", "B"} {
		for _, n := range []string{e.node1, e.node2} {
			if reads[p+" "+n] == 0 {
				t.Errorf("no read through process %s reached %s", p, n)
			}
		}
	}
}

// waitHealthy waits until url's heartbeat answers 200 (done: the serving
// goroutine's exit, or nil).
func waitHealthy(t *testing.T, url string, done <-chan int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(30 * time.Millisecond) {
		resp, err := http.Get(url + "/__heartbeat__")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case code := <-done:
			t.Fatalf("weave serve exited with %d", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 30 s: %v", url, err)
		}
	}
}
