package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/weave-sync/weave/internal/testkit"
)

func get(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return testkit.Get(t, req)
}

// /metrics and the dashboard are closed (404) without --admin-token, need
// the token with it, and report what the Sync traffic did.
func TestServeMetricsAndDashboard(t *testing.T) {
	t.Run("closed by default", func(t *testing.T) {
		srv := startServer(t, "")
		for _, p := range []string{"/metrics", "/__dashboard__"} {
			if code, _ := get(t, srv.base+p, ""); code != 404 {
				t.Errorf("%s without --admin-token: %d, want 404", p, code)
			}
		}
	})
	t.Run("with admin token", func(t *testing.T) {
		const token = "0123456789abcdef-admin"
		srv := startServer(t, "", "--admin-token", token)
		c := srv.client(t, "abababababababababababababababab")
		c.must(200, "POST", "/storage/bookmarks", []map[string]any{{"id": "x", "payload": "hello"}})
		c.must(200, "GET", "/storage/bookmarks?full=1", nil)
		get(t, srv.base+"/1.5/1/info/collections", "") // a Hawk failure

		for _, p := range []string{"/metrics", "/__dashboard__"} {
			if code, _ := get(t, srv.base+p, ""); code != 401 {
				t.Errorf("%s without token: %d, want 401", p, code)
			}
			if code, _ := get(t, srv.base+p, "wrong-token-wrong-token"); code != 401 {
				t.Errorf("%s with a wrong token: %d, want 401", p, code)
			}
		}
		code, body := get(t, srv.base+"/metrics", token)
		if code != 200 {
			t.Fatalf("/metrics with token: %d", code)
		}
		for _, want := range []string{
			`weave_tokens_issued_total`,
			`weave_hawk_failures_total{reason="missing"} 1`,
			`weave_records_written_total 1`,
			`weave_records_read_total 1`,
			`weave_http_requests_total{endpoint=`,
			`weave_db_pool_open_connections{`,
			`weave_db_group_members_total{db="storage"} `, // SQLite's group committer
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if code, page := get(t, srv.base+"/__dashboard__", token); code != 200 || !strings.Contains(page, "<html") {
			t.Errorf("/__dashboard__ with token: %d", code)
		}
	})
}

// The Go profiler is on the admin listener only, behind the admin token:
// 404 without --admin-token, 401 without the bearer token, a profile with it,
// and absent from the public listener when --metrics-listen separates them.
func TestServePprof(t *testing.T) {
	const token = "0123456789abcdef-admin"
	t.Run("closed without admin token", func(t *testing.T) {
		srv := startServer(t, "")
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
			if code, _ := get(t, srv.base+p, token); code != 404 {
				t.Errorf("%s without --admin-token: %d, want 404", p, code)
			}
		}
	})
	t.Run("public listener is the admin listener", func(t *testing.T) {
		srv := startServer(t, "", "--admin-token", token)
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline"} {
			if code, _ := get(t, srv.base+p, ""); code != 401 {
				t.Errorf("%s without token: %d, want 401", p, code)
			}
			if code, _ := get(t, srv.base+p, "wrong-token-wrong-token"); code != 401 {
				t.Errorf("%s with a wrong token: %d, want 401", p, code)
			}
		}
		checkProfiles(t, srv.base, token)
	})
	t.Run("separate metrics listener", func(t *testing.T) {
		metricsAddr := testkit.FreeAddr(t)
		srv := startServer(t, "", "--admin-token", token, "--metrics-listen", metricsAddr)
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
			if code, _ := get(t, srv.base+p, token); code != 404 {
				t.Errorf("public %s with token: %d, want 404 (the profiler belongs on --metrics-listen)", p, code)
			}
			if code, _ := get(t, "http://"+metricsAddr+p, ""); code != 401 {
				t.Errorf("admin %s without token: %d, want 401", p, code)
			}
		}
		checkProfiles(t, "http://"+metricsAddr, token)
	})
	t.Run("separate metrics listener without admin token", func(t *testing.T) {
		metricsAddr := testkit.FreeAddr(t)
		startServer(t, "", "--metrics-listen", metricsAddr)
		if code, _ := get(t, "http://"+metricsAddr+"/debug/pprof/heap", ""); code != 404 {
			t.Errorf("/debug/pprof/heap on the metrics listener without --admin-token: %d, want 404", code)
		}
	})
}

// checkProfiles fetches a CPU and a heap profile (gzipped protobufs) and the
// index with the token.
func checkProfiles(t *testing.T, base, token string) {
	t.Helper()
	for _, p := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/heap"} {
		code, body := get(t, base+p, token)
		if code != 200 || !strings.HasPrefix(body, "\x1f\x8b") {
			t.Errorf("%s with token: %d, %d bytes (want 200 and a gzipped profile)", p, code, len(body))
		}
	}
	if code, body := get(t, base+"/debug/pprof/", token); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with token: %d", code)
	}
}
