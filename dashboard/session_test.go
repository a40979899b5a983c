package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/dashboard"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/metrics"
)

func dashGet(h http.Handler, target, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "weave_dashboard="+cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func sessionCookie(t *testing.T, h http.Handler, tok string) string {
	t.Helper()
	rec := dashGet(h, "/__dashboard__/?token="+tok, "")
	for _, c := range rec.Result().Cookies() {
		if c.Name == "weave_dashboard" {
			return c.Value
		}
	}
	t.Fatalf("no session cookie: %d %q", rec.Code, rec.Header().Values("Set-Cookie"))
	return ""
}

// TestSessionExpiresOnServer: the dashboard's session cookie is refused by
// the server once its lifetime has passed (the browser's Max-Age is not
// relied on), cannot be extended by editing it, and stops working when the
// admin token is rotated.
func TestSessionExpiresOnServer(t *testing.T) {
	clk := testkit.NewClock(time.Unix(1_800_000_000, 0))
	m := metrics.New(metrics.Options{})
	opts := dashboard.Options{Token: token, Metrics: m, Context: t.Context(), Now: clk.Now, SessionLifetime: 12 * time.Hour}
	h := dashboard.Handler(opts)
	cookie := sessionCookie(t, h, token)

	clk.Add(11 * time.Hour)
	if rec := dashGet(h, "/__dashboard__/api/series", cookie); rec.Code != http.StatusOK {
		t.Fatalf("cookie within its lifetime: %d", rec.Code)
	}
	// A cookie issued later carries a later time: the two differ.
	if fresh := sessionCookie(t, h, token); fresh == cookie {
		t.Errorf("cookies issued 11 h apart are the same value %q", fresh)
	}
	clk.Add(2 * time.Hour)
	if rec := dashGet(h, "/__dashboard__/api/series", cookie); rec.Code != http.StatusUnauthorized {
		t.Fatalf("cookie 13 h old: %d, want 401", rec.Code)
	}

	// Editing the issue time breaks the signature.
	parts := strings.Split(cookie, ".")
	if len(parts) != 3 {
		t.Fatalf("cookie %q: want version.issued.mac", cookie)
	}
	forged := parts[0] + "." + "1800040000" + "." + parts[2]
	if rec := dashGet(h, "/__dashboard__/api/series", forged); rec.Code != http.StatusUnauthorized {
		t.Fatalf("cookie with an edited issue time: %d, want 401", rec.Code)
	}

	// Rotating the admin token ends every session of the old one.
	cookie = sessionCookie(t, h, token)
	rotated := opts
	rotated.Token = "another-admin-token-0123456789"
	h2 := dashboard.Handler(rotated)
	if rec := dashGet(h2, "/__dashboard__/api/series", cookie); rec.Code != http.StatusUnauthorized {
		t.Fatalf("old token's cookie after rotation: %d, want 401", rec.Code)
	}
	if rec := dashGet(h, "/__dashboard__/api/series", cookie); rec.Code != http.StatusOK {
		t.Fatalf("same cookie, same token: %d", rec.Code)
	}
}
