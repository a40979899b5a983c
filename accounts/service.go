// Package accounts is weave's built-in, minimal, FxA-compatible accounts
// service (issue 7), off by default: the server side of the onepw protocol
// (account create/login/keys/status/destroy, sessions, devices), the OAuth
// subset Firefox and CLI clients use (authorization code + PKCE,
// fxa-credentials, refresh tokens, JWKS, verify, scoped-key-data), a
// minimal profile, /.well-known/fxa-client-configuration pointing every
// FxA service at this weave, and the sign-up/sign-in web pages Firefox
// opens (pages.go: what FxA's content server is to Firefox). Access tokens
// are RS256 JWTs (typ at+jwt) that weave's token server accepts with the
// keys from JWKS. Token routes take Hawk or "Bearer fxs_/fxk_/fxpc_" with
// the token itself (FxA takes the Hawk id there; see bearerToken).
//
// The server never sees a password: clients send authPW (onepw.Stretch);
// the server stores verifyHash = HKDF(scrypt(authPW, salt)) and wrapWrapKb,
// and returns kA‖wrapKb sealed under the keyFetchToken. No mail is sent:
// every account and session is reported verified (recovery_email/status
// says verified=true), since weave has no email infrastructure; an operator
// who wants to keep bots out puts sign-up behind the captcha
// (Config.SignupCaptcha) or closes it.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/captcha"
	"github.com/weave-sync/weave/hawk"
	"github.com/weave-sync/weave/push/vapid"
)

// Client is a registered OAuth client.
type Client struct {
	ID           string
	Name         string
	RedirectURIs []string // empty: any redirect_uri is refused, the code is returned in the body only
	// Public clients must use PKCE; weave has no confidential clients yet.
	Public bool
}

// DefaultClients are Firefox's public OAuth clients (desktop, Android,
// iOS), with the redirect URIs they use, so an unmodified Firefox works.
var DefaultClients = []Client{
	{ID: "5882386c6d801776", Name: "Firefox", Public: true,
		RedirectURIs: []string{"urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel", "urn:ietf:wg:oauth:2.0:oob:pair-auth-webchannel"}},
	{ID: "a2270f727f45f648", Name: "Firefox for Android", Public: true,
		RedirectURIs: []string{"urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel", "https://accounts.firefox.com/oauth/success/a2270f727f45f648"}},
	{ID: "1b1a3e44c54fbb58", Name: "Firefox for iOS", Public: true,
		RedirectURIs: []string{"urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel", "https://accounts.firefox.com/oauth/success/1b1a3e44c54fbb58"}},
}

// Config configures a Service.
type Config struct {
	// Store persists accounts (sqlstore.NewAccountStore). Required.
	Store Store
	// PublicURL is this weave's base URL as clients see it, e.g.
	// "https://sync.example.com" (no trailing slash needed). It is the
	// issuer of access tokens, the base of every URL in
	// /.well-known/fxa-client-configuration, and gives Hawk its host and
	// port. Required.
	PublicURL string
	// Clients are the OAuth clients; nil means DefaultClients.
	Clients []Client
	// Scrypt is the server stretch of authPW (default onepw.DefaultScrypt;
	// tests lower N). Changing it affects new passwords only.
	Scrypt onepw.ScryptParams
	// AccessTokenTTL (default 6 h), RefreshTokenTTL (default 90 days;
	// negative: never expires), SessionTTL, the absolute lifetime of a
	// session (default 365 days; negative: none), SessionIdleTTL, how long
	// an unused session lives (default 30 days, near FxA's 4 weeks for
	// sessions without a device; negative: no limit), CodeTTL (default 10
	// min), KeyFetchTTL (default 5 min).
	AccessTokenTTL, RefreshTokenTTL, SessionTTL, SessionIdleTTL, CodeTTL, KeyFetchTTL time.Duration
	// HawkSkew is the accepted clock difference for Hawk (default 60 s).
	HawkSkew time.Duration
	// MaxBodyBytes bounds request bodies (default 16 KiB) → 413 errno 113.
	MaxBodyBytes int64
	// Limits tune rate limiting and lockout; zero fields take defaults.
	Limits Limits
	// TrustedProxies are peers whose X-Forwarded-For is believed for the
	// per-IP limits.
	TrustedProxies []netip.Prefix
	// SignupClosed refuses account/create (errno 125, request blocked).
	SignupClosed bool
	// SignupCaptcha makes account/create require a solved captcha (POST
	// /v1/captcha, then captchaId and captchaAnswer in the body) or the
	// CaptchaOverride secret in the X-Captcha-Override header.
	SignupCaptcha bool
	// CaptchaOverride, if set, lets automated account setup skip the
	// captcha. CaptchaTTL is how long a captcha may be answered (default
	// 5 min).
	CaptchaOverride string
	CaptchaTTL      time.Duration
	// DeleteSyncData, if set, runs first when an account is deleted: it
	// retires the account's token server records and purges its Sync data
	// on whichever node holds it (cmd/weave wires fleet.DeleteAccount). If
	// it fails, the account is kept, so the deletion can be retried.
	DeleteSyncData func(ctx context.Context, uid string) error
	// PushHosts are the push services device push callbacks may point at,
	// each "[http(s)://]host[:port]" (scheme default https, no port: any
	// port; "*.example.com": any subdomain). nil means PublicURL's origin
	// (weave's own push service) and DefaultPushHosts (Mozilla's). A
	// device registering another callback gets 400 errno 107, so the
	// server never POSTs to hosts of a client's choosing.
	PushHosts []string
	// PushVAPID, if set, signs every push (RFC 8292); optional for the
	// subscriptions Firefox makes for its account.
	PushVAPID *vapid.Signer
	// PushClient sends pushes (default: one with PushTimeout). Redirects
	// are never followed.
	PushClient *http.Client
	// PushTimeout bounds one push (default 10 s); PushConcurrency is how
	// many are in flight at once (default 16).
	PushTimeout     time.Duration
	PushConcurrency int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives unexpected errors (default: discard).
	Logger *slog.Logger
}

// Service is the accounts service; Handler serves its HTTP API.
type Service struct {
	cfg       Config
	store     Store
	public    *url.URL
	base      string // PublicURL without trailing slash
	host      string // Hawk host
	port      string // Hawk port
	prefix    string // PublicURL path prefix, "" for none
	clients   map[string]Client
	hawk      *hawk.Verifier
	limits    *limiter
	stretcher *stretcher
	captcha   captcha.Set
	// captchaIssued, if set, sees every captcha's answer (tests only:
	// they play the human).
	captchaIssued func(id, answer string)
	pages         *pages
	push          *pusher
	log           *slog.Logger
	now           func() time.Time

	keyMu sync.RWMutex
	keys  []signer // newest last; the newest signs
}

// New validates cfg, loads (or, on first start, generates and stores) the
// OAuth signing key, and returns the Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("accounts: Store is required")
	}
	u, err := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("accounts: bad PublicURL %q", cfg.PublicURL)
	}
	host, port, err := hawk.SplitHostPort(u.Host, u.Scheme)
	if err != nil {
		return nil, fmt.Errorf("accounts: PublicURL: %w", err)
	}
	if cfg.Clients == nil {
		cfg.Clients = DefaultClients
	}
	if cfg.Scrypt.N == 0 {
		cfg.Scrypt = onepw.DefaultScrypt
	}
	if cfg.Scrypt.R != 8 || cfg.Scrypt.P != 1 {
		return nil, errors.New("accounts: scrypt r must be 8 and p 1 (only N is stored per account)")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.AccessTokenTTL, 6*time.Hour)
	def(&cfg.RefreshTokenTTL, 90*24*time.Hour)
	def(&cfg.SessionTTL, 365*24*time.Hour)
	def(&cfg.SessionIdleTTL, 30*24*time.Hour)
	def(&cfg.CodeTTL, 10*time.Minute)
	def(&cfg.KeyFetchTTL, 5*time.Minute)
	def(&cfg.CaptchaTTL, 5*time.Minute)
	def(&cfg.HawkSkew, hawk.DefaultSkew)
	def(&cfg.PushTimeout, 10*time.Second)
	if cfg.PushConcurrency <= 0 {
		cfg.PushConcurrency = 16
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, store: cfg.Store, public: u, base: u.String(), host: host, port: port,
		prefix: strings.TrimRight(u.Path, "/"), clients: map[string]Client{},
		hawk:   hawk.NewVerifier(hawk.Options{Skew: cfg.HawkSkew, Now: cfg.Now}),
		limits: newLimiter(cfg.Limits, cfg.Now), stretcher: newStretcher(cfg.Limits), log: log, now: cfg.Now,
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = c
	}
	if s.push, err = newPusher(s); err != nil {
		return nil, err
	}
	if s.pages, err = loadPages(); err != nil {
		return nil, fmt.Errorf("accounts: pages: %w", err)
	}
	if err := s.loadKeys(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// Paths served by Handler: PathPrefixes are the http.ServeMux patterns
// (below PublicURL's path) to route to it: the API and the sign-in pages.
// With a path prefix, the prefix itself (no trailing slash) is the sign-in
// page too: Firefox opens exactly identity.fxaccounts.remote.root.
var PathPrefixes = []string{"/v1/", "/.well-known/fxa-client-configuration", "/.well-known/openid-configuration",
	"/{$}", "/signin", "/signup", "/force_auth", "/oauth", "/oauth/", "/authorization",
	"/settings", "/settings/", "/connect_another_device", "/pair", "/metrics-flow", assetPrefix}

func (s *Service) nowMS() int64 { return s.now().UnixMilli() }

// Handler returns the HTTP API. Mount it for PathPrefixes; requests arrive
// with PublicURL's path prefix already stripped (or there was none).
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

type route struct {
	method string
	auth   string // "", KindSession or KindKeyFetch: Hawk with that token kind
	fn     func(s *Service, r *request) (any, error)
}

var routes = map[string]route{
	"/v1/account/create":                    {"POST", "", (*Service).accountCreate},
	"/v1/captcha":                           {"POST", "", (*Service).newCaptcha},
	"/v1/account/login":                     {"POST", "", (*Service).accountLogin},
	"/v1/account/keys":                      {"GET", KindKeyFetch, (*Service).accountKeys},
	"/v1/account/status":                    {"", "", (*Service).accountStatus},
	"/v1/account/destroy":                   {"POST", "", (*Service).accountDestroy},
	"/v1/account/profile":                   {"GET", KindSession, (*Service).accountProfile},
	"/v1/password/change/start":             {"POST", "", (*Service).passwordChangeStart},
	"/v1/password/change/finish":            {"POST", KindPasswordChange, (*Service).passwordChangeFinish},
	"/v1/session/status":                    {"GET", KindSession, (*Service).sessionStatus},
	"/v1/session/destroy":                   {"POST", KindSession, (*Service).sessionDestroy},
	"/v1/account/sessions":                  {"GET", KindSession, (*Service).accountSessions},
	"/v1/recovery_email/status":             {"GET", KindSession, (*Service).recoveryEmailStatus},
	"/v1/account/device":                    {"POST", KindSession, (*Service).deviceUpdate},
	"/v1/account/devices":                   {"GET", KindSession, (*Service).devices},
	"/v1/account/device/destroy":            {"POST", KindSession, (*Service).deviceDestroy},
	"/v1/account/attached_clients":          {"GET", KindSession, (*Service).attachedClients},
	"/v1/account/attached_client/destroy":   {"POST", KindSession, (*Service).attachedClientDestroy},
	"/v1/account/device/commands":           {"GET", KindSession, (*Service).deviceCommands},
	"/v1/account/devices/notify":            {"POST", KindSession, (*Service).devicesNotify},
	"/v1/account/devices/invoke_command":    {"POST", KindSession, (*Service).invokeCommand},
	"/v1/account/scoped-key-data":           {"POST", KindSession, (*Service).scopedKeyData},
	"/v1/oauth/authorization":               {"POST", KindSession, (*Service).authorization},
	"/v1/authorization":                     {"POST", KindSession, (*Service).authorization},
	"/v1/oauth/token":                       {"POST", "", (*Service).token},
	"/v1/token":                             {"POST", "", (*Service).token},
	"/v1/oauth/destroy":                     {"POST", "", (*Service).destroy},
	"/v1/destroy":                           {"POST", "", (*Service).destroy},
	"/v1/jwks":                              {"GET", "", (*Service).jwks},
	"/v1/verify":                            {"POST", "", (*Service).verify},
	"/v1/profile":                           {"GET", "", (*Service).profile},
	"/.well-known/fxa-client-configuration": {"GET", "", (*Service).clientConfiguration},
	"/.well-known/openid-configuration":     {"GET", "", (*Service).openIDConfiguration},
}

// request is one API call being served.
type request struct {
	r       *http.Request
	body    []byte
	ip      string
	token   Token   // the Hawk-authenticated token, if the route needs one
	account Account // its account
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if pagePath(r.URL.Path) {
		s.servePage(w, r)
		return
	}
	rt, ok := routes[r.URL.Path]
	if strings.HasPrefix(r.URL.Path, "/v1/client/") {
		rt, ok = route{"GET", "", (*Service).clientInfo}, true
	}
	if !ok {
		errNotFound.write(w)
		return
	}
	if rt.method != "" && r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		errMethod.write(w)
		return
	}
	req := &request{r: r, ip: s.clientIP(r)}
	if r.Method == http.MethodPost {
		limit := s.cfg.MaxBodyBytes
		if l, ok := bodyLimits[r.URL.Path]; ok {
			limit = max(limit, l)
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				errTooLarge.write(w)
			} else {
				errInvalidJSON.write(w)
			}
			return
		}
		req.body = body
		if err := checkContentType(r); err != nil {
			s.writeErr(w, err)
			return
		}
	}
	if rt.auth != "" {
		if err := s.authenticate(req, rt.auth); err != nil {
			s.writeErr(w, err)
			return
		}
	}
	out, err := rt.fn(s, req)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if errors.As(err, &e) {
		e.write(w)
		return
	}
	if isUnavailable(err) {
		errServerBusy.write(w)
		return
	}
	s.log.Error("accounts: request failed", "err", err)
	errUnexpected.write(w)
}

func isUnavailable(err error) bool {
	switch weave.ErrorKindOf(err) {
	case weave.KindUnavailable, weave.KindStorageFull, weave.KindConflict:
		return true
	}
	return false
}

// formRoutes also take application/x-www-form-urlencoded bodies (OAuth's
// token and revocation endpoints, RFC 6749 §4.1.3 and RFC 7009).
var formRoutes = map[string]bool{"/v1/oauth/token": true, "/v1/token": true, "/v1/oauth/destroy": true, "/v1/destroy": true}

// checkContentType refuses a POST body that is not JSON, so that a
// cross-site "simple" request (a form or fetch with text/plain, which needs
// no CORS preflight) cannot create accounts or spend a password guess. As
// FxA answers: a text/* body fails validation (400 errno 107), any other
// non-JSON type is 415; no Content-Type means JSON, as in hapi.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == "application/json":
		return nil
	case err == nil && mt == "application/x-www-form-urlencoded" && formRoutes[r.URL.Path]:
		return nil
	case err == nil && strings.HasPrefix(mt, "text/"):
		return errInvalid("payload")
	}
	return errMediaType
}

// decode parses a JSON object body into v, rejecting unknown shapes with
// FxA's errnos (106 for bad JSON, 107 for wrong types).
func decode(r *request, v any) error {
	if len(r.body) == 0 {
		return errInvalidJSON
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errInvalid(te.Field)
		}
		return errInvalidJSON
	}
	return nil
}

// clientIP is the peer address, or the nearest untrusted X-Forwarded-For
// entry when the peer is a trusted proxy.
func (s *Service) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(addr) {
		return host
	}
	parts := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(parts) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
		if err != nil {
			return host
		}
		if !s.trusted(a) {
			return a.String()
		}
	}
	return host
}

func (s *Service) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// authenticate verifies the Authorization header against a token of the
// given kind and loads the token and its account into r. It takes Hawk or,
// FxA's typed Bearer form "Bearer <prefix>_<token>"; see bearerToken.
func (s *Service) authenticate(r *request, kind string) error {
	authz := r.r.Header.Get("Authorization")
	if authz == "" {
		return errInvalidToken.with("message", "Missing authentication")
	}
	if strings.HasPrefix(authz, "Bearer ") {
		return s.bearerToken(r, kind, authz)
	}
	var payload *hawk.Payload
	if r.r.Method == http.MethodPost {
		payload = &hawk.Payload{ContentType: r.r.Header.Get("Content-Type"), Body: r.body}
	}
	var tok Token
	_, err := s.hawk.Verify(r.r.Context(), hawk.Request{
		Method: r.r.Method, RequestTarget: s.prefix + r.r.URL.RequestURI(),
		Host: s.host, Port: s.port, Authorization: authz, Payload: payload,
		LookupKey: func(ctx context.Context, id string) (string, error) {
			// Token ids are issued as lower-case hex and only that
			// spelling names a token: one canonical form for the lookup
			// and the nonce cache alike.
			if len(id) != 64 || !isLowerHex(id) {
				return "", ErrNotFound
			}
			t, err := s.store.Token(ctx, id)
			if err != nil {
				return "", err
			}
			if t.Kind != kind || !s.live(t) {
				return "", ErrNotFound
			}
			tok = t
			return string(t.AuthKey), nil
		},
	})
	var stale *hawk.StaleTimestampError
	switch {
	case err == nil:
	case errors.As(err, &stale):
		return newErr(401, ErrnoInvalidTimestamp, "Invalid timestamp in request signature").with("serverTime", s.now().Unix())
	case errors.Is(err, hawk.ErrReplayedNonce):
		return errInvalidNonce
	case errors.Is(err, hawk.ErrKeyLookup):
		if isUnavailable(err) {
			return errServerBusy
		}
		return errInvalidToken
	default: // malformed header, bad MAC, bad payload hash
		return errInvalidSig
	}
	return s.authenticated(r, kind, tok)
}

// authenticated loads the account of an authenticated token into r.
func (s *Service) authenticated(r *request, kind string, tok Token) error {
	a, err := s.store.AccountByUID(r.r.Context(), tok.UID)
	if errors.Is(err, ErrNotFound) {
		return errInvalidToken
	} else if err != nil {
		return err
	}
	r.token, r.account = tok, a
	if kind == KindSession {
		_ = s.store.TouchToken(r.r.Context(), tok.ID, s.nowMS())
	}
	return nil
}

// bearerKinds are FxA's typed Bearer prefixes per token kind
// (auth-server bearer-fxa-token.js, ADR-0050) and the HKDF name the
// token's id and Hawk key derive under.
var bearerKinds = map[string]struct{ prefix, name string }{
	KindSession:        {"fxs_", "sessionToken"},
	KindKeyFetch:       {"fxk_", "keyFetchToken"},
	KindPasswordChange: {"fxpc_", "passwordChangeToken"},
}

// bearerToken authenticates "Authorization: Bearer <prefix>_<token>" with
// FxA's strict shape (lower-case hex, no extra whitespace; the prefix names
// the kind). FxA's auth server takes the token's Hawk id there; weave
// deliberately does not: the id travels in clear in every Hawk header, so a
// header seen once (a log, a proxy) would be a credential that skips MAC,
// timestamp and nonce. weave takes the token itself, which Hawk never
// sends, and finds the record by the id derived from it (HKDF, one way).
// Firefox signs every accounts call with Hawk and sends no Bearer of this
// kind. Everything that is not a live token of the route's kind is errno
// 110, as in FxA.
func (s *Service) bearerToken(r *request, kind, authz string) error {
	bk, ok := bearerKinds[kind]
	if !ok {
		return errInvalidToken
	}
	raw, ok := strings.CutPrefix(authz, "Bearer "+bk.prefix)
	if !ok || len(raw) != 64 || !isLowerHex(raw) {
		return errInvalidToken
	}
	b, _ := hex.DecodeString(raw)
	id := hex.EncodeToString(onepw.DeriveToken(b, bk.name).ID)
	t, err := s.store.Token(r.r.Context(), id)
	if errors.Is(err, ErrNotFound) || (err == nil && (t.Kind != kind || !s.live(t))) {
		return errInvalidToken
	} else if err != nil {
		if isUnavailable(err) {
			return errServerBusy
		}
		return err
	}
	return s.authenticated(r, kind, t)
}

// live reports whether t is within its lifetime: its expiry and, for
// sessions, the absolute lifetime since creation and the idle lifetime
// since last use (Config.SessionTTL, Config.SessionIdleTTL).
func (s *Service) live(t Token) bool {
	now := s.nowMS()
	if t.ExpiresAt > 0 && t.ExpiresAt < now {
		return false
	}
	if t.Kind == KindSession {
		if s.cfg.SessionTTL > 0 && t.CreatedAt+s.cfg.SessionTTL.Milliseconds() < now {
			return false
		}
		if s.cfg.SessionIdleTTL > 0 && max(t.LastUsed, t.CreatedAt)+s.cfg.SessionIdleTTL.Milliseconds() < now {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
