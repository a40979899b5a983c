// Package routes is weave's one route table: every HTTP surface a weave
// process serves, by Go ServeMux pattern, each with the name metrics label
// its requests with.
//
// Two levels, both here: the process table (accounts, the 1.1 User API,
// push, admin, then the node router) and the table of one storage node
// (storage 1.5 and 1.1, the token server on the process's own node,
// Dockerflow, its root page and 404), which the node router picks by Host
// and path prefix. Every pattern is served with and without the public
// URL's path prefix, as a proxy may strip it or not.
package routes

import (
	"net/http"
	"net/http/pprof"
	"net/url"
	"path"
	"strings"

	"github.com/weave-sync/weave/accounts"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/push"
)

// Process is what one weave process serves on its public listener. Nil
// surfaces are off.
type Process struct {
	// PublicURL is the URL clients reach the process at; its path (e.g.
	// "/sync") prefixes every route.
	PublicURL string
	// Nodes serves everything the process table does not: the node
	// router (fleet.Router) over the tables of the nodes (Node), or the
	// one node's table. Required.
	Nodes http.Handler
	// Accounts is the built-in accounts service (accounts.Service.Handler):
	// its API and sign-in pages, accounts.PathPrefixes.
	Accounts http.Handler
	// LegacyUsers is the Sync 1.1 front end's User API 1.0, captcha and
	// password-reset pages (legacy.Service.UserAPI).
	LegacyUsers http.Handler
	// Push is the push service.
	Push Push
	// Admin, when set, serves metrics, the dashboard and the profiler on
	// this listener too.
	Admin *Admin
	// Metrics counts every request by the name of its route.
	Metrics *metrics.Metrics
}

// Push is the push service's handlers; off when WebSocket is nil.
type Push struct {
	// WebSocket is Firefox's connection (push.Service.Handler): a
	// WebSocket upgrade at the public URL itself, as with autopush.
	WebSocket http.Handler
	// Routes are the Web Push endpoints (push.Service.Routes), below the
	// public URL's path.
	Routes []push.Route
}

// Admin is the operator's surface: /metrics, the dashboard /__dashboard__
// and the Go profiler /debug/pprof/.
type Admin struct {
	Metrics   *metrics.Metrics
	Dashboard http.Handler
	// Token guards /metrics and the profiler; without one /metrics is
	// open and the profiler is not served (404).
	Token    string
	Profiler bool
}

// Handler is the public listener's handler: the process table.
func Handler(p Process) http.Handler {
	t := newTable()
	prefix := pathOf(p.PublicURL)
	if p.Admin != nil {
		p.Admin.routes(t)
	}
	if p.Push.WebSocket != nil {
		for _, r := range p.Push.Routes {
			method, path, _ := strings.Cut(r.Pattern, " ")
			t.handle(method+" "+prefix+path, "", r.Handler)
		}
		// dom.push.serverURL is the public URL; a page request there goes
		// on to the root page (the sign-in page with built-in accounts).
		next := p.Nodes
		if p.Accounts != nil {
			next = http.StripPrefix(prefix, p.Accounts)
		}
		root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if push.IsWebSocket(r) {
				p.Push.WebSocket.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
		t.handle(prefix+"/{$}", "", root)
		if prefix != "" {
			t.handle(prefix, "", root)
		}
	}
	if p.Accounts != nil {
		for _, pat := range accounts.PathPrefixes {
			t.prefixed(prefix, pat, p.Accounts)
		}
		if prefix != "" {
			// Firefox opens identity.fxaccounts.remote.root itself,
			// which has no trailing slash: the sign-in page.
			t.handle(prefix, "", http.StripPrefix(prefix, p.Accounts))
		}
	}
	if p.LegacyUsers != nil {
		for _, pre := range prefixes(prefix) {
			for _, v := range []string{"1.0", "1"} {
				base := pre + "/user/" + v
				t.handle(base+"/", "other", p.LegacyUsers)
				t.handle(base, "other", p.Nodes) // no user: not the User API
				t.handle(base+"/{user}", "/user/1.0/{user}", p.LegacyUsers)
				for _, a := range []string{"node/weave", "password", "email", "password_reset"} {
					t.handle(base+"/{user}/"+a, "/user/1.0/{user}/"+a, p.LegacyUsers)
				}
				t.handle(pre+"/misc/"+v+"/captcha_html", "/misc/1.0/captcha_html", p.LegacyUsers)
			}
			t.handle(pre+"/weave-password-reset", "/weave-password-reset", p.LegacyUsers)
		}
	}
	t.handle("/", "other", p.Nodes)
	return p.Metrics.Middleware(t)
}

// AdminHandler is the admin listener's handler (--metrics-listen): the
// admin routes only.
func AdminHandler(a Admin) http.Handler {
	t := newTable()
	a.routes(t)
	t.mux.Handle("/", http.NotFoundHandler())
	return t
}

func (a *Admin) routes(t *table) {
	t.handle("/__dashboard__", "", a.Dashboard)
	t.handle("/__dashboard__/", "/__dashboard__", a.Dashboard)
	m := a.Metrics.Handler()
	if a.Token != "" {
		m = metrics.RequireToken(a.Token, m)
	}
	t.handle("GET /metrics", "", m)
	if !a.Profiler || a.Token == "" {
		return // profiles reveal memory contents: never open
	}
	guard := func(h http.HandlerFunc) http.Handler { return metrics.RequireToken(a.Token, h) }
	t.handle("/debug/pprof/", "", guard(pprof.Index)) // also heap, goroutine, allocs, block, mutex, threadcreate
	t.handle("/debug/pprof/cmdline", "", guard(pprof.Cmdline))
	t.handle("/debug/pprof/profile", "", guard(pprof.Profile))
	t.handle("/debug/pprof/symbol", "", guard(pprof.Symbol))
	t.handle("/debug/pprof/trace", "", guard(pprof.Trace))
}

// Node is one storage node's surfaces.
type Node struct {
	// URL is the node's public URL; its path prefixes the node's routes.
	URL string
	// API is the node's storage API 1.5 with its Dockerflow endpoints.
	API *weavehttp.Server
	// TokenServer is served on the process's own node only.
	TokenServer http.Handler
	// Legacy, when set, puts the node's Sync 1.1 storage in front of the
	// rest of its table (legacy.Service.Storage with next).
	Legacy func(next http.Handler) http.Handler
}

// NodeHandler is the table of one storage node.
func NodeHandler(n Node) http.Handler {
	t := newTable()
	for _, pre := range prefixes(pathOf(n.URL)) {
		t.handle(pre+"/1.5/", "other", n.API.Storage()) // the storage API names its routes
		t.handle(pre+"/1.5", "other", n.API.NotFound())
		if n.TokenServer != nil {
			tokens := n.API.Mount(n.TokenServer)
			t.handle(pre+"/1.0/{application}/{version}", "/1.0/{application}/{version}", tokens)
			t.handle(pre+"/1.0/", "other", tokens)
			t.handle(pre+"/1.0", "other", n.API.NotFound())
		}
		t.handle(pre+"/__heartbeat__", "/__heartbeat__", n.API.Heartbeat())
		t.handle(pre+"/__lbheartbeat__", "/__lbheartbeat__", n.API.LBHeartbeat())
		t.handle(pre+"/__version__", "/__version__", n.API.Version())
		t.handle(pre+"/{$}", "/", n.API.Root())
		if pre != "" {
			t.handle(pre, "/", n.API.Root())
		}
	}
	t.handle("/", "other", n.API.NotFound())
	if n.Legacy == nil {
		return t
	}
	// Storage 1.1 (versions 1.1, 1.0 and 1 share the /1.1/ names), before
	// the rest: /1.0/{user}/storage is 1.1, /1.0/sync/1.5 the token server.
	lt := newTable()
	h := n.Legacy(t)
	for _, pre := range prefixes(pathOf(n.URL)) {
		for _, v := range []string{"1.1", "1.0", "1"} {
			user := pre + "/" + v + "/{user}"
			lt.handle(user+"/info", "other", h)
			lt.handle(user+"/info/", "other", h)
			lt.handle(user+"/storage", "/1.1/{user}/storage", h)
			lt.handle(user+"/storage/", "other", h)
			lt.handle(user+"/storage/{collection}", "/1.1/{user}/storage/{collection}", h)
			lt.handle(user+"/storage/{collection}/{id}", "/1.1/{user}/storage/{collection}/{id}", h)
			for _, info := range []string{"collections", "quota", "collection_usage", "collection_counts"} {
				lt.handle(user+"/info/"+info, "/1.1/{user}/info/"+info, h)
			}
		}
	}
	lt.handle("/", "", t) // named by t
	return lt
}

// table is a ServeMux whose routes name themselves in the request's route
// note (weavehttp.WithRouteNote), for metrics.
type table struct {
	mux   *http.ServeMux
	names map[string]bool
}

func newTable() *table { return &table{mux: http.NewServeMux(), names: map[string]bool{}} }

// handle routes pattern to h under name; "" names a route by its pattern
// when that is one precise path ("other" for a subtree), and "other" is
// a name a handler that routes further may make precise. A pattern given
// twice keeps its first route.
func (t *table) handle(pattern, name string, h http.Handler) {
	if t.names[pattern] {
		return
	}
	t.names[pattern] = true
	if name == "" {
		name = pattern
		if i := strings.IndexByte(name, ' '); i >= 0 {
			name = name[i+1:]
		}
		if strings.HasSuffix(name, "/") {
			name = "other"
		}
	}
	t.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		weavehttp.NoteRoute(r, name)
		h.ServeHTTP(w, r)
	}))
}

// prefixed routes pattern to h, and prefix+pattern to h with the prefix
// stripped.
func (t *table) prefixed(prefix, pattern string, h http.Handler) {
	t.handle(pattern, "", h)
	if prefix != "" {
		t.handle(prefix+pattern, "", http.StripPrefix(prefix, h))
	}
}

// ServeHTTP dispatches by the patterns without ServeMux's redirect of
// unclean paths: a record id may hold an escaped "/.." that is no path
// step, and each API answers for paths it does not know itself.
func (t *table) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := r
	if p := cleanPath(r.URL.Path); p != r.URL.Path {
		m = r.Clone(r.Context())
		m.URL.Path, m.URL.RawPath = p, ""
	}
	if m == r {
		t.mux.ServeHTTP(w, r) // sets the pattern's wildcards
		return
	}
	h, _ := t.mux.Handler(m)
	h.ServeHTTP(w, r)
}

// cleanPath is ServeMux's canonical form of a path.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// pathOf is the path of a URL without its trailing slash.
func pathOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.EscapedPath(), "/")
}

// prefixes are the path prefixes a route is served under: none and the
// public URL's.
func prefixes(prefix string) []string {
	if prefix == "" {
		return []string{""}
	}
	return []string{"", prefix}
}
