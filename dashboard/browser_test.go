package dashboard_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

const chromium = "/usr/bin/chromium"

// requireBackends mirrors internal/dbtest: in CI a missing tool fails.
func requireBackends() bool { return dbtest.Required() }

// artifactDir is where screenshots are kept: $WEAVE_TEST_ARTIFACTS if set.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("WEAVE_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// optionalServerDB connects to the local MariaDB or PostgreSQL server, if
// there is one, so the screenshot shows their counters too; the browser
// test itself needs neither.
func optionalServerDB(t *testing.T, kind string) *sqlstore.DB {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var db *sqlstore.DB
	var err error
	switch kind {
	case "mysql":
		cfg, perr := mysql.ParseURL(dbtest.ServerURL("mysql"))
		if perr != nil {
			return nil
		}
		db, err = mysql.OpenConfig(ctx, cfg, mysql.Options{MaxOpenConns: 2, Timeout: 2 * time.Second})
	case "postgres":
		db, err = postgres.Open(ctx, dbtest.ServerURL("postgres"), postgres.Options{MaxOpenConns: 2, Timeout: 2 * time.Second})
	}
	if err != nil {
		t.Logf("no %s server for the screenshot (%v); its section is left out", kind, err)
		return nil
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestBrowser loads the dashboard in headless Chromium while traffic
// flows, checks that every graph was drawn with data, and keeps a
// screenshot.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		msg := "browser test skipped: " + chromium + " not found (apt-get install -y chromium)"
		if requireBackends() {
			t.Fatal(msg + "; WEAVE_REQUIRE_BACKENDS=1 makes this a failure")
		}
		t.Skip(msg)
	}
	f := newFleet(t, 250*time.Millisecond)
	// Queries on real tables, so the server counters move.
	load := map[string]string{
		"mysql":    "SELECT COUNT(table_name) FROM mysql.innodb_table_stats",
		"postgres": "SELECT count(*) FROM pg_class",
	}
	extra := map[*sqlstore.DB]string{}
	for _, kind := range []string{"mysql", "postgres"} {
		if db := optionalServerDB(t, kind); db != nil {
			if err := f.m.WatchDB(metrics.Database{Name: kind + "-shard", Kind: kind, Read: db.Read, Write: db.Write}); err != nil {
				t.Fatal(err)
			}
			extra[db] = load[kind]
		}
	}
	f.extraDB = func() {
		for db, q := range extra {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var n int
			db.Read.QueryRowContext(ctx, q).Scan(&n)
			cancel()
		}
	}
	f.traffic(3)
	// Let the sampler gather some history before the page asks for it.
	time.Sleep(2 * time.Second)

	dir := artifactDir(t)
	shot := filepath.Join(dir, "dashboard.png")
	os.Remove(shot)
	// Chromium ran 19 s and 28 s on a two-core box at a load average of 30
	// (killed at the former bound of 15 s); the bound only catches a hang.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	url := f.srv.URL + "/__dashboard__/?token=" + token
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir="+t.TempDir(),
		"--screenshot="+shot, "--window-size=1280,900",
		// Virtual time runs the page's timers fast but waits for its
		// fetches, so a few refreshes happen within the budget.
		"--virtual-time-budget=1000",
		"--dump-dom", url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("chromium ran %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("chromium: %v\nstderr: %s", err, tail(stderr.String(), 2000))
	}
	dom := stdout.String()
	if _, err := os.Stat(shot); err != nil {
		t.Errorf("no screenshot written: %v\nstderr: %s", err, tail(stderr.String(), 2000))
	} else {
		t.Logf("screenshot: %s", shot)
	}
	os.WriteFile(filepath.Join(dir, "dashboard.html"), []byte(dom), 0o644)

	attr := func(name string) int {
		m := regexp.MustCompile(`<body[^>]*\s` + name + `="(\d+)"`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("body has no %s attribute: the page never rendered. DOM: %s", name, tail(dom, 3000))
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if n := attr("data-updates"); n < 1 {
		t.Fatalf("page made %d updates", n)
	}
	charts, withData := attr("data-charts"), attr("data-charts-with-data")
	if charts < 10 || withData < charts-1 {
		t.Errorf("%d charts, %d with data", charts, withData)
	}
	points := map[string]int{}
	for _, m := range regexp.MustCompile(`data-chart="([^"]+)"[^>]*data-points="(\d+)"`).FindAllStringSubmatch(dom, -1) {
		points[m[1]], _ = strconv.Atoi(m[2])
	}
	for _, c := range []string{"traffic.requests", "traffic.latency", "traffic.errors", "sync.records", "nodes.users", "cache.hit", "db.storage.size"} {
		if points[c] < 5 {
			t.Errorf("chart %s drawn with %d points, want ≥ 5 (all: %v)", c, points[c], points)
		}
	}
	for _, want := range []string{"https://sync-2.example.net", "draining", "/1.5/{uid}/storage/{collection}", "Database storage (sqlite)"} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(dom, "not authorised") || strings.Contains(dom, "update failed") {
		t.Errorf("page reports an error: %s", regexp.MustCompile(`id="status"[^>]*>[^<]*`).FindString(dom))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
