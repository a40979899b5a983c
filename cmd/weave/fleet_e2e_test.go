package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/fxa/issuer"
	"github.com/weave-sync/weave/internal/testkit"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// fleetEnv is one `weave serve` serving two nodes (its own at /, and /n2
// on a shard of its own) over a shared token database, all SQLite.
type fleetEnv struct {
	t             *testing.T
	dir, addr     string
	tokens, store string // database URLs
	shard2        string
	node1, node2  string // node URLs
	srv           *server
}

func sqliteURL(path string) string { return "sqlite://" + filepath.ToSlash(path) }

// weave runs a command in-process and returns its stdout.
func (e *fleetEnv) weave(args ...string) string {
	e.t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		e.t.Fatalf("weave %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

func (e *fleetEnv) db() []string {
	return []string{"--token-database-url", e.tokens}
}

func newFleetEnv(t *testing.T) *fleetEnv {
	dir := t.TempDir()
	e := &fleetEnv{t: t, dir: dir, addr: testkit.FreeAddr(t)}
	e.tokens = sqliteURL(filepath.Join(dir, "tokens.db"))
	e.store = sqliteURL(filepath.Join(dir, "node1.db"))
	e.shard2 = sqliteURL(filepath.Join(dir, "node2.db"))
	e.node1 = "http://" + e.addr
	e.node2 = "http://" + e.addr + "/n2"
	out := e.weave("node", "add", e.node2, "--database-url", e.shard2, "--capacity", "50", "--token-database-url", e.tokens)
	if !strings.Contains(out, "added node") {
		t.Fatalf("node add: %s", out)
	}
	// New users go to node 1 until node 2 is opened.
	e.weave("node", "set-state", e.node2, "draining", "--token-database-url", e.tokens)

	iss := issuer.New()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, iss.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	serveMain(t, io.Discard, "--listen", e.addr, "--data-dir", filepath.Join(dir, "data"),
		"--fxa-jwks-file", jwks, "--fxa-oauth-url", "http://127.0.0.1:1", "--shutdown-grace", "0s", "--log-level", "warn",
		"--database-url", e.store, "--token-database-url", e.tokens, "--nodes", "all", "--state-refresh", "100ms")
	e.srv = &server{base: e.node1, issuer: iss, stdout: &syncBuffer{}}
	return e
}

func TestFleetServe(t *testing.T) {
	e := newFleetEnv(t)
	a := e.srv.client(t, "aaaa0000000000000000000000000001")
	b := e.srv.client(t, "bbbb0000000000000000000000000002")
	if !strings.HasPrefix(a.token.APIEndpoint, e.node1+"/1.5/") {
		t.Fatalf("user a on %s", a.token.APIEndpoint)
	}
	for i := range 20 {
		a.must(200, "PUT", fmt.Sprintf("/storage/bookmarks/b%02d", i), map[string]any{"payload": fmt.Sprintf("bm %d", i), "sortindex": i, "ttl": 100000})
	}
	a.must(200, "PUT", "/storage/meta/global", map[string]any{"payload": "meta"})
	b.must(200, "PUT", "/storage/meta/global", map[string]any{"payload": "b meta"})
	var before map[string]float64
	a.must(200, "GET", "/info/collections", nil).json(t, &before)

	t.Run("node states", func(t *testing.T) {
		e.weave("node", "set-state", e.node1, "down", "--retry-after", "7", "--token-database-url", e.tokens)
		took := testkit.Eventually(t, 5*time.Second, "down takes effect", func() bool {
			r := a.do("GET", "/info/collections", nil)
			return r.status == 503 && r.header.Get("Retry-After") == "7"
		})
		t.Logf("down took effect in %s", took)
		// The token server keeps handing out the node to its users.
		e.weave("node", "set-state", e.node1, "backoff", "--backoff", "11", "--token-database-url", e.tokens)
		testkit.Eventually(t, 5*time.Second, "backoff takes effect", func() bool {
			r := a.do("GET", "/info/collections", nil)
			return r.status == 200 && r.header.Get("X-Weave-Backoff") == "11"
		})
		e.weave("node", "set-state", e.node1, "up", "--token-database-url", e.tokens)
		testkit.Eventually(t, 5*time.Second, "up takes effect", func() bool {
			r := a.do("GET", "/info/collections", nil)
			return r.status == 200 && r.header.Get("X-Weave-Backoff") == ""
		})
		out := e.weave(append([]string{"node", "list"}, e.db()...)...)
		for _, want := range []string{e.node1, e.node2, "draining", "ok ("} {
			if !strings.Contains(out, want) {
				t.Errorf("node list lacks %q:\n%s", want, out)
			}
		}
		t.Logf("node list:\n%s", out)
	})

	t.Run("lock refuses only that user's writes", func(t *testing.T) {
		st, err := sqlstore.OpenStore(context.Background(), e.store, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.LockUser(context.Background(), a.token.UID, "test"); err != nil {
			t.Fatal(err)
		}
		r := a.do("PUT", "/storage/tabs/t1", map[string]any{"payload": "x"})
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("locked user's write: %d %v", r.status, r.header)
		}
		a.must(200, "GET", "/storage/bookmarks/b01", nil)
		b.must(200, "PUT", "/storage/tabs/t1", map[string]any{"payload": "x"})
		if err := st.UnlockUser(context.Background(), a.token.UID); err != nil {
			t.Fatal(err)
		}
		a.must(200, "PUT", "/storage/tabs/t1", map[string]any{"payload": "x"})
		a.must(200, "DELETE", "/storage/tabs", nil)
	})

	t.Run("migrate", func(t *testing.T) {
		e.weave("node", "set-state", e.node2, "up", "--token-database-url", e.tokens)
		out := e.weave(append([]string{"user", "migrate", fmt.Sprint(a.token.UID), "--to", e.node2, "--settle", "300ms"}, e.db()...)...)
		if !strings.Contains(out, "moved uid") {
			t.Fatalf("migrate: %s", out)
		}
		t.Log(strings.TrimSpace(out))
		// The old token now gets 401; a new token leads to node 2.
		testkit.Eventually(t, 5*time.Second, "old node answers 401", func() bool { return a.do("GET", "/info/collections", nil).status == 401 })
		a.fetchToken()
		if want := fmt.Sprintf("%s/1.5/%d", e.node2, a.token.UID); a.token.APIEndpoint != want {
			t.Fatalf("after the move the token names %s, want %s", a.token.APIEndpoint, want)
		}
		var after map[string]float64
		a.must(200, "GET", "/info/collections", nil).json(t, &after)
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("collections after the move %v, before %v", after, before)
		}
		var ids []string
		a.must(200, "GET", "/storage/bookmarks?sort=index", nil).json(t, &ids)
		if len(ids) != 20 || ids[0] != "b19" {
			t.Errorf("bookmarks after the move: %v", ids)
		}
		a.must(200, "PUT", "/storage/tabs/t2", map[string]any{"payload": "on node 2"})
		// The other user never noticed.
		b.must(200, "GET", "/storage/meta/global", nil)
		out = e.weave(append([]string{"user", "show", fmt.Sprint(a.token.UID)}, e.db()...)...)
		for _, want := range []string{e.node2, "bookmarks", "20 records"} {
			if !strings.Contains(out, want) {
				t.Errorf("user show lacks %q:\n%s", want, out)
			}
		}
		email := ""
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "email" {
				email = f[1]
			}
		}
		if !strings.HasPrefix(email, "aaaa0000000000000000000000000001@") {
			t.Fatalf("user show: no email in\n%s", out)
		}
		if byEmail := e.weave(append([]string{"user", "show", email}, e.db()...)...); byEmail != out {
			t.Errorf("user show by email differs:\n%s\nvs\n%s", byEmail, out)
		}
		// Node 2 has its own states.
		e.weave("node", "set-state", e.node2, "down", "--retry-after", "9", "--token-database-url", e.tokens)
		testkit.Eventually(t, 5*time.Second, "node 2 down", func() bool {
			r := a.do("GET", "/info/collections", nil)
			return r.status == 503 && r.header.Get("Retry-After") == "9"
		})
		b.must(200, "GET", "/storage/meta/global", nil)
		e.weave("node", "set-state", e.node2, "up", "--token-database-url", e.tokens)
		testkit.Eventually(t, 5*time.Second, "node 2 up", func() bool { return a.do("GET", "/info/collections", nil).status == 200 })
	})

	t.Run("drain", func(t *testing.T) {
		out := e.weave(append([]string{"node", "drain", e.node1, "--settle", "300ms"}, e.db()...)...)
		if !strings.Contains(out, "1 users moved, 0 failed") {
			t.Fatalf("drain: %s", out)
		}
		testkit.Eventually(t, 5*time.Second, "b gets 401 on node 1", func() bool { return b.do("GET", "/storage/meta/global", nil).status == 401 })
		b.fetchToken()
		if !strings.HasPrefix(b.token.APIEndpoint, e.node2+"/") {
			t.Fatalf("b on %s after drain", b.token.APIEndpoint)
		}
		r := b.must(200, "GET", "/storage/meta/global", nil)
		if !bytes.Contains(r.body, []byte("b meta")) {
			t.Errorf("b's meta/global after drain: %s", r.body)
		}
		// A new user can only land on node 2 now.
		c := e.srv.client(t, "cccc0000000000000000000000000003")
		if !strings.HasPrefix(c.token.APIEndpoint, e.node2+"/") {
			t.Errorf("new user on %s while node 1 drains", c.token.APIEndpoint)
		}
	})

	t.Run("delete", func(t *testing.T) {
		e.weave(append([]string{"user", "delete", fmt.Sprint(b.token.UID), "--yes"}, e.db()...)...)
		testkit.Eventually(t, 5*time.Second, "deleted user gets 401", func() bool { return b.do("GET", "/info/collections", nil).status == 401 })
		old := b.token.UID
		b.fetchToken()
		if b.token.UID == old {
			t.Fatalf("same uid after delete")
		}
		var colls map[string]float64
		b.must(200, "GET", "/info/collections", nil).json(t, &colls)
		if len(colls) != 0 {
			t.Errorf("new uid has data: %v", colls)
		}
	})
}

// TestFleetServeNewNode: a process serving --nodes all starts serving a node
// added after its start, within a state refresh, without a restart.
func TestFleetServeNewNode(t *testing.T) {
	e := newFleetEnv(t)
	a := e.srv.client(t, "cccc0000000000000000000000000003")
	a.must(200, "PUT", "/storage/bookmarks/b1", map[string]any{"payload": "kept"})
	node3 := "http://" + e.addr + "/n3"
	shard3 := sqliteURL(filepath.Join(e.dir, "node3.db"))
	e.weave("node", "add", node3, "--database-url", shard3, "--capacity", "50", "--token-database-url", e.tokens)
	// Its heartbeat under its prefix answers 200 only once the node's own
	// server is routed (until then the process's own node gets the path).
	testkit.Eventually(t, 5*time.Second, "the new node is served", func() bool {
		resp, err := http.Get(node3 + "/__heartbeat__")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	out := e.weave(append([]string{"user", "migrate", fmt.Sprint(a.token.UID), "--to", node3, "--settle", "300ms"}, e.db()...)...)
	if !strings.Contains(out, "moved uid") {
		t.Fatalf("migrate: %s", out)
	}
	testkit.Eventually(t, 5*time.Second, "old node answers 401", func() bool { return a.do("GET", "/info/collections", nil).status == 401 })
	a.fetchToken()
	if want := fmt.Sprintf("%s/1.5/%d", node3, a.token.UID); a.token.APIEndpoint != want {
		t.Fatalf("after the move the token names %s, want %s", a.token.APIEndpoint, want)
	}
	var b map[string]any
	a.must(200, "GET", "/storage/bookmarks/b1", nil).json(t, &b)
	if b["payload"] != "kept" {
		t.Errorf("record on the new node: %v", b)
	}
}
