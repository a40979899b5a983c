package http

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/weave-sync/weave"
)

const levelError = slog.LevelError

// respWriter records what the request log needs and stamps
// X-Weave-Timestamp on every storage response just before the header goes
// out, so that no code path (errors, 304s, panics) can forget it.
type respWriter struct {
	http.ResponseWriter
	// start is the request's arrival time; X-Weave-Timestamp is
	// max(start, X-Last-Modified), which on writes equals T.
	start        weave.Timestamp
	lastModified weave.Timestamp
	stamp        bool // set X-Weave-Timestamp (not for the token server)
	status       int
	written      int64
	// vals backs the values of the headers the server sets on every
	// response (setHeader), so that each costs no []string of its own.
	vals  [5]string
	nvals int
}

// setHeader is Header().Set for a canonical key, its value stored in vals
// while there is room.
func (w *respWriter) setHeader(key, v string) {
	h := w.Header()
	if n := w.nvals; n < len(w.vals) {
		w.vals[n] = v
		h[key] = w.vals[n : n+1 : n+1]
		w.nvals++
		return
	}
	h.Set(key, v)
}

func (w *respWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.stamp {
		ts := max(w.start, w.lastModified)
		w.setHeader("X-Weave-Timestamp", string(appendTimestamp(make([]byte, 0, 16), ts)))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush supports streaming handlers behind the writer (the token server).
func (w *respWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is passed through for completeness; storage never hijacks.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("http: hijacking not supported")
}

func attrMethod(r *http.Request) slog.Attr { return slog.String("method", r.Method) }

// attrPath logs the path without the query: query values (ids, offsets,
// batch ids) are not needed to follow a request and may be long.
func attrPath(r *http.Request) slog.Attr { return slog.String("path", r.URL.Path) }

func attrErr(err error) slog.Attr { return slog.String("err", err.Error()) }

// logRequest writes the one line per request. It never logs the
// Authorization header or bodies.
func (s *Server) logRequest(rq *request, start time.Time) {
	if !s.log.Enabled(rq.r.Context(), slog.LevelInfo) {
		return
	}
	status := rq.w.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		attrMethod(rq.r),
		attrPath(rq.r),
		slog.Int("status", status),
		slog.Duration("duration", s.since(start)),
		slog.Int64("bytes_in", rq.bytesIn),
		slog.Int64("bytes_out", rq.w.written),
	)
	if rq.uid >= 0 {
		attrs = append(attrs, slog.Int64("uid", rq.uid))
	}
	if rq.errReason != "" {
		attrs = append(attrs, slog.String("err", rq.errReason))
	}
	s.log.LogAttrs(rq.r.Context(), slog.LevelInfo, "request", attrs...)
}

// since measures a duration with the wall clock even when tests replace
// the server's clock: logged durations are real.
func (s *Server) since(start time.Time) time.Duration { return time.Since(start) }
