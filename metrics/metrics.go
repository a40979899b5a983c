// Package metrics is weave's Prometheus instrumentation: HTTP middleware,
// the counters the token server and storage API report into, a memcache
// observer, node and connection-pool collectors, and collectors of the
// database servers' own statistics (MariaDB/MySQL, PostgreSQL, SQLite).
//
// Everything lives in one Metrics value with its own registry, so that
// several servers (or tests) in one process never share state.
//
// Collection never touches a Sync request's path: the observer methods
// only update in-memory counters, and the database and node collectors run
// at scrape time with a deadline, serve cached results in between, and
// report their failures in weave_collector_errors_total instead of
// returning them.
package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options tune a Metrics. Zero values take the defaults given per field.
type Options struct {
	// LatencyBuckets are the upper bounds (seconds) of the request latency
	// histogram (default 1 ms … 30 s, roughly ×2.5 apart).
	LatencyBuckets []float64
	// PollTimeout bounds one poll of a database server or of the node list,
	// and so how long a scrape waits for it (default 1 s). A poll still
	// running at the deadline is abandoned and counted as an error.
	PollTimeout time.Duration
	// PollInterval is how long a database poll's result is reused by later
	// scrapes (default 5 s), so that fast scrapers (the dashboard samples
	// every 2 s) do not turn into database load.
	PollInterval time.Duration
	// NodePollInterval is the same for the node list, whose live-user
	// counts cost a scan of the token database (default 30 s).
	NodePollInterval time.Duration
	// StaleAfter drops cached poll results older than this, so a database
	// that stopped answering does not show frozen counters forever
	// (default 2 min).
	StaleAfter time.Duration
	// NoRuntimeCollectors leaves out the Go runtime and process collectors
	// (tests that compare exact output).
	NoRuntimeCollectors bool
}

func (o *Options) defaults() {
	if len(o.LatencyBuckets) == 0 {
		o.LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.NodePollInterval <= 0 {
		o.NodePollInterval = 30 * time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 2 * time.Minute
	}
}

// Metrics holds every weave metric and the registry they are exposed from.
// All methods are safe for concurrent use, and the observer methods are
// safe on a nil *Metrics (they do nothing), so packages can hold an
// optional *Metrics without checks.
type Metrics struct {
	opts Options
	reg  *prometheus.Registry

	// HTTP middleware.
	requests *prometheus.CounterVec   // endpoint, method, status
	latency  *prometheus.HistogramVec // endpoint, method, class
	bytesIn  *prometheus.CounterVec   // endpoint
	bytesOut *prometheus.CounterVec   // endpoint
	inFlight prometheus.Gauge

	// Token server and storage API.
	tokensIssued   prometheus.Counter
	usersAllocated prometheus.Counter
	tokenRefusals  *prometheus.CounterVec // reason
	hawkFailures   *prometheus.CounterVec // reason
	batchesOpened  prometheus.Counter
	batchesDone    prometheus.Counter
	batchRecords   prometheus.Histogram
	batchBytes     prometheus.Histogram
	recordsWritten prometheus.Counter
	bytesWritten   prometheus.Counter
	recordsRead    prometheus.Counter
	bytesRead      prometheus.Counter
	conflicts      *prometheus.CounterVec // status
	movesResumed   *prometheus.CounterVec // result

	legacy *legacyMetrics
	cache  *cacheMetrics
	push   *pushMetrics
}

// New returns a Metrics with its own registry holding the Go runtime and
// process collectors and every weave metric.
func New(opts Options) *Metrics {
	opts.defaults()
	m := &Metrics{opts: opts, reg: prometheus.NewRegistry()}
	if !opts.NoRuntimeCollectors {
		m.reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	f := factory{m.reg}

	m.requests = f.counterVec("weave_http_requests_total",
		"HTTP requests answered, by endpoint template, method and status code.",
		"endpoint", "method", "status")
	m.latency = f.histogramVec("weave_http_request_duration_seconds",
		"Time from the request's arrival to the end of its response, by endpoint template, method and status class (2xx…5xx).",
		opts.LatencyBuckets, "endpoint", "method", "class")
	m.bytesIn = f.counterVec("weave_http_request_body_bytes_total",
		"Request body bytes read by handlers, by endpoint template.", "endpoint")
	m.bytesOut = f.counterVec("weave_http_response_body_bytes_total",
		"Response body bytes written, by endpoint template.", "endpoint")
	m.inFlight = f.gauge("weave_http_requests_in_flight", "Requests being served.")

	m.tokensIssued = f.counter("weave_tokens_issued_total", "Storage tokens issued by the token server.")
	m.usersAllocated = f.counter("weave_token_users_allocated_total",
		"Token requests that allocated a new uid (new account, client-state change, or a move off a node).")
	m.tokenRefusals = f.counterVec("weave_token_refusals_total",
		"Token requests refused, by reason (see TokenRefused).", "reason")
	m.hawkFailures = f.counterVec("weave_hawk_failures_total",
		"Storage requests that failed Hawk authentication, by reason (see HawkFailed).", "reason")
	m.batchesOpened = f.counter("weave_batches_opened_total", "Batch uploads opened.")
	m.batchesDone = f.counter("weave_batches_committed_total", "Batch uploads committed.")
	m.batchRecords = f.histogram("weave_batch_committed_records",
		"Records applied per committed batch.",
		[]float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000})
	m.batchBytes = f.histogram("weave_batch_committed_bytes",
		"Payload bytes applied per committed batch.",
		prometheus.ExponentialBuckets(1024, 4, 10)) // 1 KiB … 256 MiB
	m.recordsWritten = f.counter("weave_records_written_total", "BSOs created or updated by storage writes.")
	m.bytesWritten = f.counter("weave_record_bytes_written_total", "Payload bytes of BSOs written.")
	m.recordsRead = f.counter("weave_records_read_total", "BSOs returned by storage reads.")
	m.bytesRead = f.counter("weave_record_bytes_read_total", "Payload bytes of BSOs returned by storage reads.")
	m.conflicts = f.counterVec("weave_conflicts_total",
		"Writes refused for a conflict, by status: 412 (X-If-Unmodified-Since failed), 409 or 503 (concurrent write, retry later).",
		"status")
	m.movesResumed = f.counterVec("weave_user_moves_resumed_total",
		"Interrupted user moves (their mover died) that this process took over, by result: finished or failed (retried later).",
		"result")
	m.legacy = newLegacyMetrics(f)
	m.cache = newCacheMetrics(f)
	m.push = newPushMetrics(f)

	// Series that should read 0 rather than be absent before the first
	// event, so rate() and the dashboard see them from the start.
	for _, s := range []string{"409", "412", "503"} {
		m.conflicts.WithLabelValues(s)
	}
	for _, s := range []string{"finished", "failed"} {
		m.movesResumed.WithLabelValues(s)
	}
	return m
}

// Registry is the registry every weave metric is registered in; other
// packages may register their own collectors there.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Gatherer returns the registry as a prometheus.Gatherer (what the
// dashboard's sampler reads).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in the Prometheus exposition format, for
// /metrics. It applies no access control: see RequireToken.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// One failing collector must not cost the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
		// A burst of scrapers should not run unbounded collections.
		MaxRequestsInFlight: 4,
		Registry:            m.reg,
	})
}

// RequireToken protects next with an admin token given as
// "Authorization: Bearer <token>": a wrong or missing token gets 401. An
// empty token disables next entirely (404), so that nothing is ever served
// openly by mistake.
func RequireToken(token string, next http.Handler) http.Handler {
	want := NewTokenMatcher(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			http.NotFound(w, r)
			return
		}
		got, ok := BearerToken(r)
		if !ok || !want.Match(got) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weave admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TokenMatcher compares offered tokens with a secret one in time that
// depends on neither the secret's length nor its content: both sides are
// hashed to fixed-length digests first, and the digests are compared in
// constant time (subtle.ConstantTimeCompare alone returns at once when the
// lengths differ, which tells an attacker the token's length).
type TokenMatcher struct{ want [sha256.Size]byte }

// NewTokenMatcher returns a matcher for token.
func NewTokenMatcher(token string) TokenMatcher {
	return TokenMatcher{want: sha256.Sum256([]byte(token))}
}

// Match reports whether got is the token.
func (m TokenMatcher) Match(got string) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], m.want[:]) == 1
}

// BearerToken returns the credentials of an "Authorization: Bearer …"
// header (the scheme is case-insensitive).
func BearerToken(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// factory builds and registers metrics; registration cannot fail for the
// fixed set New creates, so it panics on programming errors only.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
