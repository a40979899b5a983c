package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/weave-sync/weave/fxa/issuer"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/tokenserver"
)

// These tests run the real `weave serve` in-process: a stand-in FxA issuer
// whose key is published in a JWKS file, the real token server, real Hawk
// and each real database.

type backendCase struct {
	name  string
	url   func(t *testing.T) string
	extra func(t *testing.T) []string // more serve flags
}

func backendCases() []backendCase {
	none := func(*testing.T) []string { return nil }
	return []backendCase{
		{"sqlite", func(t *testing.T) string { return "" }, none},
		{"mysql", func(t *testing.T) string { return dbtest.MySQL(t) }, none},
		{"postgres", func(t *testing.T) string { return dbtest.Postgres(t) }, none},
		{"mysql+memcache", func(t *testing.T) string { return dbtest.MySQL(t) },
			func(t *testing.T) []string { return []string{"--memcache", testkit.StartMemcached(t).Addr()} }},
	}
}

type server struct {
	base   string
	issuer *issuer.Issuer
	stdout *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `weave serve` with extra flags until the test ends.
func startServer(t *testing.T, databaseURL string, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	iss := issuer.New()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, iss.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testkit.FreeAddr(t)
	args := []string{"--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--fxa-jwks-file", jwks, "--fxa-oauth-url", "http://127.0.0.1:1", "--shutdown-grace", "0s", "--log-level", "warn"}
	if databaseURL != "" {
		args = append(args, "--database-url", databaseURL)
	}
	args = append(args, extra...)
	out := &syncBuffer{}
	serveMain(t, out, args...)
	return &server{base: "http://" + addr, issuer: iss, stdout: out}
}

// serveMain runs `weave serve` in this process with args (its flags)
// until the test ends; it returns once the server answers.
func serveMain(t *testing.T, stdout io.Writer, args ...string) *Main {
	t.Helper()
	m := NewMain(stdout, io.Discard)
	if err := m.ParseFlags(args); err != nil {
		t.Fatalf("weave serve %q: %v", args, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("weave serve: close: %v", err)
		}
	})
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("weave serve: %v", err)
	}
	resp, err := http.Get("http://" + m.Addr().String() + "/__heartbeat__")
	if err != nil {
		t.Fatalf("weave serve not answering: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("weave serve not healthy: %d", resp.StatusCode)
	}
	return m
}

// syncClient is what Firefox does: a token from the token server, then
// Hawk-signed storage requests.
type syncClient struct {
	t        *testing.T
	srv      *server
	fxaUID   string
	token    tokenResponse
	clientSt string
}

type tokenResponse struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	UID         int64  `json:"uid"`
	APIEndpoint string `json:"api_endpoint"`
	Duration    int    `json:"duration"`
	HashAlg     string `json:"hashalg"`
}

func (s *server) client(t *testing.T, fxaUID string) *syncClient {
	c := &syncClient{t: t, srv: s, fxaUID: fxaUID, clientSt: "0123456789abcdef0123456789abcdef"}
	c.fetchToken()
	return c
}

func (c *syncClient) fetchToken() {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.srv.base+"/1.0/sync/1.5", nil)
	req.Header.Set("Authorization", "Bearer "+c.srv.issuer.Mint(issuer.Token{Sub: c.fxaUID, Generation: 1}))
	req.Header.Set("X-KeyID", "1700000000000-ASNFZ4mrze8BI0VniavN7w")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("token server: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &c.token); err != nil {
		c.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (c *syncClient) do(method, path string, body any, headers ...string) response {
	c.t.Helper()
	r, err := testkit.HawkDo(nil, c.token.Key, c.token.ID, method, c.token.APIEndpoint+path, body, headers...)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{r.Status, r.Header, r.Body}
}

func (c *syncClient) must(status int, method, path string, body any, headers ...string) response {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, status, r.body)
	}
	if r.header.Get("X-Weave-Timestamp") == "" {
		c.t.Fatalf("%s %s: no X-Weave-Timestamp", method, path)
	}
	return r
}

func TestServeEndToEnd(t *testing.T) {
	for _, bc := range backendCases() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, bc.url(t), bc.extra(t)...)
			if !strings.Contains(srv.stdout.String(), "identity.sync.tokenserver.uri = "+srv.base+"/1.0/sync/1.5") {
				t.Errorf("startup output lacks the about:config value:\n%s", srv.stdout)
			}
			t.Run("sync session", func(t *testing.T) { testSyncSession(t, srv) })
			t.Run("concurrent writers", func(t *testing.T) { testConcurrentWriters(t, srv) })
		})
	}
}

func testSyncSession(t *testing.T, srv *server) {
	c := srv.client(t, "a1b2c3d4e5f60718293a4b5c6d7e8f90")
	if c.token.APIEndpoint != fmt.Sprintf("%s/1.5/%d", srv.base, c.token.UID) || c.token.HashAlg != "sha256" {
		t.Fatalf("token response %+v", c.token)
	}
	var colls map[string]float64
	c.must(200, "GET", "/info/collections", nil).json(t, &colls)
	if len(colls) != 0 {
		t.Fatalf("new user has collections %v", colls)
	}
	c.must(404, "GET", "/storage/meta/global", nil)
	put := c.must(200, "PUT", "/storage/meta/global", map[string]any{"payload": `{"syncID":"abc","storageVersion":5}`})
	if put.header.Get("X-Last-Modified") != strings.TrimSpace(string(put.body)) {
		t.Fatalf("PUT: X-Last-Modified %q vs body %q", put.header.Get("X-Last-Modified"), put.body)
	}

	records := []map[string]any{}
	for i := 0; i < 5; i++ {
		records = append(records, map[string]any{"id": fmt.Sprintf("bookmark%04d", i), "payload": strings.Repeat("x", 100+i), "sortindex": i})
	}
	var post struct {
		Modified float64           `json:"modified"`
		Success  []string          `json:"success"`
		Failed   map[string]string `json:"failed"`
	}
	c.must(200, "POST", "/storage/bookmarks", records).json(t, &post)
	if len(post.Success) != 5 || len(post.Failed) != 0 {
		t.Fatalf("POST result %+v", post)
	}
	var ids []string
	get := c.must(200, "GET", "/storage/bookmarks?sort=index", nil)
	get.json(t, &ids)
	if strings.Join(ids, ",") != "bookmark0004,bookmark0003,bookmark0002,bookmark0001,bookmark0000" || get.header.Get("X-Weave-Records") != "5" {
		t.Fatalf("GET ids %v (X-Weave-Records %s)", ids, get.header.Get("X-Weave-Records"))
	}

	// Batch upload: two appends, then commit; visible only after commit.
	var open struct {
		Batch string `json:"batch"`
	}
	lm := get.header.Get("X-Last-Modified")
	c.must(202, "POST", "/storage/history?batch=true", []map[string]any{{"id": "h1", "payload": "one"}}).json(t, &open)
	c.must(202, "POST", "/storage/history?batch="+open.Batch, []map[string]any{{"id": "h2", "payload": "two"}})
	var hist []string
	c.must(200, "GET", "/storage/history", nil).json(t, &hist)
	if len(hist) != 0 {
		t.Fatalf("uncommitted batch visible: %v", hist)
	}
	c.must(200, "POST", "/storage/history?commit=true&batch="+open.Batch, []map[string]any{{"id": "h3", "payload": "three"}})
	c.must(200, "GET", "/storage/history", nil).json(t, &hist)
	if len(hist) != 3 {
		t.Fatalf("committed batch: %v", hist)
	}

	// Conditional requests.
	c.must(412, "POST", "/storage/bookmarks", []map[string]any{{"id": "late", "payload": "x"}}, "X-If-Unmodified-Since", "1.00")
	c.must(304, "GET", "/storage/bookmarks", nil, "X-If-Modified-Since", lm)

	// A second token for the same account lands on the same uid and data.
	c2 := srv.client(t, c.fxaUID)
	if c2.token.UID != c.token.UID {
		t.Fatalf("second token uid %d, first %d", c2.token.UID, c.token.UID)
	}
	var bso struct {
		ID      string  `json:"id"`
		Payload string  `json:"payload"`
		Mod     float64 `json:"modified"`
	}
	c2.must(200, "GET", "/storage/bookmarks/bookmark0002", nil).json(t, &bso)
	if bso.Payload != strings.Repeat("x", 102) {
		t.Fatalf("record read back %+v", bso)
	}

	// Bad input: a clear status and weave code, nothing written.
	r := c.must(400, "POST", "/storage/bookmarks", map[string]any{"not": "a list"})
	if string(r.body) != "8" && string(r.body) != "6" {
		t.Fatalf("bad POST body: %s", r.body)
	}
	c.must(400, "GET", "/storage/bookmarks?newer=yesterday", nil)

	// Delete everything.
	c.must(200, "DELETE", "", nil)
	c.must(200, "GET", "/info/collections", nil).json(t, &colls)
	if len(colls) != 0 {
		t.Fatalf("after DELETE storage: %v", colls)
	}
}

// testConcurrentWriters runs several Firefox-like clients of one account
// writing to one collection at once: every acknowledged record must be
// there afterwards and no request may fail with a server error.
func testConcurrentWriters(t *testing.T, srv *server) {
	const writers, posts = 6, 8
	base := srv.client(t, "feedfacefeedfacefeedfacefeedface")
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	stamps := map[string]bool{}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &syncClient{t: t, srv: srv, fxaUID: base.fxaUID, token: base.token}
			for p := 0; p < posts; p++ {
				id := fmt.Sprintf("w%d-p%d", w, p)
				r := c.do("POST", "/storage/tabs", []map[string]any{{"id": id, "payload": id}})
				if r.status != 200 {
					if r.status == 503 && r.header.Get("Retry-After") != "" {
						continue // a conflict the client retries later: allowed, nothing acknowledged
					}
					t.Errorf("writer %d: status %d %s", w, r.status, r.body)
					return
				}
				mu.Lock()
				acked[id] = true
				lm := r.header.Get("X-Last-Modified")
				if stamps[lm] {
					t.Errorf("timestamp %s given to two writes", lm)
				}
				stamps[lm] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var ids []string
	base.must(200, "GET", "/storage/tabs", nil).json(t, &ids)
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	for id := range acked {
		if !have[id] {
			t.Errorf("acknowledged record %s lost", id)
		}
	}
	if len(acked) < writers*posts/2 {
		t.Errorf("only %d of %d writes acknowledged", len(acked), writers*posts)
	}
}

func TestCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "weave ") {
		t.Fatalf("version: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"serve", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("serve --help exited %d", code)
	}
	for _, want := range []string{"--listen", "WEAVE_LISTEN", "--public-url", "--data-dir", "--database-url", "WEAVE_DATABASE_URL", "--master-secret", "--fxa-jwks-file", "--fxa-oauth-url"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("serve --help lacks %s", want)
		}
	}
	errb.Reset()
	if code := run(context.Background(), []string{"nonsense"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errb.String())
	}

	dir := t.TempDir()
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"db", "status", "--data-dir", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "pending") {
		t.Fatalf("db status on a new database: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"db", "migrate", "--data-dir", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "up to date") {
		t.Fatalf("db migrate: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"db", "purge", "--data-dir", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "purged 0") {
		t.Fatalf("db purge: %d %q %q", code, out.String(), errb.String())
	}
	// Environment variables set flags.
	t.Setenv("WEAVE_DATABASE_URL", "oracle://nope")
	errb.Reset()
	if code := run(context.Background(), []string{"db", "status"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "unsupported database URL") {
		t.Fatalf("WEAVE_DATABASE_URL not honoured: %d %q", code, errb.String())
	}
}

func TestMasterSecretKeptInDataDir(t *testing.T) {
	dir := t.TempDir()
	s1, err := tokenserver.MasterSecret("", dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := tokenserver.MasterSecret("", dir)
	if err != nil || s1 != s2 || len(s1) != 64 {
		t.Fatalf("secret not stable: %q %q %v", s1, s2, err)
	}
	st, err := os.Stat(filepath.Join(dir, "master-secret"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master-secret mode %v, %v", st.Mode().Perm(), err)
	}
	if s, _ := tokenserver.MasterSecret("given", dir); s != "given" {
		t.Fatalf("configured secret ignored: %q", s)
	}
	_ = strconv.Itoa
}
