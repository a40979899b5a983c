// Package http is the Sync storage API 1.5 front end of a weave storage
// node: routing, Hawk authentication, request validation, the mapping of
// store errors to statuses and weave error codes, and the operational
// endpoints (/__heartbeat__, /__lbheartbeat__, /__version__).
//
// The protocol is specified in shared/spec/storage-1.5.md; where Mozilla's
// reference servers differ, this package follows that document's
// recommendations (see the comments at each choice).
//
// Wiring, with the package imported as weavehttp:
//
//	srv, err := weavehttp.New(weavehttp.Config{
//		Store:     store,                      // a weave.Store
//		PublicURL: "https://sync.example.com", // what tokens name as node
//		Secrets:   secrets,                    // newest last
//		Logger:    logger,
//	})
//	// Deadlines for slow clients, header and connection limits:
//	hs := weavehttp.NewHTTPServer(srv, weavehttp.DefaultTimeouts(), nil)
//	ln = weavehttp.LimitListener(ln, weavehttp.ConnLimits{PerClient: 64, Total: 4096})
//	go hs.Serve(ln)
//	// On SIGTERM: srv.SetReady(false); wait for load balancers to notice
//	// (/__lbheartbeat__ turns 503); then hs.Shutdown(ctx).
package http

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/hawk"
)

// Config configures a storage node's HTTP front end.
type Config struct {
	// Store holds the users' data. Required.
	Store weave.Store
	// Limits are published at /info/configuration and enforced. Fields
	// left at zero take weave.DefaultLimits' values; QuotaBytes 0 means no
	// quota. BatchLifetime is the Store's business.
	Limits weave.Limits
	// PublicURL is the node's base URL as clients use it and as the token
	// server writes it into tokens ("node"), e.g. "https://sync.example.com"
	// or "https://example.com/sync" behind a proxy that strips "/sync".
	// When set, Hawk uses its host, port and path prefix instead of what
	// the request says (the cure for "mac mismatch" behind proxies), and
	// tokens must name it as their node. When empty, the node URL is
	// reconstructed from the request (trusted forwarding headers, Host).
	PublicURL string
	// Secrets are the token-signing secrets of this node, newest last; a
	// token signed with any of them is accepted (rotation). Required.
	Secrets []string
	// TrustedProxies are the peer addresses whose X-Forwarded-Proto,
	// X-Forwarded-Host and X-Forwarded-Port headers are believed. Used only
	// when PublicURL is empty.
	TrustedProxies []netip.Prefix
	// Hawk tunes request authentication.
	Hawk HawkConfig
	// ExpiredTokenGrace is how long after expiry a token is still accepted
	// for GET /info/collections (SPEC allows it; the Python server uses
	// 2 h). Zero means 2 h; negative disables the grace.
	ExpiredTokenGrace time.Duration
	// Logger receives one line per request and unexpected errors. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Version and Commit are reported by /__version__.
	Version, Commit string
	// RetryAfter is sent with 503s for an unavailable store when the store
	// gives no hint. Zero means 30 s.
	RetryAfter time.Duration
	// Node, when set, is the node's operator-set state and its users'
	// move marks (a fleet.Watcher's view), asked once per storage request
	// before anything else: a moved user gets 401, a down node 503, a
	// node in backoff X-Weave-Backoff (storage-1.5.md §14).
	Node NodeStatus
	// HeartbeatTimeout bounds the database ping of /__heartbeat__. Zero
	// means 2 s.
	HeartbeatTimeout time.Duration
	// MaxBodyMemory bounds the request body bytes held in memory at once,
	// across requests: a request waits for room before its body is read,
	// and gets 503 with Retry-After if none comes (see bodybudget.go).
	// Zero means DefaultMaxBodyMemory; negative, no bound.
	MaxBodyMemory int64
	// Observer, when set, is told what the API does (for metrics).
	Observer Observer
	// CORSOrigins, when not empty, lets web pages of these origins
	// ("scheme://host[:port]", or "*" for any) call the storage and token
	// routes (see cors.go). Empty: no CORS headers.
	CORSOrigins []string
}

// Observer receives counts of what the storage API does. Calls happen on
// the request path, so implementations must be cheap and never block.
type Observer interface {
	// AuthFailed reports a request refused with 401: err is
	// ErrMissingAuthorization, ErrUIDMismatch, hawk.ErrBadPayloadHash, or
	// the error of hawk.Verifier.Verify (wrapping tokenlib's errors).
	AuthFailed(err error)
	BatchOpened()
	// BatchCommitted reports a commit with the records and payload bytes
	// sent in the commit request itself (staged ones were counted by
	// RecordsWritten when they were appended).
	BatchCommitted(records int, bytes int64)
	RecordsWritten(records int, bytes int64)
	RecordsRead(records int, bytes int64)
	// Conflict reports a write refused for concurrency: 412 (precondition)
	// or 503 (conflicting concurrent write).
	Conflict(status int)
}

// Errors given to Observer.AuthFailed besides Hawk's own.
var (
	ErrMissingAuthorization = errors.New("http: missing Authorization header")
	ErrUIDMismatch          = errors.New("http: token uid does not match the URL")
)

// noObserver is used when Config.Observer is nil.
type noObserver struct{}

func (noObserver) AuthFailed(error)          {}
func (noObserver) BatchOpened()              {}
func (noObserver) BatchCommitted(int, int64) {}
func (noObserver) RecordsWritten(int, int64) {}
func (noObserver) RecordsRead(int, int64)    {}
func (noObserver) Conflict(int)              {}

// HawkConfig tunes Hawk verification.
type HawkConfig struct {
	// Skew is how far a request's ts may be from the server clock. Zero
	// means 60 s (the Hawk default); requests outside get 401 with a
	// stale-timestamp challenge so clients can resynchronise.
	Skew time.Duration
	// DisableNonceCache turns replay protection off. With the cache on, a
	// (token, ts, nonce) triple is accepted once within the skew window.
	DisableNonceCache bool
	// NonceCacheSize bounds the nonce cache (entries); zero means
	// hawk.DefaultNonceCapacity.
	NonceCacheSize int
}

// Server is the storage node's http.Handler.
type Server struct {
	store  weave.Store
	limits weave.Limits
	public bool   // PublicURL is set
	prefix string // PublicURL's path without trailing slash, "" for none
	node   string // PublicURL in weave.NodeURLKey form
	// publicOrigin is what Hawk and the node check use when PublicURL is set.
	publicOrigin origin
	// lastOrigin is the origin last derived from a request, when
	// PublicURL is not set.
	lastOrigin atomic.Pointer[originMemo]
	secrets    []string
	tokens     *tokenCache
	hawk       *hawk.Verifier
	configJSON []byte
	grace      time.Duration
	trusted    []netip.Prefix
	log        *slog.Logger
	now        func() time.Time
	version    string
	commit     string
	retryAfter time.Duration
	hbTimeout  time.Duration
	status     NodeStatus // nil: always up
	draining   atomic.Bool
	obs        Observer
	// fullLogged is when (unix ns) a refused write last logged that the
	// database is full, so a full disk gives one clear line, not a flood.
	fullLogged atomic.Int64
	cors       *cors // nil: off
	// pageRecords and pageBytes bound one page of a collection read
	// (tests make them small).
	pageRecords, pageBytes int
	// bodies bounds the request bodies held in memory (nil: no bound).
	bodies *bodyBudget
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("http: Config.Store is required")
	}
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("http: Config.Secrets is required")
	}
	s := &Server{
		store:       cfg.Store,
		limits:      cfg.Limits,
		grace:       cfg.ExpiredTokenGrace,
		trusted:     cfg.TrustedProxies,
		log:         cfg.Logger,
		now:         cfg.Now,
		version:     cfg.Version,
		commit:      cfg.Commit,
		retryAfter:  cfg.RetryAfter,
		hbTimeout:   cfg.HeartbeatTimeout,
		status:      cfg.Node,
		obs:         cfg.Observer,
		pageRecords: readPageRecords,
		pageBytes:   readPageBytes,
		bodies:      newBodyBudget(cfg.MaxBodyMemory),
	}
	if s.obs == nil {
		s.obs = noObserver{}
	}
	// Unset (zero) limits take the defaults one by one, so a config that
	// sets only some of them still publishes and enforces all six.
	def := weave.DefaultLimits()
	for _, f := range []struct{ v, d *int64 }{
		{&s.limits.MaxRequestBytes, &def.MaxRequestBytes},
		{&s.limits.MaxPostRecords, &def.MaxPostRecords},
		{&s.limits.MaxPostBytes, &def.MaxPostBytes},
		{&s.limits.MaxTotalRecords, &def.MaxTotalRecords},
		{&s.limits.MaxTotalBytes, &def.MaxTotalBytes},
		{&s.limits.MaxRecordPayloadBytes, &def.MaxRecordPayloadBytes},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	s.configJSON = configJSON(s.limits)
	if s.grace == 0 {
		s.grace = 2 * time.Hour
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.retryAfter <= 0 {
		s.retryAfter = 30 * time.Second
	}
	if s.hbTimeout <= 0 {
		s.hbTimeout = 2 * time.Second
	}
	if cfg.PublicURL != "" {
		u, err := weave.ParseNodeURL(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("http: PublicURL %q must be an http(s) URL without query, e.g. https://sync.example.com/prefix", cfg.PublicURL)
		}
		s.public = true
		s.prefix = u.Prefix
		s.node = u.String()
		host, port, err := hawk.SplitHostPort(u.HostPort(), u.Scheme)
		if err != nil {
			return nil, fmt.Errorf("http: PublicURL %q: %v", cfg.PublicURL, err)
		}
		s.publicOrigin = origin{host: host, port: port, base: s.node}
	}
	var err error
	if s.cors, err = newCORS(cfg.CORSOrigins); err != nil {
		return nil, err
	}
	s.secrets = slices.Clone(cfg.Secrets)
	s.tokens = newTokenCache(tokenCacheSize)
	nonces := cfg.Hawk.NonceCacheSize
	if cfg.Hawk.DisableNonceCache {
		nonces = -1
	}
	s.hawk = hawk.NewVerifier(hawk.Options{Skew: cfg.Hawk.Skew, NonceCapacity: nonces, Now: s.now})
	return s, nil
}

// SetReady switches the node between serving and draining. While not ready,
// /__heartbeat__ and /__lbheartbeat__ answer 503 so load balancers stop
// sending traffic, and in-flight and straggling requests are still served.
// A new Server is ready.
func (s *Server) SetReady(ready bool) { s.draining.Store(!ready) }

// Ready reports whether the node is serving (not draining).
func (s *Server) Ready() bool { return !s.draining.Load() }

// request is the per-request state shared by the handlers.
type request struct {
	w          respWriter
	r          *http.Request
	uid        int64 // -1 until routed
	route      route
	collection string
	id         string
	now        time.Time
	// body is the request body when it was read (for the payload hash).
	body      []byte
	bodyRead  bool
	bodyHeld  int64 // bytes of the server's body budget held until the end
	bytesIn   int64
	errReason string
	pre       preconditions
	// next is an authenticated upload's handler, which serve runs once the
	// body budget has room for the body's first bytes (see serve), and
	// upload what it reads of the query string and headers.
	next   func(*Server, *request) error
	upload uploadParams
}

// setLastModified sets X-Last-Modified (also the floor of X-Weave-Timestamp).
func (rq *request) setLastModified(t weave.Timestamp) {
	rq.w.lastModified = t
	rq.w.setHeader("X-Last-Modified", string(appendTimestamp(make([]byte, 0, 16), t)))
}

// ServeHTTP implements http.Handler: the node's storage API and
// Dockerflow endpoints on their own, for a Server used without weave's
// route table (package routes mounts Storage, Heartbeat, … one by one).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, func(rq *request, path string) {
		switch {
		case strings.HasPrefix(path, "/1.5/"):
			s.storage(rq, path)
		case path == "/__heartbeat__":
			s.heartbeat(rq)
		case path == "/__lbheartbeat__":
			s.lbHeartbeat(rq)
		case path == "/__version__":
			s.versionInfo(rq)
		case path == "/":
			s.root(rq)
		default:
			s.writeError(rq, errNotFoundRoute)
		}
	})
}

// serve runs one request of the node: it recovers from panics, logs the
// request, and gives fn the path without the node's prefix.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, fn func(rq *request, path string)) {
	wall := time.Now()
	now := s.now()
	rq := &request{r: r, uid: -1, now: now}
	rq.w = respWriter{ResponseWriter: w, start: weave.TimestampAt(now), stamp: true}
	defer s.logRequest(rq, wall)
	// The body and what was parsed from it live until the handler is done.
	defer func() { s.bodies.release(rq.bodyHeld) }()
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.LogAttrs(r.Context(), levelError, "panic", attrMethod(r), attrPath(r),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			rq.errReason = fmt.Sprint("panic: ", p)
			if rq.w.status == 0 {
				rq.w.Header().Set("Retry-After", strconv.Itoa(int(s.retryAfter.Seconds())))
				rq.w.Header().Set("Content-Type", "application/json")
				rq.w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(&rq.w, "0")
			}
		}
	}()
	path := r.URL.EscapedPath()
	if s.prefix != "" && strings.HasPrefix(path, s.prefix) && (len(path) == len(s.prefix) || path[len(s.prefix)] == '/') {
		path = path[len(s.prefix):]
		if path == "" {
			path = "/"
		}
	}
	fn(rq, path)
	if rq.next != nil {
		// An upload waits for the body budget here, at the top of the
		// handler, rather than where it reads its body: a waiting
		// goroutine keeps its stack, and the GC halves a stack only while
		// less than a quarter of it is in use. An upload's goroutine has
		// grown to 16 KB in earlier requests of its connection (SQLite's
		// reads run deep); parked about 4 KB deep it keeps all of it,
		// parked here (about 3 KB) it shrinks to 8 KB. With 1,000
		// connections on SQLite, most of them uploads waiting, the
		// goroutine stacks took some 5 MiB less (docs/benchmarks.md,
		// target 5 in session 10). reserve is called here rather than in
		// a function of its own: the margin is a few hundred bytes.
		got, err := s.bodies.reserve(rq.r.Context(), upfront(rq.r)-rq.bodyHeld, rq.bodyHeld)
		rq.bodyHeld += got
		if err == nil {
			err = rq.next(s, rq)
		}
		if err != nil {
			s.writeError(rq, err)
		}
	}
}

// storage serves a /1.5/ path: a CORS preflight, or the storage API.
func (s *Server) storage(rq *request, path string) {
	if s.cors != nil && s.cors.handle(&rq.w, rq.r) {
		return // a preflight, answered
	}
	s.serveStorage(rq, path[len("/1.5/"):])
}

// endpoint is a handler of one of the node's endpoints.
func (s *Server) endpoint(fn func(rq *request, path string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, fn) })
}

// Storage serves the storage API 1.5 (/1.5/…, below the node's prefix or
// not); other paths get the API's 404.
func (s *Server) Storage() http.Handler {
	return s.endpoint(func(rq *request, path string) {
		if !strings.HasPrefix(path, "/1.5/") {
			s.writeError(rq, errNotFoundRoute)
			return
		}
		s.storage(rq, path)
	})
}

// Mount serves another API of the node, the token server, the way the
// storage API is served: the node's prefix stripped, CORS, the request
// log. The API sets its own X-Timestamp.
func (s *Server) Mount(h http.Handler) http.Handler {
	return s.endpoint(func(rq *request, path string) {
		if s.cors != nil && s.cors.handle(&rq.w, rq.r) {
			return // a preflight, answered
		}
		rq.w.stamp = false
		r := rq.r
		if path != r.URL.EscapedPath() {
			r = stripPath(r, path)
			rq.r = r
		}
		h.ServeHTTP(&rq.w, r)
	})
}

// Heartbeat serves /__heartbeat__, LBHeartbeat /__lbheartbeat__, Version
// /__version__ (Dockerflow), Root the node's root page and NotFound the
// API's 404 for anything else.
func (s *Server) Heartbeat() http.Handler {
	return s.endpoint(func(rq *request, _ string) { s.heartbeat(rq) })
}

func (s *Server) LBHeartbeat() http.Handler {
	return s.endpoint(func(rq *request, _ string) { s.lbHeartbeat(rq) })
}

func (s *Server) Version() http.Handler {
	return s.endpoint(func(rq *request, _ string) { s.versionInfo(rq) })
}

func (s *Server) Root() http.Handler { return s.endpoint(func(rq *request, _ string) { s.root(rq) }) }

func (s *Server) NotFound() http.Handler {
	return s.endpoint(func(rq *request, _ string) { s.writeError(rq, errNotFoundRoute) })
}

// stripPath returns a shallow copy of r whose URL path is path (the node's
// prefix removed), so a mounted handler sees the paths it was written for.
func stripPath(r *http.Request, escaped string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.RawPath = escaped
	if p, err := url.PathUnescape(escaped); err == nil {
		u.Path = p
	}
	r2.URL = &u
	return r2
}

// route identifies a storage endpoint.
type route int

const (
	routeNone route = iota
	routeUser
	routeStorage
	routeInfoCollections
	routeInfoQuota
	routeInfoUsage
	routeInfoCounts
	routeInfoConfiguration
	routeCollection
	routeItem
)

// allowed lists the methods of each route (for 405 and Allow).
var allowed = [...]string{
	routeUser:              "DELETE",
	routeStorage:           "DELETE",
	routeInfoCollections:   "GET, HEAD",
	routeInfoQuota:         "GET, HEAD",
	routeInfoUsage:         "GET, HEAD",
	routeInfoCounts:        "GET, HEAD",
	routeInfoConfiguration: "GET, HEAD",
	routeCollection:        "GET, HEAD, POST, DELETE",
	routeItem:              "GET, HEAD, PUT, DELETE",
}

func methodAllowed(rt route, method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return rt != routeUser && rt != routeStorage
	case http.MethodDelete:
		return rt == routeUser || rt == routeStorage || rt == routeCollection || rt == routeItem
	case http.MethodPost:
		return rt == routeCollection
	case http.MethodPut:
		return rt == routeItem
	}
	return false
}

// matchStorage parses the path after "/1.5/": a uid of 1–10 digits, then
// one of the endpoints. Names that fail validation do not match (404), as in
// both reference servers. uid is -1 unless the path starts with one, which
// it is also when the rest does not match (for the node's move marks).
func matchStorage(rest string) (uid int64, rt route, coll, id string, ok bool) {
	uid = -1
	uidStr, tail, hasTail := strings.Cut(rest, "/")
	if len(uidStr) == 0 || len(uidStr) > 10 {
		return
	}
	for i := 0; i < len(uidStr); i++ {
		if uidStr[i] < '0' || uidStr[i] > '9' {
			return
		}
	}
	uid, _ = strconv.ParseInt(uidStr, 10, 64)
	if !hasTail {
		return uid, routeUser, "", "", true
	}
	switch tail {
	case "storage":
		return uid, routeStorage, "", "", true
	case "info/collections":
		return uid, routeInfoCollections, "", "", true
	case "info/quota":
		return uid, routeInfoQuota, "", "", true
	case "info/collection_usage":
		return uid, routeInfoUsage, "", "", true
	case "info/collection_counts":
		return uid, routeInfoCounts, "", "", true
	case "info/configuration":
		return uid, routeInfoConfiguration, "", "", true
	}
	tail, found := strings.CutPrefix(tail, "storage/")
	if !found {
		return
	}
	collEsc, idEsc, hasID := strings.Cut(tail, "/")
	coll, err := unescape(collEsc)
	if err != nil || !validCollection(coll) {
		return
	}
	if !hasID {
		return uid, routeCollection, coll, "", true
	}
	// An id may not contain an unescaped "/" (it would be another path
	// segment); escaped as %2F it is fine.
	if strings.IndexByte(idEsc, '/') >= 0 {
		return
	}
	id, err = unescape(idEsc)
	if err != nil || !validID(id) {
		return
	}
	return uid, routeItem, coll, id, true
}

func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	return url.PathUnescape(s)
}

// serveStorage routes, authenticates and dispatches a /1.5/ request.
func (s *Server) serveStorage(rq *request, rest string) {
	uid, rt, coll, id, ok := matchStorage(rest)
	var backoff time.Duration
	if s.status != nil {
		// The node's state comes first: a moved user's token names the
		// wrong node whatever it asks, and a down node serves nothing. A
		// moved user gets 401 even from a down node, so that Firefox goes
		// straight to the new node instead of waiting out maintenance.
		if uid >= 0 && s.status.Moved(uid) {
			rq.uid = uid
			s.writeError(rq, errMoved)
			return
		}
		var down time.Duration
		if down, backoff = s.status.State(); down > 0 {
			s.writeError(rq, &apiError{status: http.StatusServiceUnavailable, reason: "node down", retryAfter: down})
			return
		}
	}
	if !ok {
		s.writeError(rq, errNotFoundRoute)
		return
	}
	rq.uid, rq.route, rq.collection, rq.id = uid, rt, coll, id
	noteRoute(rq.r, rt)
	r := rq.r
	if backoff > 0 {
		rq.w.Header().Set("X-Weave-Backoff", strconv.FormatInt(int64(math.Ceil(backoff.Seconds())), 10))
	}
	if !methodAllowed(rt, r.Method) {
		s.writeError(rq, methodNotAllowed(allowed[rt]))
		return
	}
	if r.ContentLength > s.limits.MaxRequestBytes {
		s.writeError(rq, errTooLarge)
		return
	}
	if err := s.authenticate(rq); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
			s.obs.AuthFailed(ae.cause)
		}
		s.writeError(rq, err)
		return
	}
	var err error
	if rq.pre, err = parsePreconditions(r.Header); err != nil {
		s.writeError(rq, err)
		return
	}
	switch rt {
	case routeUser, routeStorage:
		err = s.deleteStorage(rq)
	case routeInfoCollections:
		err = s.infoCollections(rq)
	case routeInfoQuota:
		err = s.infoQuota(rq)
	case routeInfoUsage:
		err = s.infoUsage(rq)
	case routeInfoCounts:
		err = s.infoCounts(rq)
	case routeInfoConfiguration:
		err = s.infoConfiguration(rq)
	case routeCollection:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			err = s.getCollection(rq)
		case http.MethodPost:
			if rq.upload, err = s.checkUpload(r); err == nil {
				rq.next = (*Server).postCollection // run by serve
			}
		case http.MethodDelete:
			err = s.deleteCollection(rq)
		}
	case routeItem:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			err = s.getItem(rq)
		case http.MethodPut:
			if rq.upload, err = s.checkUpload(r); err == nil {
				rq.next = (*Server).putItem // run by serve
			}
		case http.MethodDelete:
			err = s.deleteItem(rq)
		}
	}
	if err != nil {
		s.writeError(rq, err)
	}
}

// readBody reads the whole request body, at most max_request_bytes (413
// with code 17 beyond).
func (s *Server) readBody(rq *request) ([]byte, error) {
	if rq.bodyRead {
		return rq.body, nil
	}
	rq.bodyRead = true
	r := rq.r
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	// need makes the request's share of the body budget total bytes.
	need := func(total int64) error {
		got, err := s.bodies.reserve(r.Context(), total-rq.bodyHeld, rq.bodyHeld)
		rq.bodyHeld += got
		return err
	}
	if err := need(upfront(r)); err != nil { // nothing more if serve took it
		return nil, err
	}
	body := http.MaxBytesReader(&rq.w, r.Body, s.limits.MaxRequestBytes)
	buf, err := readGrowing(body, r.ContentLength, need)
	rq.bytesIn = int64(len(buf))
	if err != nil {
		return nil, readErr(err)
	}
	rq.body = buf
	return buf, nil
}

// upfront is how much of the body budget a request takes before any of
// its body is read: its announced length and room to see EOF, at most
// bodyUpfront; nothing without a body.
func upfront(r *http.Request) int64 {
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		return 0
	case r.ContentLength >= 0:
		return min(r.ContentLength+1, bodyUpfront) // +1: readGrowing's room to see EOF
	}
	return bodyUpfront
}

// initialBodyBuffer is the most readGrowing allocates before any byte of a
// body has arrived.
const initialBodyBuffer = 16 << 10

// readGrowing reads r to EOF into a buffer that grows as bytes arrive
// (doubling, so copies stay linear), never to more than the announced
// length hint (-1: unknown) until more than that actually arrives. A client
// that announces 2.6 MB and sends one byte costs initialBodyBuffer, not
// 2.6 MB: Content-Length is a claim, not a fact.
func readGrowing(r io.Reader, hint int64, need func(total int64) error) ([]byte, error) {
	size := int64(initialBodyBuffer)
	if hint >= 0 && hint < size {
		size = hint + 1 // room to see EOF without growing
	}
	if need == nil {
		need = func(int64) error { return nil }
	}
	if err := need(size); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, size)
	for {
		var n int
		var err error
		switch {
		case len(buf) < cap(buf):
			n, err = r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		case int64(len(buf)) == hint:
			// Exactly the announced length: only grow if more follows.
			var probe [1]byte
			n, err = r.Read(probe[:])
			buf = append(buf, probe[:n]...)
		default:
			next := int64(2 * cap(buf))
			if hint > int64(len(buf)) && next > hint {
				next = hint
			}
			if err := need(next); err != nil {
				return buf, err
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
			continue
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readErr classifies a body read failure: too large → 413; a client that
// hung up or sent a short body → 400.
func readErr(err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae // no room in the body budget
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return errTooLarge
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Timeouts cut off a client too slow to send its body.
		return &apiError{status: http.StatusRequestTimeout, reason: "reading body: client too slow"}
	}
	return badRequest(codeBadRequest, "reading body: %v", err)
}

// writeJSON sends a 200 (or status) with a JSON body.
func writeJSON(rq *request, status int, body []byte) {
	rq.w.setHeader("Content-Type", "application/json")
	rq.w.setHeader("Content-Length", strconv.Itoa(len(body)))
	rq.w.WriteHeader(status)
	if rq.r.Method != http.MethodHead {
		rq.w.Write(body)
	}
}
