package fleet

import (
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

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
