// Package dashboard is weave's operator dashboard: one web page, served
// from the binary at /__dashboard__, with live graphs of request rate,
// latency percentiles, errors, Sync activity, node users, cache hit rate
// and each database's health and server counters.
//
// The data comes from an in-process sampler that reads the metrics
// registry every couple of seconds and keeps ten minutes of derived series
// (rates, ratios, histogram quantiles), so no Prometheus server is needed.
//
// The page is behind an admin token and is disabled (404) without one, so
// it can never be open on a public listener by default.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weave-sync/weave/metrics"
)

//go:embed assets
var assets embed.FS

// Options configure the dashboard.
type Options struct {
	// Token is the admin token. Empty disables the dashboard: every
	// request gets 404.
	Token string
	// Metrics is the registry the dashboard charts. Required when Token
	// is set.
	Metrics *metrics.Metrics
	// Path is where the dashboard is mounted (default "/__dashboard__");
	// the handler serves Path, Path+"/" and everything under it, and must
	// be given the full request path (no http.StripPrefix).
	Path string
	// Interval is the time between samples (default 2 s).
	Interval time.Duration
	// Window is how much history the graphs show (default 10 min).
	Window time.Duration
	// Context stops the sampler when done. Nil runs it for the life of the
	// process.
	Context context.Context
	// SessionLifetime is how long a browser session cookie is accepted
	// after it was issued (default 12 h), checked by the server, not left
	// to the browser.
	SessionLifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// cookieName holds the browser session: its issue time signed with a key
// derived from the admin token, so the cookie is not the token, expires on
// the server's clock, and dies with the token when it is rotated.
const cookieName = "weave_dashboard"

type handler struct {
	token     metrics.TokenMatcher
	cookieKey []byte
	lifetime  time.Duration
	now       func() time.Time
	path      string
	sampler   *sampler
	static    fs.FS
}

// Handler returns the dashboard's http.Handler and starts its sampler (not
// when disabled). Mount it at Options.Path and Options.Path+"/":
//
//	mux.Handle("/__dashboard__", h)
//	mux.Handle("/__dashboard__/", h)
//
// Requests need the token, as "Authorization: Bearer <token>", or once as
// "?token=<token>", which sets an HttpOnly, SameSite=Strict cookie scoped
// to the dashboard so that the page's own requests are authorised. A
// missing or wrong token gets 401.
func Handler(opts Options) http.Handler {
	if opts.Token == "" {
		return http.HandlerFunc(http.NotFound)
	}
	if opts.Metrics == nil {
		panic("dashboard: Options.Metrics is required when a token is set")
	}
	if opts.Path == "" {
		opts.Path = "/__dashboard__"
	}
	opts.Path = "/" + strings.Trim(opts.Path, "/")
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Window <= 0 {
		opts.Window = 10 * time.Minute
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	if opts.SessionLifetime <= 0 {
		opts.SessionLifetime = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := hmac.New(sha256.New, []byte(opts.Token))
	key.Write([]byte("weave dashboard session key v2"))
	h := &handler{
		token:     metrics.NewTokenMatcher(opts.Token),
		cookieKey: key.Sum(nil),
		lifetime:  opts.SessionLifetime,
		now:       opts.Now,
		path:      opts.Path,
		sampler:   newSampler(opts.Metrics.Gatherer(), opts.Interval, opts.Window),
		static:    static,
	}
	go h.sampler.run(ctx)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

	rel, ok := strings.CutPrefix(r.URL.Path, h.path)
	if !ok || (rel != "" && rel[0] != '/') {
		http.NotFound(w, r)
		return
	}
	fromQuery, authorized := h.authorize(r)
	if !authorized {
		hdr.Set("WWW-Authenticate", `Bearer realm="weave dashboard"`)
		http.Error(w, "401 unauthorized: the dashboard needs the admin token (Authorization: Bearer <token>, or open "+h.path+"/?token=<token> once in a browser)", http.StatusUnauthorized)
		return
	}
	if fromQuery {
		http.SetCookie(w, &http.Cookie{
			Name:     cookieName,
			Value:    h.newSession(),
			Path:     h.path,
			MaxAge:   int(h.lifetime.Seconds()),
			HttpOnly: true,
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteStrictMode,
		})
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch rel {
	case "":
		// Relative asset URLs need the trailing slash.
		http.Redirect(w, r, h.path+"/", http.StatusFound)
	case "/":
		// The page itself is served even with ?token= (no redirect): a
		// redirect started from another site would not carry the new
		// SameSite=Strict cookie. The page's script removes the token
		// from the address bar.
		h.asset(w, r, "index.html", "text/html; charset=utf-8")
	case "/app.js":
		h.asset(w, r, "app.js", "text/javascript; charset=utf-8")
	case "/style.css":
		h.asset(w, r, "style.css", "text/css; charset=utf-8")
	case "/api/series":
		hdr.Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h.sampler.snapshot())
	default:
		http.NotFound(w, r)
	}
}

// authorize checks the credentials given. Every credential present must be
// right: a wrong token is refused even next to a valid cookie, so a typo
// is noticed rather than masked.
func (h *handler) authorize(r *http.Request) (fromQuery, ok bool) {
	seen := false
	if _, has := r.Header["Authorization"]; has {
		tok, isBearer := metrics.BearerToken(r)
		if !isBearer || !h.tokenOK(tok) {
			return false, false
		}
		seen = true
	}
	if q := r.URL.Query(); q.Has("token") {
		if !h.tokenOK(q.Get("token")) {
			return false, false
		}
		seen, fromQuery = true, true
	}
	if c, err := r.Cookie(cookieName); err == nil && !seen {
		if !h.sessionOK(c.Value) {
			return false, false
		}
		seen = true
	}
	return fromQuery, seen
}

func (h *handler) tokenOK(tok string) bool { return h.token.Match(tok) }

// newSession returns a cookie value: "v2.<issued unix seconds>.<mac>".
func (h *handler) newSession() string {
	issued := strconv.FormatInt(h.now().Unix(), 10)
	return "v2." + issued + "." + h.sessionMAC(issued)
}

func (h *handler) sessionMAC(issued string) string {
	mac := hmac.New(sha256.New, h.cookieKey)
	mac.Write([]byte(issued))
	return hex.EncodeToString(mac.Sum(nil))
}

// sessionOK accepts a cookie this token signed less than the session
// lifetime ago (and not in the future, beyond a minute of clock slack).
func (h *handler) sessionOK(v string) bool {
	rest, ok := strings.CutPrefix(v, "v2.")
	if !ok {
		return false
	}
	issued, mac, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(h.sessionMAC(issued))) {
		return false
	}
	sec, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return false
	}
	age := h.now().Sub(time.Unix(sec, 0))
	return age < h.lifetime && age > -time.Minute
}

func (h *handler) asset(w http.ResponseWriter, r *http.Request, name, ctype string) {
	b, err := fs.ReadFile(h.static, name)
	if err != nil {
		http.Error(w, "500 missing asset", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}
