// Package fxa verifies Firefox Accounts OAuth access tokens for the token
// server (tokenserver-1.0.md §3): RS256 JWTs locally against FxA's public
// keys, and opaque tokens through the OAuth server's /v1/verify.
//
// Errors separate the client's fault (ErrInvalidToken → 401
// invalid-credentials) from FxA's (ErrUnavailable → 503), because a 401
// makes Firefox discard its credentials while a 503 makes it retry later.
package fxa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var (
	// ErrInvalidToken: the token is not acceptable (bad signature,
	// expired, wrong type or algorithm, missing scope, rejected by FxA).
	ErrInvalidToken = errors.New("fxa: invalid token")
	// ErrUnavailable: the token could not be checked because FxA could not
	// be reached, timed out, or answered with a server error.
	ErrUnavailable = errors.New("fxa: verification service unavailable")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

// Claims is what the token server needs from a verified token.
type Claims struct {
	FxAUID           string   // sub (JWT) or user (/v1/verify)
	Generation       int64    // fxa-generation / generation in ms; 0 if absent
	ClientID         string   // may be empty: syncstorage-rs does not require it
	Scopes           []string // all granted scopes, split
	ProfileChangedAt int64    // informational; 0 if absent or malformed
}

// Defaults for Options.
const (
	DefaultTimeout         = 10 * time.Second // syncstorage-rs fxa_oauth_request_timeout
	DefaultRefreshInterval = time.Minute
	maxTokenLength         = 16 << 10
	maxResponseBytes       = 1 << 20
)

// Options configure a Verifier. At least one of Keys and ServerURL is needed.
type Options struct {
	// Keys are trusted signing keys (e.g. from LoadJWKSFile). When set they
	// are pinned: JWKS is never fetched, so a key rotation at FxA needs a
	// configuration change.
	Keys *KeySet
	// ServerURL is the FxA OAuth server base URL, e.g.
	// https://oauth.accounts.firefox.com. Without Keys, signing keys are
	// fetched from <ServerURL>/v1/jwks and cached; non-JWT tokens are sent
	// to <ServerURL>/v1/verify. Empty means no network access at all.
	ServerURL string
	// HTTPClient is used for FxA requests; nil means a client with
	// DefaultTimeout. A client without a timeout relies on ctx deadlines.
	HTTPClient *http.Client
	// RefreshInterval is the minimum time between JWKS fetches triggered
	// by an unknown kid or a failed signature, so forged tokens cannot make
	// us hammer FxA. Zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Leeway tolerates clock difference with FxA when checking exp and nbf.
	// Zero means none.
	Leeway time.Duration
	// Scope is the scope a token must grant; empty means OldSyncScope.
	Scope string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	static    *KeySet
	remote    *keyCache // nil when keys are pinned or there is no server
	verifyURL string    // empty: opaque tokens are rejected
	client    *http.Client
	leeway    time.Duration
	scope     string
	now       func() time.Time
}

// NewVerifier validates o and returns a Verifier. It does no network I/O;
// keys are fetched on first use.
func NewVerifier(o Options) (*Verifier, error) {
	v := &Verifier{static: o.Keys, client: o.HTTPClient, leeway: o.Leeway, scope: o.Scope, now: o.Now}
	if v.client == nil {
		v.client = &http.Client{Timeout: DefaultTimeout}
	}
	if v.scope == "" {
		v.scope = OldSyncScope
	}
	if v.now == nil {
		v.now = time.Now
	}
	if o.Keys == nil && o.ServerURL == "" {
		return nil, errors.New("fxa: need trusted keys or an OAuth server URL")
	}
	if o.ServerURL != "" {
		u, err := url.Parse(o.ServerURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("fxa: bad OAuth server URL %q", o.ServerURL)
		}
		base := strings.TrimRight(o.ServerURL, "/")
		v.verifyURL = base + "/v1/verify"
		if o.Keys == nil {
			interval := o.RefreshInterval
			if interval <= 0 {
				interval = DefaultRefreshInterval
			}
			v.remote = &keyCache{url: base + "/v1/jwks", client: v.client, interval: interval, now: v.now}
		}
	}
	return v, nil
}

// Verify checks an access token and returns its claims. A token that looks
// like a JWT (three base64url segments with JSON header and claims) is
// verified locally only: if no trusted key verifies it, it is invalid, with
// no remote fallback. Anything else goes to /v1/verify when a server URL is
// configured. Errors wrap ErrInvalidToken or ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if token == "" || len(token) > maxTokenLength {
		return Claims{}, invalid("empty or oversized token")
	}
	jwt, ok := splitJWT(token)
	if !ok {
		if v.verifyURL == "" {
			return Claims{}, invalid("not a JWT and no OAuth server configured")
		}
		return v.verifyRemote(ctx, token)
	}
	return v.verifyJWT(ctx, jwt)
}
