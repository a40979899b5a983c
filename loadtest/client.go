package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/hawk"
)

// maxKeptBody bounds a response body the load generator parses; bodies it
// does not parse are drained without being kept.
const maxKeptBody = 256 << 20

// creds are the Sync credentials of one simulated user.
type creds struct {
	id, key   string
	endpoint  *url.URL // api_endpoint: <node>/1.5/<uid>
	host      string   // for Hawk: lower-case host and port of the endpoint
	port      string
	refreshAt time.Time // half of the token's lifetime, as clients do
	basic     string    // Sync 1.1: the Basic Authorization header instead of Hawk
}

// user is one simulated Firefox profile. Only the worker that acquired it
// from the pool touches it, so it needs no lock.
type user struct {
	index int

	// The storage uid of ModeDirect.
	uid int64
	// legacy users speak Sync 1.1 (Config.LegacyShare) with this account.
	legacy                      bool
	legacyName, legacyPW, email string
	signedUp                    bool
	// The FxA identity, fixed per user so that the token server maps it to
	// the same storage uid in every run (direct tokens carry it too).
	fxaUID      string
	clientState string // hex, 32 digits
	generation  int64
	keyID       string // X-KeyID: keys_changed_at + client state

	creds      *creds
	skew       int64 // server clock minus ours, seconds, for Hawk ts
	tokenSkew  int64 // the same for the token server (JWT iat/exp)
	limits     *weave.Limits
	collTS     map[string]string // collection → last-modified seen, for X-If-Unmodified-Since
	readyAt    time.Time         // honouring X-Weave-Backoff / Retry-After
	firstSeen  weave.Timestamp   // server time at the user's first response (verify)
	track      *tracker
	retryAfter bool // the last response asked to stop now (Retry-After)
}

type request struct {
	kind     Kind
	method   string
	path     string // below the endpoint, e.g. "/info/collections"
	query    string // encoded query without '?'
	body     []byte
	header   map[string]string
	expect   []int
	keepBody bool
	// check validates an expected response; its error is recorded as a
	// "body" failure of the request.
	check func(*response) error
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errCut ends a session when the run's grace period is over; the request in
// flight may or may not have been applied.
var errCut = errors.New("run stopped")

// statusError is a request that failed; the recorder has already counted it.
type statusError struct {
	kind    Kind
	status  int    // 0 when no response arrived
	label   string // as in KindStats.ErrorsByStatus
	detail  string
	backoff bool // the response carried Retry-After
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: %s %s", e.kind, e.label, e.detail)
}

// appliedUnknown reports whether the failed request may still have been
// applied by the server (no answer, a server error, or a malformed success);
// a 4xx means it was refused.
func appliedUnknown(err error) bool {
	if err == nil {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status == 0 || se.status >= 500 || se.label == errBody
	}
	return true
}

// newHTTPClient builds the client of a run. Its dialer refuses every
// connection to a non-loopback address unless remote targets are allowed,
// so neither a token server's api_endpoint nor DNS can lead the load
// elsewhere; proxies from the environment are ignored for the same reason.
func newHTTPClient(cfg Config) *http.Client {
	dialer := &net.Dialer{
		Timeout: cfg.HTTPTimeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			if cfg.AllowRemote {
				return nil
			}
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("loadtest: refusing to connect to non-loopback address %s (allow-remote is off)", address)
			}
			return nil
		},
	}
	idle := cfg.Concurrency + 4
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          idle * 2,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.HTTPTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.HTTPTimeout,
		// Sync clients do not follow redirects, and following one could
		// leave loopback.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// endpointCreds completes creds from an api_endpoint URL.
func endpointCreds(id, key, endpoint string, allowRemote bool) (*creds, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bad api_endpoint %q", endpoint)
	}
	if !allowRemote && !IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("api_endpoint %q is not a loopback address (allow-remote is off)", endpoint)
	}
	host, port, err := hawk.SplitHostPort(u.Host, u.Scheme)
	if err != nil {
		return nil, fmt.Errorf("bad api_endpoint %q: %v", endpoint, err)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return &creds{id: id, key: key, endpoint: u, host: host, port: port}, nil
}

// do sends one storage request for u with Hawk credentials, the way the
// reference client does: on a 401 it re-measures the clock skew from
// X-Weave-Timestamp (and in token-server mode fetches a new token) and tries
// once more. It records the outcome and returns an error for anything the
// session model did not expect.
func (r *runner) do(ctx context.Context, u *user, req request) (*response, error) {
	if u.legacy {
		req.kind = legacyKind(req.kind)
	}
	for attempt := 0; ; attempt++ {
		if err := r.ensureCreds(ctx, u); err != nil {
			return nil, err
		}
		start := time.Now()
		resp, err := r.send(ctx, u, req)
		lat := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return nil, errCut
			}
			label := errTransport
			if isTimeout(err) {
				label = errTimeout
			}
			r.rec.record(req.kind, 0, lat, label, err.Error())
			return nil, &statusError{kind: req.kind, label: label, detail: err.Error()}
		}
		// Only a 401 re-measures the skew: some servers (go-syncstorage)
		// echo a collection's X-Last-Modified as X-Weave-Timestamp, which
		// is not their clock.
		r.noteServerTime(u, resp.header.Get("X-Weave-Timestamp"), false, resp.status == http.StatusUnauthorized)
		r.noteBackoff(u, resp)
		if resp.status == http.StatusUnauthorized && attempt == 0 {
			r.rec.authRetries.Add(1)
			if r.cfg.Mode == ModeTokenServer || u.legacy {
				u.creds = nil // a node answers 401 when the user moved: ask again
			}
			continue
		}
		if !contains(req.expect, resp.status) {
			label := strconv.Itoa(resp.status)
			detail := fmt.Sprintf("%s %s: %s", req.method, req.path, bytes.TrimSpace(resp.body))
			r.rec.record(req.kind, resp.status, lat, label, detail)
			return resp, &statusError{kind: req.kind, status: resp.status, label: label, detail: detail, backoff: u.retryAfter}
		}
		if req.check != nil {
			if err := req.check(resp); err != nil {
				detail := fmt.Sprintf("%s %s: %v", req.method, req.path, err)
				r.rec.record(req.kind, resp.status, lat, errBody, detail)
				return resp, &statusError{kind: req.kind, status: resp.status, label: errBody, detail: detail}
			}
		}
		r.rec.record(req.kind, resp.status, lat, "", "")
		return resp, nil
	}
}

func (r *runner) send(ctx context.Context, u *user, req request) (*response, error) {
	c := u.creds
	target := c.endpoint.Path + req.path
	if req.query != "" {
		target += "?" + req.query
	}
	full := c.endpoint.Scheme + "://" + c.endpoint.Host + target
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, full, body)
	if err != nil {
		return nil, err
	}
	if c.basic != "" {
		hr.Header.Set("Authorization", c.basic)
	} else {
		// Sign the request target exactly as it goes on the wire.
		hr.Header.Set("Authorization", hawk.Authorization(c.key, c.id, hawk.Artifacts{
			TS:            strconv.FormatInt(time.Now().Unix()+u.skew, 10),
			Method:        req.method,
			RequestTarget: hr.URL.RequestURI(),
			Host:          c.host,
			Port:          c.port,
		}))
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	if req.kind == KindLegacyGet && req.method == http.MethodGet {
		// The UXP client reads collections as newline-separated records.
		hr.Header.Set("Accept", "application/newlines")
	}
	hr.Header.Set("X-Confirm-Delete", "1")
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	r.rec.bytesSent.Add(int64(len(req.body)))
	resp, err := r.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &response{status: resp.StatusCode, header: resp.Header}
	// Error bodies are kept (small) so the report can show a sample.
	if req.keepBody || resp.StatusCode >= 300 {
		limit := int64(maxKeptBody)
		if resp.StatusCode >= 300 {
			limit = 4096
		}
		out.body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
		r.rec.bytesReceived.Add(int64(len(out.body)))
		if err != nil {
			return nil, err
		}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	r.rec.bytesReceived.Add(n)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// noteServerTime re-measures the clock skew (from the token server, or when
// measure is set) and remembers the user's first server time (the start of
// what verification reads back).
func (r *runner) noteServerTime(u *user, v string, tokenServer, measure bool) {
	if v == "" {
		return
	}
	ts, err := weave.ParseTimestamp(v)
	if err != nil {
		return
	}
	skew := int64(ts)/1000 - time.Now().Unix()
	if tokenServer {
		u.tokenSkew = skew
		return
	}
	if measure {
		u.skew = skew
	}
	if u.firstSeen == 0 {
		u.firstSeen = ts
	}
}

// noteBackoff honours X-Weave-Backoff (and the token server's X-Backoff) and
// Retry-After per user, bounded by MaxBackoff: the user starts no session
// before the time is up. Retry-After also ends the current session.
func (r *runner) noteBackoff(u *user, resp *response) {
	u.retryAfter = false
	now := time.Now()
	wait := func(v string) (time.Duration, bool) {
		v = strings.TrimSpace(v)
		var d time.Duration
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if !(f > 0) { // also NaN
				return 0, false
			}
			d = time.Duration(min(f, r.cfg.MaxBackoff.Seconds()) * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil { // Retry-After may be a date
			d = t.Sub(now)
		}
		if d <= 0 {
			return 0, false
		}
		return min(d, r.cfg.MaxBackoff), true
	}
	extend := func(d time.Duration) {
		if t := now.Add(d); t.After(u.readyAt) {
			r.rec.backoffWaitMs.Add(t.Sub(maxTime(u.readyAt, now)).Milliseconds())
			u.readyAt = t
		}
	}
	for _, h := range []string{"X-Weave-Backoff", "X-Backoff"} {
		if d, ok := wait(resp.header.Get(h)); ok {
			r.rec.weaveBackoffs.Add(1)
			extend(d)
			break
		}
	}
	if resp.status == http.StatusServiceUnavailable || resp.status == http.StatusConflict || resp.status == http.StatusTooManyRequests {
		if d, ok := wait(resp.header.Get("Retry-After")); ok {
			r.rec.retryAfters.Add(1)
			extend(d)
			u.retryAfter = true
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
