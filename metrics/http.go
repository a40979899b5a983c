package metrics

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Middleware counts every request next serves: weave_http_requests_total
// and weave_http_request_duration_seconds by endpoint, method and status,
// the body bytes in and out, and the requests in flight.
//
// The endpoint label is a template, never a raw path, so uids, collection
// names and ids cannot blow up the number of series: the route pattern a
// ServeMux inside next matched (http.Request.Pattern, which the mux sets on
// the request it was given, so it is visible here once next returns) when
// it names a precise route, otherwise the Sync path templates of
// EndpointOf, otherwise "other".
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
			m.observe(endpointOf(r), r.Method, status, time.Since(start), in, rec.written)
		}()
		next.ServeHTTP(rec, r)
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
func endpointOf(r *http.Request) string {
	if p := r.Pattern; p != "" {
		// "GET example.com/x/{id}" → "example.com/x/{id}": the method is a
		// label of its own.
		if i := strings.IndexByte(p, ' '); i >= 0 {
			p = strings.TrimLeft(p[i+1:], " \t")
		}
		// A subtree pattern ("/1.5/", "/{rest...}") only says which
		// handler got the request, which then routed it further itself:
		// the path templates say more.
		if !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "...}") {
			return p
		}
	}
	return EndpointOf(r.URL.EscapedPath())
}

// EndpointOf maps a request path to its endpoint template: the Sync 1.5
// storage API ("/1.5/{uid}/storage/{collection}/{id}", "/1.5/{uid}/info/
// collections", …, also behind a path prefix such as "/sync/1.5/…"), the
// token server ("/1.0/{application}/{version}"), the operational endpoints
// (/__heartbeat__, /__lbheartbeat__, /__version__, /metrics,
// /__dashboard__ and everything under it) and "/". Anything else is
// "other".
func EndpointOf(path string) string {
	if path == "/" || path == "" {
		return "/"
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	switch last := segs[len(segs)-1]; last {
	case "__heartbeat__", "__lbheartbeat__", "__version__", "metrics":
		if len(segs) <= 2 { // with at most one prefix segment
			return "/" + last
		}
	}
	for i, s := range segs {
		switch s {
		case "__dashboard__":
			return "/__dashboard__"
		case "1.5":
			return storageTemplate(segs[i+1:])
		case "1.0":
			if rest := segs[i+1:]; len(rest) == 2 && rest[1] != "storage" {
				return "/1.0/{application}/{version}"
			}
			return legacyStorageTemplate(segs[i+1:])
		case "1.1", "1":
			return legacyStorageTemplate(segs[i+1:])
		case "user":
			return legacyUserTemplate(segs[i+1:])
		case "misc":
			if len(segs[i+1:]) == 2 && segs[i+2] == "captcha_html" {
				return "/misc/1.0/captcha_html"
			}
			return "other"
		case "weave-password-reset":
			if i == len(segs)-1 {
				return "/weave-password-reset"
			}
			return "other"
		}
		if i >= 1 {
			// Weave's node prefixes are a single segment deep at most
			// in practice; looking further only costs time on junk.
			break
		}
	}
	return "other"
}

// legacyStorageTemplate names Storage API 1.1 paths (versions 1.1, 1.0
// and 1 share the "/1.1/" templates).
func legacyStorageTemplate(rest []string) string {
	if len(rest) < 2 {
		return "other"
	}
	switch {
	case rest[1] == "info" && len(rest) == 3:
		switch rest[2] {
		case "collections", "quota", "collection_usage", "collection_counts":
			return "/1.1/{user}/info/" + rest[2]
		}
	case rest[1] == "storage":
		switch len(rest) {
		case 2:
			return "/1.1/{user}/storage"
		case 3:
			return "/1.1/{user}/storage/{collection}"
		case 4:
			return "/1.1/{user}/storage/{collection}/{id}"
		}
	}
	return "other"
}

// legacyUserTemplate names User API 1.0 paths.
func legacyUserTemplate(rest []string) string {
	if len(rest) < 2 || (rest[0] != "1.0" && rest[0] != "1") {
		return "other"
	}
	switch tail := strings.Join(rest[2:], "/"); tail {
	case "":
		return "/user/1.0/{user}"
	case "node/weave", "password", "email", "password_reset":
		return "/user/1.0/{user}/" + tail
	}
	return "other"
}

func storageTemplate(rest []string) string {
	if len(rest) == 0 || !isUID(rest[0]) {
		return "other"
	}
	switch {
	case len(rest) == 1:
		return "/1.5/{uid}"
	case rest[1] == "storage":
		switch len(rest) {
		case 2:
			return "/1.5/{uid}/storage"
		case 3:
			return "/1.5/{uid}/storage/{collection}"
		case 4:
			return "/1.5/{uid}/storage/{collection}/{id}"
		}
	case rest[1] == "info" && len(rest) == 3:
		switch rest[2] {
		case "collections", "quota", "collection_usage", "collection_counts", "configuration":
			return "/1.5/{uid}/info/" + rest[2]
		}
	}
	return "other"
}

func isUID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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
