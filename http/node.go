package http

import (
	"context"
	"net/http"
	"time"
)

// NodeStatus is what the fleet knows of the node a Server serves: its
// operator-set state and the move marks of its users (fleet.Watcher.Status
// gives one). The Server asks it once per storage request, before
// authentication, so that its answers cost no database round trip.
type NodeStatus interface {
	// State returns the Retry-After of the node's 503s while it is down
	// (> 0: every storage request is refused) and its X-Weave-Backoff
	// while it is in backoff (> 0).
	State() (down, backoff time.Duration)
	// Moved reports whether uid has moved off the node: its requests get
	// 401, so that Firefox fetches a token naming the new node.
	Moved(uid int64) bool
}

// endpoints are the templates of the storage routes, as metrics label
// them.
var endpoints = [...]string{
	routeUser:              "/1.5/{uid}",
	routeStorage:           "/1.5/{uid}/storage",
	routeInfoCollections:   "/1.5/{uid}/info/collections",
	routeInfoQuota:         "/1.5/{uid}/info/quota",
	routeInfoUsage:         "/1.5/{uid}/info/collection_usage",
	routeInfoCounts:        "/1.5/{uid}/info/collection_counts",
	routeInfoConfiguration: "/1.5/{uid}/info/configuration",
	routeCollection:        "/1.5/{uid}/storage/{collection}",
	routeItem:              "/1.5/{uid}/storage/{collection}/{id}",
}

// RouteNote receives the storage route a Server matched, for a middleware
// in front of it (metrics) that labels requests by route without parsing
// their path again.
type RouteNote struct{ endpoint string }

// Endpoint is the template of the matched storage route, such as
// "/1.5/{uid}/storage/{collection}"; "" when the request was no storage
// request or matched no route.
func (n *RouteNote) Endpoint() string { return n.endpoint }

type routeNoteKey struct{}

// WithRouteNote returns r with a note that a Server serving it fills with
// the storage route it matched.
func WithRouteNote(r *http.Request) (*http.Request, *RouteNote) {
	n := &RouteNote{}
	return r.WithContext(context.WithValue(r.Context(), routeNoteKey{}, n)), n
}

func noteRoute(r *http.Request, rt route) { NoteRoute(r, endpoints[rt]) }

// NoteRoute names the route a request matched in its route note, if it
// has one; a handler that routes further names a more precise route later.
func NoteRoute(r *http.Request, endpoint string) {
	if n, ok := r.Context().Value(routeNoteKey{}).(*RouteNote); ok {
		n.endpoint = endpoint
	}
}
