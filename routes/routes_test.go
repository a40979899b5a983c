package routes_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weave-sync/weave/fleet"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/routes"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

const public = "http://127.0.0.1:8000/sync"

// stub answers 200 with its name, for the surfaces whose own tests are
// elsewhere.
func stub(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
}

// process is the route table of a process serving everything: its own
// node at /sync with the token server and Sync 1.1, a second node at
// /node2, admin routes, the 1.1 User API.
func process(t *testing.T) http.Handler {
	t.Helper()
	node := func(url string, own bool) http.Handler {
		st, err := sqlstore.OpenStore(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "storage.db"), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		api, err := weavehttp.New(weavehttp.Config{Store: st, PublicURL: url, Secrets: []string{"secret-0123456789abcdef"}})
		if err != nil {
			t.Fatal(err)
		}
		n := routes.Node{URL: url, API: api, Legacy: func(http.Handler) http.Handler { return stub("legacy storage") }}
		if own {
			n.TokenServer = stub("token server")
		}
		return routes.NodeHandler(n)
	}
	rt := &fleet.Router{Fallback: node(public, true)}
	if err := rt.Add("http://127.0.0.1:8000/node2", node("http://127.0.0.1:8000/node2", false)); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	webPush := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "web push "+r.PathValue("version")) })
	return routes.Handler(routes.Process{PublicURL: public, Nodes: rt, LegacyUsers: stub("user api"),
		Admin: &routes.Admin{Metrics: m, Dashboard: stub("dashboard")},
		Push:  routes.Push{WebSocket: stub("websocket"), Routes: []push.Route{{Pattern: "POST /wpush/{version}/{token}", Handler: webPush}}}})
}

// serve runs one request through h and returns the response and the name
// of the route it took.
func serve(h http.Handler, method, path string) (*httptest.ResponseRecorder, string) {
	r := httptest.NewRequest(method, "http://127.0.0.1:8000"+path, nil)
	r, note := weavehttp.WithRouteNote(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, note.Endpoint()
}

// TestRouteNames: every request is named by the route it took, never by
// its raw path (what metrics label requests with).
func TestRouteNames(t *testing.T) {
	h := process(t)
	for path, want := range map[string]string{
		"/":                                      "/",
		"/1.5/42":                                "/1.5/{uid}",
		"/1.5/42/storage":                        "/1.5/{uid}/storage",
		"/1.5/42/storage/tabs":                   "/1.5/{uid}/storage/{collection}",
		"/1.5/42/storage/tabs/xyz%2F":            "/1.5/{uid}/storage/{collection}/{id}",
		"/1.5/42/info/quota":                     "/1.5/{uid}/info/quota",
		"/1.5/42/info/collection_counts":         "/1.5/{uid}/info/collection_counts",
		"/1.5/42/info/nope":                      "other",
		"/1.5/abc/storage":                       "other",
		"/1.5/42/storage/a/b/c":                  "other",
		"/sync/1.5/42/storage/forms":             "/1.5/{uid}/storage/{collection}",
		"/1.0/sync/1.5":                          "/1.0/{application}/{version}",
		"/1.0/sync":                              "other",
		"/__heartbeat__":                         "/__heartbeat__",
		"/__lbheartbeat__":                       "/__lbheartbeat__",
		"/sync/__version__":                      "/__version__",
		"/metrics":                               "/metrics",
		"/__dashboard__/api/series":              "/__dashboard__",
		"/wp-login.php":                          "other",
		"/a/b/c/d/1.5/42":                        "other",
		"/" + strings.Repeat("x/", 1000) + "1.5": "other",
		// Sync 1.1 and User API 1.0 get names of their own.
		"/1.1/kismw365lo7emoxr3ohojgpild6lph4b/info/collections": "/1.1/{user}/info/collections",
		"/1.0/joe/storage/bookmarks":                             "/1.1/{user}/storage/{collection}",
		"/node2/1/joe/storage/bookmarks/abc":                     "/1.1/{user}/storage/{collection}/{id}",
		"/1.0/joe/storage":                                       "/1.1/{user}/storage",
		"/1.1/joe/info/nope":                                     "other",
		"/user/1.0/joe":                                          "/user/1.0/{user}",
		"/sync/user/1/joe/node/weave":                            "/user/1.0/{user}/node/weave",
		"/user/1.0/joe/password":                                 "/user/1.0/{user}/password",
		"/user/1.0/joe/x":                                        "other",
		"/misc/1.0/captcha_html":                                 "/misc/1.0/captcha_html",
		"/weave-password-reset":                                  "/weave-password-reset",
		"/sync/wpush/v1/tok":                                     "other", // a GET: no such route
	} {
		if _, got := serve(h, "GET", path); got != want {
			t.Errorf("GET %.60s: route %q, want %q", path, got, want)
		}
	}
}

// TestRouteAnswers: paths no surface knows get the storage API's 404 with
// its body, the same under the prefix, without the trailing slash of a
// subtree, and for paths ServeMux would redirect; Dockerflow keeps its 405.
func TestRouteAnswers(t *testing.T) {
	h := process(t)
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/no/such", 404, "0"},
		{"GET", "/sync/no/such", 404, "0"},
		{"GET", "/1.5", 404, "0"},
		{"GET", "/1.0", 404, "0"},
		{"GET", "/node2/1.0/sync/1.5", 404, "0"}, // the token server is on the own node only
		{"GET", "/user/1.0", 404, "0"},
		{"GET", "//1.5/42/storage", 404, "0"},
		{"GET", "/1.5/42/../42/storage", 404, "0"},
		{"POST", "/metrics", 404, "0"},
		{"POST", "/__heartbeat__", 405, "0"},
		{"GET", "/sync", 200, "It works! This is a weave Firefox Sync storage node.\n"},
		{"GET", "/1.0/sync/1.5", 200, "token server"},
		{"GET", "/sync/1.1/joe/storage/tabs", 200, "legacy storage"},
		{"GET", "/sync/user/1.0/joe", 200, "user api"},
		{"POST", "/sync/wpush/v2/tok", 200, "web push v2"},
		{"GET", "/sync/wpush/v2/tok", 404, "0"},
	} {
		w, _ := serve(h, c.method, c.path)
		if w.Code != c.status || w.Body.String() != c.body {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, w.Code, w.Body.String(), c.status, c.body)
		}
	}
	// Firefox's push connection is a WebSocket upgrade at the public URL;
	// a page request there is the root page's.
	for path, want := range map[string]string{"/sync/": "websocket", "/sync": "websocket", "/": "It works! This is a weave Firefox Sync storage node.\n"} {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8000"+path, nil)
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Body.String() != want {
			t.Errorf("WebSocket upgrade at %s: %q, want %q", path, w.Body.String(), want)
		}
	}
	if w, _ := serve(h, "GET", "/sync/"); w.Code != 200 || !strings.HasPrefix(w.Body.String(), "It works!") {
		t.Errorf("GET /sync/: %d %q, want the root page", w.Code, w.Body.String())
	}
	// An escaped "/.." in a record id is no path step: the storage API
	// gets the request (401: no Hawk), not a redirect.
	if w, name := serve(h, "GET", "/1.5/42/storage/tabs/a%2F.."); w.Code != http.StatusUnauthorized || name != "/1.5/{uid}/storage/{collection}/{id}" {
		t.Errorf("id with an escaped /..: %d %q", w.Code, name)
	}
}
