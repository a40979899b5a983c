package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/dashboard"
	"github.com/weave-sync/weave/metrics"
)

// FuzzAuth sends arbitrary paths, queries, Authorization and Cookie headers
// to the dashboard and to /metrics behind the admin token. Nothing is
// served without the token (in the header or query) or the session cookie
// the dashboard issued, a cookie is only issued for the right token, and no
// input gets a 5xx.
func FuzzAuth(f *testing.F) {
	m := metrics.New(metrics.Options{})
	// A fixed clock makes the issued session cookie the same in every
	// process, so corpus inputs carrying it stay valid when replayed.
	now := func() time.Time { return time.Unix(1800000000, 0) }
	h := dashboard.Handler(dashboard.Options{Token: token, Metrics: m, Context: f.Context(), Now: now})
	mh := metrics.RequireToken(token, m.Handler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/__dashboard__/?token="+url.QueryEscape(token), nil))
	var session string
	for _, c := range rec.Result().Cookies() {
		session = c.Value
	}
	if session == "" {
		f.Fatal("no session cookie issued")
	}
	f.Add("/", "token="+token, "", "", uint8(0))
	f.Add("/api/series", "", "Bearer "+token, "", uint8(0))
	f.Add("/app.js", "", "", "weave_dashboard="+session, uint8(0))
	f.Add("/", "token=x", "", "weave_dashboard="+session, uint8(1))
	f.Add("", "", "bearer  "+token+" ", "", uint8(2))
	f.Add("/../style.css", "token=&token="+token, "Basic x", "weave_dashboard=; weave_dashboard="+session, uint8(3))
	f.Fuzz(func(t *testing.T, sub, query, authz, cookie string, which uint8) {
		target := "/__dashboard__" + sub
		if which%4 == 3 {
			target = "/metrics"
		}
		if query != "" {
			target += "?" + query
		}
		var r *http.Request
		func() {
			defer func() {
				if recover() != nil {
					r = nil // not a request line a client could send
				}
			}()
			r = httptest.NewRequest([...]string{"GET", "HEAD", "POST", "GET"}[which%4], target, nil)
		}()
		if r == nil {
			return
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		if which%4 == 3 {
			mh.ServeHTTP(w, r)
		} else {
			h.ServeHTTP(w, r)
		}
		if w.Code >= 500 {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
		if w.Code == http.StatusUnauthorized || w.Code == http.StatusNotFound {
			return
		}
		credentials := authz + "\x00" + strings.Join(r.URL.Query()["token"], "\x00")
		if !strings.Contains(credentials, token) && !(which%4 != 3 && strings.Contains(cookie, session)) {
			t.Fatalf("%s served %d without credentials (Authorization %q, Cookie %q)", target, w.Code, authz, cookie)
		}
		if len(w.Result().Cookies()) > 0 && !strings.Contains(strings.Join(r.URL.Query()["token"], "\x00"), token) {
			t.Fatalf("cookie issued for query %q", query)
		}
	})
}
