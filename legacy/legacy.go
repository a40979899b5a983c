// Package legacy serves the 2011 Sync protocol that Pale Moon, Basilisk and
// other UXP browsers still speak: User API 1.0 (accounts, captcha, node
// lookup, password change and reset) at PUBLIC_URL/user/1.0/ and
// /user/1/, the misc pages (misc/1.0/captcha_html, weave-password-reset),
// and Storage API 1.1 at NODE/1.1/USER/… (and /1.0/, /1/), with HTTP Basic
// auth on every request.
//
// It keeps no data of its own: accounts live in a weave.LegacyUserStore,
// node assignment in the weave.TokenDB (as "<username>@sync-1.1.invalid",
// weave.LegacyTokenEmail), and records in each node's weave.Store — the same
// store, cache, node states and user moves as Sync 1.5.
//
// Wire format follows Mozilla's 2011 servers (server-storage, server-reg,
// server-core) where the UXP client depends on it: timestamps with exactly
// two decimals, bare weave error codes as 400 bodies, "0"/"1" availability
// answers, node URLs with a trailing slash.
package legacy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/captcha"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/legacy/passwd"
)

// SignupMode says who may create 1.1 accounts.
type SignupMode string

const (
	// SignupClosed: nobody (the operator creates accounts with `weave
	// legacy-user create`); availability answers "1" (taken) for every
	// name, so the wizard says so instead of failing later.
	SignupClosed SignupMode = "closed"
	// SignupCaptcha: anyone who solves the captcha on captcha_html (or
	// sends a configured bypass secret).
	SignupCaptcha SignupMode = "captcha"
	// SignupOpen: anyone.
	SignupOpen SignupMode = "open"
)

// ParseSignupMode checks a sign-up mode name.
func ParseSignupMode(s string) (SignupMode, error) {
	switch m := SignupMode(s); m {
	case SignupClosed, SignupCaptcha, SignupOpen:
		return m, nil
	}
	return "", errors.New("legacy: sign-up mode must be closed, captcha or open")
}

// Header names of the automation bypasses.
const (
	// WeaveSecretHeader is what the client sends from its
	// services.sync.admin-secret pref on account creation.
	WeaveSecretHeader = "X-Weave-Secret"
	// CaptchaOverrideHeader is server-core's generic captcha switch.
	CaptchaOverrideHeader = "X-Captcha-Override"
)

// Alert is a notice sent to every storage response as X-Weave-Alert, in
// the JSON form the UXP client acts on: "soft-eol" shows Message with a
// link to URL; "hard-eol" also stops syncing (the response is 513).
type Alert struct {
	Code    string `json:"code"` // "soft-eol" or "hard-eol"
	Message string `json:"message"`
	URL     string `json:"url"`
}

// Check reports whether the alert can be sent: a known code and a message.
func (a *Alert) Check() error {
	if a.Code != "soft-eol" && a.Code != "hard-eol" {
		return errors.New("legacy: alert code must be soft-eol or hard-eol")
	}
	if a.Message == "" {
		return errors.New("legacy: an alert needs a message")
	}
	return nil
}

// NodeStatus is a node's state and its users' move marks, the same that the
// node's 1.5 storage API asks (fleet.Watcher.Status gives one).
type NodeStatus = weavehttp.NodeStatus

// Observer is told about 1.1 traffic (for metrics); calls are on the
// request path and must not block.
type Observer interface {
	// AuthFailed counts a refused Basic login (reason: "missing",
	// "password", "node", "moved").
	AuthFailed(reason string)
	RecordsRead(records int, bytes int64)
	RecordsWritten(records int, bytes int64)
	// Signup counts an account creation attempt by outcome ("created",
	// "captcha", "taken", "invalid", "closed").
	Signup(outcome string)
}

type noObserver struct{}

func (noObserver) AuthFailed(string)         {}
func (noObserver) RecordsRead(int, int64)    {}
func (noObserver) RecordsWritten(int, int64) {}
func (noObserver) Signup(string)             {}

// Config configures a Service.
type Config struct {
	Users  weave.LegacyUserStore
	Tokens weave.TokenDB
	// PublicURL is where the User API and misc pages are served (the
	// client's services.sync.serverURL), e.g. https://sync.example.com.
	PublicURL string
	Signup    SignupMode
	// WeaveSecret and CaptchaOverride, when set, let a request carrying
	// the same value in X-Weave-Secret / X-Captcha-Override create an
	// account without the captcha (compared in constant time).
	WeaveSecret     string
	CaptchaOverride string
	// CaptchaTTL is how long a captcha may be answered (default 10 min).
	CaptchaTTL time.Duration
	// QuotaBytes is the per-user quota (0: none), as for 1.5.
	QuotaBytes int64
	// NewUsersDisabled stops node assignment of users without a live
	// record (serve --new-users=false, as for the token server): their
	// node lookup answers null, which clients retry later.
	NewUsersDisabled bool
	// DeleteSyncData, when set, deletes a deleted account's Sync data on
	// whichever node holds it and marks its token records replaced
	// (cmd/weave wires fleet.Migrator.ReplaceAccount); it gets the
	// account's token-database key. Nil only replaces the records.
	DeleteSyncData func(ctx context.Context, tokenEmail string) error
	// Alert, when set, goes out with every storage response.
	Alert *Alert
	// KDF is the cost of new password hashes (zero: passwd.Default);
	// older or cheaper hashes are replaced at the next login.
	KDF      passwd.Params
	Observer Observer
	Logger   *slog.Logger
	Now      func() time.Time
}

// Service is the 1.1 front end: one for the process, with a User API
// handler and a storage handler per node.
type Service struct {
	cfg      Config
	prefix   string // path of PublicURL, no trailing slash
	captchas captcha.Set
	auth     authCache
	failures counter       // failed logins per username
	signups  counter       // sign-ups per address
	kdf      chan struct{} // bounds concurrent password verifications
	// captchaIssued, if set, sees every captcha's answer (tests only).
	captchaIssued func(id, answer string)
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Users == nil || cfg.Tokens == nil {
		return nil, errors.New("legacy: Config.Users and Config.Tokens are required")
	}
	if cfg.Signup == "" {
		cfg.Signup = SignupClosed
	}
	if _, err := ParseSignupMode(string(cfg.Signup)); err != nil {
		return nil, err
	}
	if cfg.Alert != nil {
		if err := cfg.Alert.Check(); err != nil {
			return nil, err
		}
	}
	if cfg.CaptchaTTL <= 0 {
		cfg.CaptchaTTL = 10 * time.Minute
	}
	if cfg.KDF == (passwd.Params{}) {
		cfg.KDF = passwd.Default
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, kdf: make(chan struct{}, 4)}
	s.prefix = pathOf(cfg.PublicURL)
	return s, nil
}

func pathOf(rawURL string) string {
	if i := strings.Index(rawURL, "://"); i >= 0 {
		rest := rawURL[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return strings.TrimRight(rest[j:], "/")
		}
		return ""
	}
	return strings.TrimRight(rawURL, "/")
}

// clientIP is what captchas are bound to and sign-ups are counted under:
// the client's address, or for IPv6 its /64, which one client typically
// holds whole (counting single addresses would give it a fresh budget per
// address).
func clientIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return weavehttp.ClientKey(ap.Addr()).String()
}

// basicAuth reads Basic credentials: the user part up to the first ':'
// (passwords may contain ':'), a UTF-8 password.
func basicAuth(r *http.Request) (user, pass string, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, cred, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") || len(cred) > 4096 {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	user, pass, found = strings.Cut(string(raw), ":")
	if !found || !utf8.ValidString(pass) {
		return "", "", false
	}
	return user, pass, true
}

// authCache remembers successful password checks for a few minutes, so
// that Basic auth on every request does not run the KDF every time. The
// key covers the stored hash, so a password change invalidates it.
type authCache struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

const (
	authCacheTTL = 5 * time.Minute
	authCacheMax = 50000
)

func authKey(username, password, stored string) [32]byte {
	h := sha256.New()
	for _, s := range []string{username, password, stored} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (c *authCache) ok(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, found := c.m[k]
	return found && now.Before(exp)
}

func (c *authCache) put(k [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = map[[32]byte]time.Time{}
	}
	c.m[k] = now.Add(authCacheTTL)
}

var (
	errBadPassword = errors.New("legacy: wrong username or password")
	// errLocked: too many failed logins of this name lately; answered as
	// a wrong password.
	errLocked = errors.New("legacy: too many failed logins")
)

// login checks username and password against the store, upgrading an
// old-format hash after a successful check. weave.ErrNotFound for an
// unknown user, errBadPassword for a wrong password.
func (s *Service) login(ctx context.Context, username, password string) (weave.LegacyUser, error) {
	u, err := s.cfg.Users.LegacyUser(ctx, username)
	if err != nil {
		return u, err
	}
	now := s.cfg.Now()
	k := authKey(username, password, u.PasswordHash)
	if s.auth.ok(k, now) {
		return u, nil
	}
	if s.failures.over(username, loginFailures, lockout, now) {
		return u, errLocked
	}
	select {
	case s.kdf <- struct{}{}:
	case <-ctx.Done():
		return u, weave.ErrUnavailable
	}
	ok, verr := passwd.Verify(u.PasswordHash, password)
	<-s.kdf
	if verr != nil {
		s.cfg.Logger.Warn("1.1 account has an unusable password hash", "user", username, "err", verr)
	}
	if !ok {
		s.failures.add(username, loginFailures, lockout, now)
		return u, errBadPassword
	}
	if passwd.NeedsUpgradeFor(u.PasswordHash, s.cfg.KDF) {
		if h, err := s.hash(password); err == nil {
			switch err := s.cfg.Users.UpdateLegacyPassword(ctx, username, u.PasswordHash, h); {
			case err == nil:
				u.PasswordHash = h
				k = authKey(username, password, h)
			case !errors.Is(err, weave.ErrConflict):
				s.cfg.Logger.Warn("upgrading a 1.1 password hash failed", "user", username, "err", err)
			}
		}
	}
	s.auth.put(k, now)
	return u, nil
}

// hash makes a new password hash.
func (s *Service) hash(password string) (string, error) { return passwd.HashWith(password, s.cfg.KDF) }

// DeriveUsername is the UXP client's username for an account name: the
// lower-cased name itself if it only has [a-z0-9._-], else
// base32(SHA-1(UTF-8 of the lower-cased name)), lower-cased.
func DeriveUsername(account string) string {
	return deriveUsername(account)
}
