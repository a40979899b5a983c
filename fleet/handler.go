package fleet

import (
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave"
)

// NodeGuard wraps the storage front end of one node with the node's state
// and its users' move marks, as last seen by a Watcher.
type NodeGuard struct {
	URL     string // the node's public URL
	Next    http.Handler
	Watcher *Watcher
	prefix  string
}

// NewNodeGuard returns the guard of the node at nodeURL in front of next.
func NewNodeGuard(nodeURL string, next http.Handler, w *Watcher) *NodeGuard {
	g := &NodeGuard{URL: nodeURL, Next: next, Watcher: w}
	if u, err := url.Parse(nodeURL); err == nil {
		g.prefix = strings.TrimRight(u.EscapedPath(), "/")
	}
	return g
}

// Backoff is the node's X-Weave-Backoff: non-zero while it is in the
// backoff state (for weavehttp.Config.Backoff).
func (g *NodeGuard) Backoff() time.Duration {
	n, ok := g.Watcher.Node(g.URL)
	if !ok || n.State != weave.NodeBackoff {
		return 0
	}
	if n.Backoff > 0 {
		return n.Backoff
	}
	return DefaultBackoff
}

// ServeHTTP implements http.Handler.
func (g *NodeGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if g.prefix != "" {
		path = strings.TrimPrefix(path, g.prefix)
	}
	rest, ok := strings.CutPrefix(path, "/1.5/")
	if !ok {
		g.Next.ServeHTTP(w, r)
		return
	}
	uidText, _, _ := strings.Cut(rest, "/")
	if uid, err := strconv.ParseInt(uidText, 10, 64); err == nil {
		if g.Watcher.MoveState(g.URL, uid) == weave.MoveMoved {
			// The token names this node, but the user lives elsewhere
			// now: a new token sends Firefox there. This comes before the
			// down check so that users already moved off a node in
			// maintenance go straight to their new node.
			writeBare(w, http.StatusUnauthorized, func(h http.Header) {
				h.Set("WWW-Authenticate", "Hawk")
			})
			return
		}
	}
	if n, ok := g.Watcher.Node(g.URL); ok && n.State == weave.NodeDown {
		ra := n.RetryAfter
		if ra <= 0 {
			ra = DefaultRetryAfter
		}
		writeBare(w, http.StatusServiceUnavailable, func(h http.Header) {
			h.Set("Retry-After", strconv.Itoa(int(ra.Seconds())))
		})
		return
	}
	g.Next.ServeHTTP(w, r)
}

// writeBare answers as the storage API does for errors: a JSON 0 body.
func writeBare(w http.ResponseWriter, status int, headers func(http.Header)) {
	h := w.Header()
	headers(h)
	h.Set("Content-Type", "application/json")
	h.Set("X-Weave-Timestamp", weave.TimestampAt(time.Now()).String())
	w.WriteHeader(status)
	w.Write([]byte("0"))
}

// Router sends each request to the node its Host and path prefix name,
// else to Fallback (the token server and the process's own endpoints).
// Nodes may be added while it serves.
type Router struct {
	Fallback http.Handler
	mu       sync.Mutex // serialises Add
	routes   atomic.Pointer[[]route]
}

type route struct {
	host   string // lowercased host[:port] of the node URL
	prefix string // path prefix without trailing slash
	h      http.Handler
}

// Add routes requests for the node at nodeURL to h.
func (rt *Router) Add(nodeURL string, h http.Handler) error {
	u, err := url.Parse(nodeURL)
	if err != nil || u.Host == "" {
		return &url.Error{Op: "parse", URL: nodeURL, Err: errBadNodeURL}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var routes []route
	if old := rt.routes.Load(); old != nil {
		routes = append(routes, *old...)
	}
	routes = append(routes, route{host: hostKey(u.Host, u.Scheme), prefix: strings.TrimRight(u.EscapedPath(), "/"), h: h})
	// Longest prefix first.
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].prefix) > len(routes[j].prefix) })
	rt.routes.Store(&routes)
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errBadNodeURL = errString("node URL must be absolute, e.g. https://sync1.example.com")

func hostKey(host, scheme string) string {
	host = strings.ToLower(host)
	if h, p, err := net.SplitHostPort(host); err == nil && ((scheme == "http" && p == "80") || (scheme == "https" && p == "443")) {
		host = h
	}
	return host
}

func prefixMatch(path, prefix string) bool {
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// ServeHTTP implements http.Handler: among the nodes whose path prefix
// matches, one on the request's Host wins, the longest prefix first; a
// non-empty prefix also matches on another Host (behind proxies that
// rewrite it).
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	host := strings.ToLower(r.Host)
	var byPrefix http.Handler
	var routes []route
	if p := rt.routes.Load(); p != nil {
		routes = *p
	}
	for _, ro := range routes {
		if !prefixMatch(path, ro.prefix) {
			continue
		}
		if ro.host == host || ro.host == hostKey(host, "http") || ro.host == hostKey(host, "https") {
			ro.h.ServeHTTP(w, r)
			return
		}
		if byPrefix == nil && ro.prefix != "" {
			byPrefix = ro.h
		}
	}
	if byPrefix != nil {
		byPrefix.ServeHTTP(w, r)
		return
	}
	rt.Fallback.ServeHTTP(w, r)
}
