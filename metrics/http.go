package metrics

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	weavehttp "github.com/weave-sync/weave/http"
)

// Middleware counts every request next serves: weave_http_requests_total
// and weave_http_request_duration_seconds by endpoint, method and status,
// the body bytes in and out, and the requests in flight.
//
// The endpoint label is a route's name, never a raw path, so uids,
// collection names and ids cannot blow up the number of series: the name
// the route table (package routes) and the handlers that route further
// gave the route in the request's route note (weavehttp.WithRouteNote);
// else the route pattern a ServeMux inside next matched
// (http.Request.Pattern, visible here once next returns) when it names a
// precise route; else "other".
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		rec := &recorder{ResponseWriter: w}
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		outer := r
		r, note := weavehttp.WithRouteNote(r)
		done := false
		defer func() {
			m.inFlight.Dec()
			status := rec.status
			if status == 0 {
				if done {
					// net/http answers 200 for a handler that wrote nothing.
					status = http.StatusOK
				} else {
					// next panicked before answering: net/http will drop the
					// connection, which a client sees as a server error.
					status = http.StatusInternalServerError
				}
			}
			var in int64
			if body != nil {
				in = body.n
			}
			m.observe(endpointOf(r, note), r.Method, status, time.Since(start), in, rec.written)
		}()
		next.ServeHTTP(rec, r)
		// As without the note: handlers outside see the pattern a mux
		// inside matched.
		outer.Pattern = r.Pattern
		done = true
	})
}

func (m *Metrics) observe(endpoint, method string, status int, d time.Duration, in, out int64) {
	method = normMethod(method)
	code, class := statusLabels(status)
	m.requests.WithLabelValues(endpoint, method, code).Inc()
	m.latency.WithLabelValues(endpoint, method, class).Observe(d.Seconds())
	if in > 0 {
		m.bytesIn.WithLabelValues(endpoint).Add(float64(in))
	}
	if out > 0 {
		m.bytesOut.WithLabelValues(endpoint).Add(float64(out))
	}
}

func normMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return m
	}
	return "OTHER"
}

func statusLabels(s int) (code, class string) {
	if s < 100 || s > 599 {
		return "other", "other"
	}
	return strconv.Itoa(s), string(rune('0'+s/100)) + "xx"
}

// endpointOf picks the endpoint label of a served request.
func endpointOf(r *http.Request, note *weavehttp.RouteNote) string {
	if e := note.Endpoint(); e != "" {
		return e
	}
	if p := r.Pattern; p != "" {
		// "GET example.com/x/{id}" → "example.com/x/{id}": the method is a
		// label of its own.
		if i := strings.IndexByte(p, ' '); i >= 0 {
			p = strings.TrimLeft(p[i+1:], " \t")
		}
		// A subtree pattern ("/1.5/", "/{rest...}") only says which
		// handler got the request, which then routed it further itself.
		if !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "...}") {
			return p
		}
	}
	return "other"
}

// recorder notes the status and body size of a response.
type recorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *recorder) WriteHeader(code int) {
	// 1xx are interim answers (100 Continue, 103 Early Hints); the final
	// status comes later.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the writer's other features
// (deadlines, full duplex).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush and Hijack are implemented directly too, because handlers below
// (weave's own among them) test for http.Flusher with a type assertion.
func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// countingBody counts the request body bytes the handler reads.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// HTTPObserver is what the storage API reports (weavehttp.Observer),
// counted here.
func (m *Metrics) HTTPObserver() weavehttp.Observer { return httpObserver{m} }

type httpObserver struct{ m *Metrics }

func (o httpObserver) AuthFailed(err error) {
	switch {
	case errors.Is(err, weavehttp.ErrMissingAuthorization):
		o.m.HawkFailed(HawkMissing)
	case errors.Is(err, weavehttp.ErrUIDMismatch):
		o.m.HawkFailed(HawkUIDMismatch)
	default:
		o.m.HawkFailed(HawkReason(err))
	}
}
func (o httpObserver) BatchOpened()                  { o.m.BatchOpened() }
func (o httpObserver) BatchCommitted(n int, b int64) { o.m.BatchCommitted(n, b) }
func (o httpObserver) RecordsWritten(n int, b int64) { o.m.RecordsWritten(n, b) }
func (o httpObserver) RecordsRead(n int, b int64)    { o.m.RecordsRead(n, b) }
func (o httpObserver) Conflict(status int)           { o.m.Conflict(status) }
