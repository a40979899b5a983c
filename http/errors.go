package http

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/weave-sync/weave"
)

// Weave error codes (storage-1.5.md §10) carried as bare JSON integers in
// error bodies.
const (
	codeUnknown      = 0
	codeBadRequest   = 1 // illegal protocol: bad header, query or commit value
	codeInvalidJSON  = 6
	codeInvalidBSO   = 8
	codeOverQuota    = 14
	codeSizeExceeded = 17
)

// apiError is an error with its HTTP rendering. Handlers return these for
// protocol errors; store errors are mapped in writeError.
type apiError struct {
	status int
	code   int
	reason string // for the request log; never sent to the client
	// lastModified, when non-nil, is sent as X-Last-Modified (412, 304).
	lastModified *weave.Timestamp
	// retryAfter, when > 0, is sent as Retry-After (503).
	retryAfter time.Duration
	// quotaRemaining, when non-nil, is sent as X-Weave-Quota-Remaining.
	quotaRemaining *int64
	// allow lists methods for a 405.
	allow string
	// challenge is the WWW-Authenticate value of a 401.
	challenge string
	// cause is the underlying error of a 401, for Observer.AuthFailed.
	cause error
}

func (e *apiError) Error() string {
	if e.reason != "" {
		return e.reason
	}
	return http.StatusText(e.status)
}

func badRequest(code int, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, reason: fmt.Sprintf(format, args...)}
}

var (
	errNotFoundRoute = &apiError{status: http.StatusNotFound, reason: "no such resource"}
	errNotAcceptable = &apiError{status: http.StatusNotAcceptable, reason: "unsupported Accept"}
	errUnsupportedCT = &apiError{status: http.StatusUnsupportedMediaType, reason: "unsupported Content-Type"}
	errTooLarge      = &apiError{status: http.StatusRequestEntityTooLarge, code: codeSizeExceeded, reason: "request body too large"}
	// errMoved answers a user moved off this node: a new token leads to
	// the new one.
	errMoved = &apiError{status: http.StatusUnauthorized, reason: "user moved to another node", challenge: "Hawk"}
)

func methodNotAllowed(allow string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, reason: "method not allowed", allow: allow}
}

// Retry-After values. Conflicts clear within milliseconds; 10 s matches both
// reference servers (storage-1.5.md §18 #1).
const (
	conflictRetryAfter = 10 * time.Second
)

// toAPIError maps any error to its HTTP rendering. Unexpected errors become
// 503 (never 500: Firefox treats 503 + Retry-After as "back off", which is
// the right reaction to a failing database) and are flagged for logging.
func (s *Server) toAPIError(err error) (e *apiError, unexpected bool) {
	var ae *apiError
	var be *bodyError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.As(err, &be):
		return &apiError{status: http.StatusBadRequest, code: be.code, reason: be.reason}, false
	case errors.As(err, &mb):
		return errTooLarge, false
	}
	switch weave.ErrorKindOf(err) {
	case weave.KindPrecondition:
		var pf *weave.PreconditionFailedError
		errors.As(err, &pf)
		m := pf.Modified
		return &apiError{status: http.StatusPreconditionFailed, reason: "precondition failed", lastModified: &m}, false
	case weave.KindNotFound:
		return &apiError{status: http.StatusNotFound, reason: "not found"}, false
	case weave.KindInvalid:
		// An unknown or expired batch, an offset this store did not issue.
		return badRequest(codeUnknown, "%v", err), false
	case weave.KindOverQuota:
		// Firefox recognises over-quota only as 400 with body 14 (§13, §18 #2).
		e := &apiError{status: http.StatusBadRequest, code: codeOverQuota, reason: "over quota"}
		var oq *weave.OverQuotaError
		if errors.As(err, &oq) {
			e.quotaRemaining = &oq.Left
		}
		return e, false
	case weave.KindTooLarge:
		// A record within the published limits that the database refuses
		// for its size (max_allowed_packet): the SPEC's 413, "larger than
		// the server is willing to store", with the body of a request over
		// max_request_bytes. Retrying the same request cannot help, so no
		// 503 and no Retry-After.
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeSizeExceeded, reason: "too large for the database: " + err.Error()}, false
	case weave.KindConflict:
		return &apiError{status: http.StatusServiceUnavailable, reason: "write conflict", retryAfter: conflictRetryAfter}, false
	case weave.KindStorageFull:
		return &apiError{status: http.StatusServiceUnavailable, reason: "storage full", retryAfter: s.retryAfter}, false
	case weave.KindUnavailable:
		var ue *weave.UnavailableError
		if errors.As(err, &ue) {
			ra := ue.RetryAfter
			if ra <= 0 {
				ra = s.retryAfter
			}
			return &apiError{status: http.StatusServiceUnavailable, reason: "unavailable: " + ue.Reason, retryAfter: ra}, false
		}
		return &apiError{status: http.StatusServiceUnavailable, reason: "storage unavailable", retryAfter: s.retryAfter}, false
	case weave.KindCanceled:
		// The client went away; nobody reads this response.
		return &apiError{status: http.StatusServiceUnavailable, reason: "request canceled", retryAfter: s.retryAfter}, false
	}
	return &apiError{status: http.StatusServiceUnavailable, reason: "internal error", retryAfter: s.retryAfter}, true
}

// writeError renders err: a bare JSON integer body with the mapped status
// and headers. Unexpected errors are logged (without request data that could
// be sensitive).
func (s *Server) writeError(rq *request, err error) {
	e, unexpected := s.toAPIError(err)
	w := &rq.w
	kind := weave.ErrorKindOf(err)
	switch {
	case e.status == http.StatusPreconditionFailed:
		s.obs.Conflict(http.StatusPreconditionFailed)
	case kind == weave.KindConflict:
		s.obs.Conflict(e.status)
	}
	if unexpected {
		s.log.LogAttrs(rq.r.Context(), levelError, "unexpected error", attrMethod(rq.r), attrPath(rq.r), attrErr(err))
	}
	if kind == weave.KindStorageFull {
		s.logStorageFull(rq, err)
	}
	rq.errReason = e.Error()
	if unexpected {
		rq.errReason = err.Error()
	}
	h := w.Header()
	if e.lastModified != nil {
		rq.setLastModified(*e.lastModified)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.retryAfter.Seconds())), 10))
	}
	if e.quotaRemaining != nil {
		h.Set("X-Weave-Quota-Remaining", formatKB(*e.quotaRemaining))
	}
	if e.allow != "" {
		h.Set("Allow", e.allow)
	}
	if e.challenge != "" {
		h.Set("WWW-Authenticate", e.challenge)
	}
	if e.status == http.StatusNotModified {
		w.WriteHeader(e.status)
		return
	}
	body := strconv.AppendInt(make([]byte, 0, 4), int64(e.code), 10)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	w.Write(body)
}

// storageFullLogEvery spaces the log lines of a full database.
const storageFullLogEvery = 10 * time.Second

// logStorageFull tells the operator, at most once per storageFullLogEvery,
// that writes are being refused for lack of space.
func (s *Server) logStorageFull(rq *request, err error) {
	now := time.Now().UnixNano()
	last := s.fullLogged.Load()
	if last != 0 && now-last < int64(storageFullLogEvery) || !s.fullLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.LogAttrs(rq.r.Context(), levelError,
		"database storage full: writes get 503 + Retry-After until its disk has room again (reads still served); free space or grow the volume",
		attrMethod(rq.r), attrPath(rq.r), attrErr(err))
}

// formatKB renders a byte count as kilobytes with two decimals, the form of
// X-Weave-Quota-Remaining.
func formatKB(bytes int64) string {
	return strconv.FormatFloat(float64(bytes)/1024, 'f', 2, 64)
}
