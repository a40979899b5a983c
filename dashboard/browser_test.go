package dashboard_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/chromium"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

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
		db, err = mysql.OpenConfig(ctx, cfg, sqlstore.PoolOptions{MaxOpenConns: 2, Timeout: 2 * time.Second})
	case "postgres":
		db, err = postgres.Open(ctx, dbtest.ServerURL("postgres"), sqlstore.PoolOptions{MaxOpenConns: 2, Timeout: 2 * time.Second})
	}
	if err != nil {
		t.Logf("no %s server for the screenshot (%v); its section is left out", kind, err)
		return nil
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMain(m *testing.M) {
	code := m.Run()
	chromium.Stop()
	os.Exit(code)
}

// TestBrowser loads the dashboard in headless Chromium while traffic
// flows, checks that every graph was drawn with data, and keeps a
// screenshot.
func TestBrowser(t *testing.T) {
	chromium.Require(t)
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
	tab := chromium.NewTab(t)
	tab.MustCall("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}, true, nil)
	start := time.Now()
	tab.MustCall("Page.navigate", map[string]any{"url": f.srv.URL + "/__dashboard__/?token=" + token}, true, nil)
	// The page refreshes on its own timer: wait until it has drawn every
	// graph with data (or give up and let the checks below say what is
	// missing). Slow only on a loaded machine.
	var dom string
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var ready bool
		tab.TryEval(`(() => { const b = document.body; if (!b) return false;
			const n = +b.dataset.updates || 0, c = +b.dataset.charts || 0, d = +b.dataset.chartsWithData || 0;
			return n >= 2 && c >= 10 && d >= c - 1 &&
				[...document.querySelectorAll("[data-chart]")].filter(e => +e.dataset.points >= 5).length >= 7; })()`, &ready)
		if ready || time.Now().After(deadline) {
			break
		}
	}
	tab.Eval(`document.documentElement.outerHTML`, &dom)
	t.Logf("page ready in %v", time.Since(start).Round(time.Millisecond))
	var png struct {
		Data []byte `json:"data"`
	}
	tab.MustCall("Page.captureScreenshot", map[string]any{"format": "png"}, true, &png)
	if err := os.WriteFile(shot, png.Data, 0o644); err != nil {
		t.Errorf("no screenshot written: %v", err)
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
	for _, c := range []string{"traffic.requests", "traffic.latency", "traffic.errors", "sync.records", "nodes.users", "cache.hit", "db.storage.size", "push.messages"} {
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
