package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/loadtest"
	"github.com/weave-sync/weave/sqlstore"
)

// outageProxy sits between the simulated clients and weave, and measures
// per user how long they saw 503s: from a user's first 503 to their next
// storage response that is not a 503.
type outageProxy struct {
	next  http.Handler
	mu    sync.Mutex
	since map[int64]time.Time
	worst map[int64]time.Duration
	count map[int64]int
}

func (p *outageProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	p.next.ServeHTTP(rec, r)
	_, rest, ok := strings.Cut(r.URL.Path, "/1.5/")
	if !ok {
		return
	}
	uidText, _, _ := strings.Cut(rest, "/")
	uid, err := strconv.ParseInt(uidText, 10, 64)
	if err != nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if rec.status == http.StatusServiceUnavailable {
		p.count[uid]++
		if _, ok := p.since[uid]; !ok {
			p.since[uid] = now
		}
		return
	}
	if t, ok := p.since[uid]; ok {
		delete(p.since, uid)
		if d := now.Sub(t); d > p.worst[uid] {
			p.worst[uid] = d
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// TestFleetDrill is the drill of issue 4 on three SQLite shards behind one
// token server: simulated Firefox clients sync continuously (loadtest in
// verify mode) while shard 1 is drained into shards 2 and 3, marked down,
// brought back up, and some users are moved back to it. Every acknowledged
// record must be readable afterwards, nothing duplicated, and no user may
// see 503s for more than 5 seconds.
func TestFleetDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("drill")
	}
	for _, bc := range []struct {
		name  string
		shard func(t *testing.T, dir string, i int) string
	}{
		{"sqlite", func(t *testing.T, dir string, i int) string {
			return sqliteURL(filepath.Join(dir, fmt.Sprintf("node%d.db", i)))
		}},
		{"mysql", func(t *testing.T, _ string, _ int) string { return dbtest.MySQL(t) }},
	} {
		t.Run(bc.name, func(t *testing.T) { runDrill(t, bc.shard) })
	}
}

func runDrill(t *testing.T, shard func(t *testing.T, dir string, i int) string) {
	dir := t.TempDir()
	keyFile, jwksFile, err := loadtest.Keygen(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Clients talk to the proxy; weave's public URL is the proxy's.
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + proxyLn.Addr().String()
	backend := testkit.FreeAddr(t)
	target, _ := url.Parse("http://" + backend)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // weave is not up for the first requests
	proxy := &outageProxy{next: rp,
		since: map[int64]time.Time{}, worst: map[int64]time.Duration{}, count: map[int64]int{}}
	hs := &http.Server{Handler: proxy}
	go hs.Serve(proxyLn)
	t.Cleanup(func() { hs.Close() })

	e := &fleetEnv{t: t, dir: dir}
	e.tokens = sqliteURL(filepath.Join(dir, "tokens.db"))
	node := []string{public, public + "/n2", public + "/n3"}
	for i, u := range node[1:] {
		e.weave("node", "add", u, "--database-url", shard(t, dir, i+2), "--token-database-url", e.tokens)
	}
	// A start migrates three shards: serveMain waits for it.
	serveMain(t, io.Discard, "--listen", backend, "--public-url", public, "--data-dir", filepath.Join(dir, "data"),
		"--fxa-jwks-file", jwksFile, "--fxa-oauth-url", "http://127.0.0.1:1", "--shutdown-grace", "0s", "--log-level", "warn",
		"--database-url", shard(t, dir, 1), "--token-database-url", e.tokens,
		"--nodes", "all", "--state-refresh", "100ms")

	cfg := loadtest.DefaultConfig()
	cfg.Mode = loadtest.ModeTokenServer
	cfg.Target = public
	cfg.KeyFile = keyFile
	cfg.Users = 12
	cfg.Concurrency = 6
	cfg.Duration = 7 * time.Second
	cfg.Seed = 4
	cfg.Verify = true
	cfg.MaxBackoff = 2 * time.Second
	cfg.ProgressInterval = time.Hour
	type result struct {
		rep *loadtest.Report
		err error
	}
	loadDone := make(chan result, 1)
	go func() {
		rep, err := loadtest.Run(context.Background(), cfg, nil)
		loadDone <- result{rep, err}
	}()

	fdb := &fleetDB{db: sqlstore.Config{TokenURL: e.tokens, Timeout: 10 * time.Second}, settle: 300 * time.Millisecond}
	tokens, err := fdb.db.OpenTokenDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	m := fdb.migrator(tokens)
	defer m.Close()

	var mu sync.Mutex
	held := map[int64]time.Duration{}
	time.Sleep(1500 * time.Millisecond) // users sign up and sync
	p, err := m.Drain(context.Background(), node[0], fleet.DrainOptions{Parallel: 2, Progress: func(p fleet.DrainProgress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Err == nil {
			held[p.Last.UID] = p.Last.Locked
		}
	}})
	if err != nil {
		t.Fatalf("drain: %v (%+v)", err, p)
	}
	t.Logf("drained shard 1: %d users in %s", p.Done, p.Elapsed.Round(time.Millisecond))
	e.weave("node", "set-state", node[0], "down", "--retry-after", "2", "--token-database-url", e.tokens)
	time.Sleep(500 * time.Millisecond) // the "upgrade"
	e.weave("node", "set-state", node[0], "up", "--token-database-url", e.tokens)
	moved := 0
	for uid := range held {
		if moved == 2 {
			break
		}
		res, err := m.MigrateUser(context.Background(), uid, node[0])
		if err != nil {
			t.Fatalf("move %d back: %v", uid, err)
		}
		held[uid] = max(held[uid], res.Locked)
		moved++
	}
	r := <-loadDone
	if r.err != nil {
		t.Fatal(r.err)
	}
	var b strings.Builder
	r.rep.WriteTable(&b)
	t.Log("\n" + b.String())
	v := r.rep.Verify
	if v == nil || !v.OK() || v.Expected == 0 || v.Lost != 0 || v.Duplicated != 0 || v.Altered != 0 {
		t.Errorf("verify: %+v", v)
	}
	if p.Done == 0 {
		t.Errorf("no user was on shard 1 to drain")
	}

	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	var uids []int64
	for uid := range held {
		uids = append(uids, uid)
	}
	for uid := range proxy.worst {
		if _, ok := held[uid]; !ok {
			uids = append(uids, uid)
		}
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	var lines []string
	for _, uid := range uids {
		lines = append(lines, fmt.Sprintf("uid %3d: writes held %6s, 503s seen %2d, longest 503 stretch %s",
			uid, held[uid].Round(time.Millisecond), proxy.count[uid], proxy.worst[uid].Round(time.Millisecond)))
		if proxy.worst[uid] > 5*time.Second {
			t.Errorf("uid %d saw 503s for %s", uid, proxy.worst[uid])
		}
	}
	t.Log("per-user unavailability:\n" + strings.Join(lines, "\n"))
}
