package accounts

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa/issuer"
)

// Scopes weave grants.
const (
	ScopeProfile = "profile"
	ScopeOldSync = onepw.OldSyncScope
	ScopeSession = "https://identity.mozilla.com/tokens/session"
)

func allowedScope(s string) bool {
	return s == ScopeProfile || strings.HasPrefix(s, "profile:") || s == ScopeOldSync || s == ScopeSession || s == "openid"
}

// parseScopes splits and validates a scope string (space-separated).
func parseScopes(s string) ([]string, error) {
	fs := strings.Fields(s)
	if len(fs) == 0 {
		return nil, errMissing("scope")
	}
	if len(fs) > 16 {
		return nil, errInvalidScopes
	}
	for _, f := range fs {
		if !allowedScope(f) {
			return nil, errInvalidScopes
		}
	}
	slices.Sort(fs)
	return slices.Compact(fs), nil
}

// signer is one of the service's signing keys, under the id it was
// stored with.
type signer struct {
	*issuer.Issuer
	created int64
}

// loadKeys reads the signing keys, generating the first one if none exist.
func (s *Service) loadKeys(ctx context.Context) error {
	ks, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("accounts: load signing keys: %w", err)
	}
	if len(ks) == 0 {
		sk := SigningKey{KID: "weave-" + randomHex(8), PrivatePEM: string(issuer.New().PrivateKeyPEM()), CreatedAt: s.nowMS()}
		if err := s.store.AddSigningKey(ctx, sk); err != nil {
			return fmt.Errorf("accounts: store signing key: %w", err)
		}
		// Another process may have raced us: read back what is stored.
		if ks, err = s.store.SigningKeys(ctx); err != nil {
			return err
		}
	}
	var out []signer
	for _, k := range ks {
		iss, err := issuer.FromPEM([]byte(k.PrivatePEM))
		if err != nil {
			return fmt.Errorf("accounts: signing key %s: %w", k.KID, err)
		}
		out = append(out, signer{Issuer: iss.WithKID(k.KID), created: k.CreatedAt})
	}
	s.keyMu.Lock()
	s.keys = out
	s.keyMu.Unlock()
	return nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWKS returns the public signing keys as a JWKS document (what GET
// /v1/jwks serves), for configuring weave's token server in-process.
func (s *Service) JWKS() []byte {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	keys := []any{}
	for _, k := range s.keys {
		jwk := k.JWK()
		jwk["fxa-createdAt"] = k.created / 1000
		keys = append(keys, jwk)
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func (s *Service) jwks(*request) (any, error) { return json.RawMessage(s.JWKS()), nil }

// accessClaims are the claims of weave's access tokens.
type accessClaims struct {
	Iss        string `json:"iss"`
	Sub        string `json:"sub"`
	Aud        string `json:"aud"`
	ClientID   string `json:"client_id"`
	Scope      string `json:"scope"`
	Iat        int64  `json:"iat"`
	Exp        int64  `json:"exp"`
	Jti        string `json:"jti"`
	Generation int64  `json:"fxa-generation"`
	// Grant names the session or refresh token the access token was
	// issued through (a one-way hash of its id), so that ending that
	// session or revoking that refresh token revokes the access token.
	Grant string `json:"fxa-grant,omitempty"`
}

// grantRef is the Grant claim of access tokens issued through the session
// or refresh token with the given store id.
func grantRef(sourceID string) string { return sha256Hex("grant:" + sourceID)[:32] }

// endGrant deletes a session or refresh token and revokes the access
// tokens issued through it, in one transaction.
func (s *Service) endGrant(ctx context.Context, uid, tokenID string) error {
	return s.store.EndToken(ctx, uid, tokenID, s.revokedGrant(uid, tokenID))
}

// revokedGrant is the token whose presence revokes the grant of sourceID;
// it outlives every access token issued through it.
func (s *Service) revokedGrant(uid, sourceID string) Token {
	now := s.nowMS()
	return Token{ID: sha256Hex("revoked-grant:" + grantRef(sourceID)), Kind: KindRevoked, UID: uid,
		Data: []byte("{}"), CreatedAt: now, ExpiresAt: now + s.cfg.AccessTokenTTL.Milliseconds() + 60_000}
}

func (s *Service) mintAccessToken(a Account, clientID string, scopes []string, sourceID string) (string, int64) {
	s.keyMu.RLock()
	k := s.keys[len(s.keys)-1]
	s.keyMu.RUnlock()
	now := s.now()
	ttl := int64(s.cfg.AccessTokenTTL / time.Second)
	tok := k.Sign(map[string]string{"alg": "RS256", "typ": "at+jwt", "kid": k.KID()},
		accessClaims{Iss: s.base, Sub: a.UID, Aud: clientID, ClientID: clientID, Scope: strings.Join(scopes, " "),
			Iat: now.Unix(), Exp: now.Unix() + ttl, Jti: randomHex(16), Generation: a.VerifierSet, Grant: grantRef(sourceID)})
	return tok, ttl
}

// parseAccessToken verifies one of our own access tokens: signature,
// expiry, revocation, and that the account still exists with no password
// change since the token was issued.
func (s *Service) parseAccessToken(ctx context.Context, tok string) (accessClaims, Account, error) {
	c, ok := s.ownToken(tok)
	if !ok || c.Exp <= s.now().Unix() || c.Sub == "" {
		return c, Account{}, errInvalidToken
	}
	a, err := s.checkRevoked(ctx, c)
	return c, a, err
}

// ownToken parses tok and reports whether it carries a valid signature by
// one of this service's keys (nothing else is checked).
func (s *Service) ownToken(tok string) (accessClaims, bool) {
	var c accessClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(tok) > 8<<10 {
		return c, false
	}
	var hdr struct{ Alg, Typ, Kid string }
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(cb, &c) != nil || hdr.Alg != "RS256" {
		return c, false
	}
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	for _, k := range s.keys {
		if k.KID() == hdr.Kid && rsa.VerifyPKCS1v15(k.PublicKey(), crypto.SHA256, d[:], sig) == nil {
			return c, true
		}
	}
	return c, false
}

// checkRevoked refuses an access token whose jti or grant was revoked, whose
// account is gone, or that predates the account's last password change or
// sign-out everywhere (errInvalidToken); it returns the account.
func (s *Service) checkRevoked(ctx context.Context, c accessClaims) (Account, error) {
	ids := []string{sha256Hex("jti:" + c.Jti)}
	if c.Grant != "" {
		ids = append(ids, sha256Hex("revoked-grant:"+c.Grant))
	}
	for _, id := range ids {
		if _, err := s.store.Token(ctx, id); err == nil {
			return Account{}, errInvalidToken
		} else if !errors.Is(err, ErrNotFound) {
			return Account{}, err
		}
	}
	a, err := s.store.AccountByUID(ctx, c.Sub)
	if errors.Is(err, ErrNotFound) || (err == nil && c.Generation < a.VerifierSet) {
		return Account{}, errInvalidToken
	}
	return a, err
}

// grant is the Data of authorization codes and refresh tokens.
type grant struct {
	ClientID    string `json:"clientId"`
	Scope       string `json:"scope"`
	Challenge   string `json:"challenge,omitempty"`
	KeysJWE     string `json:"keysJwe,omitempty"`
	AccessType  string `json:"accessType,omitempty"`
	RedirectURI string `json:"redirectUri,omitempty"`
	AuthAt      int64  `json:"authAt"`
	// Session is the id of the session an authorization code was issued
	// to: the access token redeemed for it is revoked with that session.
	Session string `json:"session,omitempty"`
}

func parseGrant(t Token) grant {
	var g grant
	_ = json.Unmarshal(t.Data, &g)
	return g
}

func (s *Service) client(id string) (Client, error) {
	if id == "" {
		return Client{}, errMissing("client_id")
	}
	c, ok := s.clients[id]
	if !ok {
		return Client{}, errUnknownClient.with("clientId", id)
	}
	return c, nil
}

// clientInfo is the OAuth server's GET /v1/client/{client_id}: what the
// sign-in page shows about the relier, and its early check that the
// client exists before asking for a password.
func (s *Service) clientInfo(r *request) (any, error) {
	id := strings.TrimPrefix(r.r.URL.Path, "/v1/client/")
	if len(id) != 16 || !isLowerHex(id) {
		return nil, errInvalid("client_id")
	}
	c, err := s.client(id)
	if err != nil {
		return nil, err
	}
	redirect := ""
	if len(c.RedirectURIs) > 0 {
		redirect = c.RedirectURIs[0]
	}
	return map[string]any{"id": c.ID, "name": c.Name, "trusted": true, "image_uri": "", "redirect_uri": redirect}, nil
}

// authorization issues an authorization code for the session's account
// (POST /v1/oauth/authorization and /v1/authorization, Hawk sessionToken).
// keys_jwe is opaque to the server: the client encrypted the scoped keys
// to the relier's public key, and it is handed back with the token.
func (s *Service) authorization(r *request) (any, error) {
	var b struct {
		ClientID            string `json:"client_id"`
		Scope               string `json:"scope"`
		State               string `json:"state"`
		ResponseType        string `json:"response_type"`
		AccessType          string `json:"access_type"`
		CodeChallenge       string `json:"code_challenge"`
		CodeChallengeMethod string `json:"code_challenge_method"`
		KeysJWE             string `json:"keys_jwe"`
		RedirectURI         string `json:"redirect_uri"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	c, err := s.client(b.ClientID)
	if err != nil {
		return nil, err
	}
	if b.ResponseType != "" && b.ResponseType != "code" {
		return nil, errResponseType
	}
	if b.State == "" {
		return nil, errMissing("state")
	}
	scopes, err := parseScopes(b.Scope)
	if err != nil {
		return nil, err
	}
	if b.AccessType == "" {
		b.AccessType = "online"
	} else if b.AccessType != "online" && b.AccessType != "offline" {
		return nil, errInvalid("access_type")
	}
	if b.CodeChallenge == "" || b.CodeChallengeMethod == "" {
		if c.Public {
			return nil, errMissingPKCE
		}
	} else if b.CodeChallengeMethod != "S256" {
		return nil, errInvalid("code_challenge_method")
	} else if len(b.CodeChallenge) != 43 || !isB64URL(b.CodeChallenge) {
		return nil, errInvalid("code_challenge")
	}
	// keys_jwe is opaque to the server, but it must look like a JWE (FxA
	// checks the same shape), so garbage is refused before a code exists.
	if b.KeysJWE != "" && !validJWE(b.KeysJWE) {
		return nil, errInvalid("keys_jwe")
	}
	if len(b.State) > 512 {
		return nil, errInvalid("state")
	}
	redirect := ""
	if len(c.RedirectURIs) > 0 {
		redirect = c.RedirectURIs[0]
	}
	if b.RedirectURI != "" {
		if !slices.Contains(c.RedirectURIs, b.RedirectURI) {
			return nil, errBadRedirect
		}
		redirect = b.RedirectURI
	}
	code := randomHex(32)
	now := s.nowMS()
	g := grant{ClientID: c.ID, Scope: strings.Join(scopes, " "), Challenge: b.CodeChallenge, KeysJWE: b.KeysJWE,
		AccessType: b.AccessType, RedirectURI: b.RedirectURI, AuthAt: r.token.CreatedAt / 1000, Session: r.token.ID}
	data, _ := json.Marshal(g)
	if err := s.store.PutToken(r.r.Context(), Token{ID: sha256Hex(code), Kind: KindCode, UID: r.account.UID, Data: data,
		CreatedAt: now, ExpiresAt: now + s.cfg.CodeTTL.Milliseconds()}); err != nil {
		return nil, err
	}
	out := map[string]any{"code": code, "state": b.State, "scope": g.Scope}
	if redirect != "" {
		q := url.Values{"code": {code}, "state": {b.State}}
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		out["redirect"] = redirect + sep + q.Encode()
	}
	return out, nil
}

func isB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// tokenParams reads the token endpoint's body, JSON or form-encoded.
func tokenParams(r *request) (map[string]string, error) {
	out := map[string]string{}
	mt, _, _ := mime.ParseMediaType(r.r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		q, err := url.ParseQuery(string(r.body))
		if err != nil {
			return nil, errInvalidJSON
		}
		for k, v := range q {
			if len(v) != 1 {
				return nil, errInvalid(k)
			}
			out[k] = v[0]
		}
		return out, nil
	}
	var m map[string]any
	if err := decode(r, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = fmt.Sprint(v)
		case bool:
			out[k] = fmt.Sprint(v)
		default:
			return nil, errInvalid(k)
		}
	}
	return out, nil
}

// token is the OAuth token endpoint (POST /v1/oauth/token, /v1/token).
func (s *Service) token(r *request) (any, error) {
	p, err := tokenParams(r)
	if err != nil {
		return nil, err
	}
	c, err := s.client(p["client_id"])
	if err != nil {
		return nil, err
	}
	ctx := r.r.Context()
	switch gt := p["grant_type"]; gt {
	case "authorization_code":
		code := p["code"]
		if code == "" {
			return nil, errMissing("code")
		}
		if p["code_verifier"] == "" && c.Public {
			return nil, errMissingPKCE
		}
		// The code is consumed even when what follows fails: a code that
		// met a wrong verifier or client is burnt (RFC 6749 §4.1.2).
		t, err := s.store.TakeToken(ctx, sha256Hex(code))
		if errors.Is(err, ErrNotFound) || (err == nil && t.Kind != KindCode) {
			return nil, errUnknownCode
		} else if err != nil {
			return nil, err
		}
		g := parseGrant(t)
		if g.ClientID != c.ID {
			return nil, errMismatchCode
		}
		if t.ExpiresAt < s.nowMS() {
			return nil, errExpiredCode
		}
		if g.RedirectURI != "" && p["redirect_uri"] != "" && p["redirect_uri"] != g.RedirectURI {
			return nil, errBadRedirect
		}
		if g.Challenge != "" {
			v := p["code_verifier"]
			sum := sha256.Sum256([]byte(v))
			if !validVerifier(v) || b64(sum[:]) != g.Challenge {
				return nil, errPKCE
			}
		}
		a, err := s.store.AccountByUID(ctx, t.UID)
		if errors.Is(err, ErrNotFound) {
			return nil, errUnknownCode
		} else if err != nil {
			return nil, err
		}
		if err := s.limits.grant(a.UID); err != nil {
			return nil, err
		}
		return s.grantTokens(r, a, c, strings.Fields(g.Scope), g.AccessType == "offline", g.KeysJWE, g.AuthAt, g.Session)
	case "refresh_token":
		rt := p["refresh_token"]
		if rt == "" {
			return nil, errMissing("refresh_token")
		}
		t, err := s.store.Token(ctx, sha256Hex(rt))
		if errors.Is(err, ErrNotFound) || (err == nil && (t.Kind != KindRefresh || (t.ExpiresAt > 0 && t.ExpiresAt < s.nowMS()))) {
			return nil, errUnknownRefresh
		} else if err != nil {
			return nil, err
		}
		g := parseGrant(t)
		if g.ClientID != c.ID {
			return nil, errUnknownRefresh
		}
		scopes := strings.Fields(g.Scope)
		if p["scope"] != "" {
			want, err := parseScopes(p["scope"])
			if err != nil {
				return nil, err
			}
			for _, w := range want {
				if !slices.Contains(scopes, w) {
					return nil, errInvalidScopes
				}
			}
			scopes = want
		}
		a, err := s.store.AccountByUID(ctx, t.UID)
		if err != nil {
			return nil, errUnknownRefresh
		}
		if err := s.limits.grant(a.UID); err != nil {
			return nil, err
		}
		_ = s.store.TouchToken(ctx, t.ID, s.nowMS())
		tok, ttl := s.mintAccessToken(a, c.ID, scopes, t.ID)
		return map[string]any{"access_token": tok, "token_type": "bearer", "scope": strings.Join(scopes, " "),
			"expires_in": ttl, "auth_at": g.AuthAt}, nil
	case "fxa-credentials":
		if err := s.authenticate(r, KindSession); err != nil {
			return nil, err
		}
		if err := s.limits.grant(r.account.UID); err != nil {
			return nil, err
		}
		scopes, err := parseScopes(p["scope"])
		if err != nil {
			return nil, err
		}
		at := p["access_type"]
		if at != "" && at != "online" && at != "offline" {
			return nil, errInvalid("access_type")
		}
		return s.grantTokens(r, r.account, c, scopes, at == "offline", "", r.token.CreatedAt/1000, r.token.ID)
	case "":
		return nil, errMissing("grant_type")
	default:
		return nil, errInvalid("grant_type")
	}
}

// grantTokens issues an access token and, for offline access, a refresh
// token; the session scope also gets a fresh session token.
func (s *Service) grantTokens(r *request, a Account, c Client, scopes []string, offline bool, keysJWE string, authAt int64, sessionID string) (any, error) {
	ctx := r.r.Context()
	tok, ttl := s.mintAccessToken(a, c.ID, scopes, sessionID)
	out := map[string]any{"access_token": tok, "token_type": "bearer", "scope": strings.Join(scopes, " "),
		"expires_in": ttl, "auth_at": authAt}
	if offline {
		rt := randomHex(32)
		now := s.nowMS()
		data, _ := json.Marshal(grant{ClientID: c.ID, Scope: strings.Join(scopes, " "), AuthAt: authAt})
		t := Token{ID: sha256Hex(rt), Kind: KindRefresh, UID: a.UID, Data: data, CreatedAt: now, LastUsed: now}
		if s.cfg.RefreshTokenTTL > 0 {
			t.ExpiresAt = now + s.cfg.RefreshTokenTTL.Milliseconds()
		}
		if err := s.putCapped(ctx, t); err != nil {
			return nil, err
		}
		out["refresh_token"] = rt
	}
	if keysJWE != "" {
		out["keys_jwe"] = keysJWE
	}
	if slices.Contains(scopes, ScopeSession) {
		raw, _, st := s.newToken(KindSession, "sessionToken", a.UID, sessionData{UserAgent: trunc(r.r.UserAgent(), 255)}, s.cfg.SessionTTL.Milliseconds())
		if err := s.putCapped(ctx, st); err != nil {
			return nil, err
		}
		out["session_token"] = hex.EncodeToString(raw)
	}
	return out, nil
}

// destroy revokes a refresh token or an access token (POST /v1/destroy,
// /v1/oauth/destroy). Revoking a JWT access token records its jti until it
// expires; revoking a refresh token also revokes the access tokens issued
// with it. weave's token server sees these revocations through
// RevocationCheck.
func (s *Service) destroy(r *request) (any, error) {
	var b struct {
		Token        string `json:"token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ClientID     string `json:"client_id"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	ctx := r.r.Context()
	tok := b.Token
	if tok == "" {
		tok = b.AccessToken
	}
	if b.RefreshToken != "" || (tok != "" && !strings.Contains(tok, ".")) {
		rt := b.RefreshToken
		if rt == "" {
			rt = tok
		}
		t, err := s.store.Token(ctx, sha256Hex(rt))
		if err != nil || t.Kind != KindRefresh {
			return nil, errUnknownRefresh
		}
		if err := s.endGrant(ctx, t.UID, t.ID); err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	}
	if tok == "" {
		return nil, errMissing("token")
	}
	c, a, err := s.parseAccessToken(ctx, tok)
	if err != nil {
		return nil, err
	}
	now := s.nowMS()
	if err := s.store.PutToken(ctx, Token{ID: sha256Hex("jti:" + c.Jti), Kind: KindRevoked, UID: a.UID, Data: []byte("{}"),
		CreatedAt: now, ExpiresAt: c.Exp*1000 + 1000}); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// verify is the OAuth server's /v1/verify, in the shape fxa.Verifier reads.
func (s *Service) verify(r *request) (any, error) {
	var b struct {
		Token string `json:"token"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if b.Token == "" {
		return nil, errMissing("token")
	}
	c, _, err := s.parseAccessToken(r.r.Context(), b.Token)
	if err != nil {
		return nil, err
	}
	return map[string]any{"user": c.Sub, "client_id": c.ClientID, "scope": strings.Fields(c.Scope),
		"generation": c.Generation, "profile_changed_at": nil}, nil
}

// bearer authenticates an OAuth access token carrying want (or a
// sub-scope of profile when want is "profile").
func (s *Service) bearer(r *request, want string) (accessClaims, Account, error) {
	h := r.r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return accessClaims{}, Account{}, errInvalidToken
	}
	c, a, err := s.parseAccessToken(r.r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return c, a, err
	}
	for _, sc := range strings.Fields(c.Scope) {
		if sc == want || strings.HasPrefix(sc, want+":") {
			return c, a, nil
		}
	}
	return c, a, newErr(403, ErrnoInvalidScopes, "Requested scopes are not allowed")
}

// profile is a minimal profile server GET /v1/profile.
func (s *Service) profile(r *request) (any, error) {
	_, a, err := s.bearer(r, ScopeProfile)
	if err != nil {
		return nil, err
	}
	return map[string]any{"uid": a.UID, "email": a.Email, "locale": a.Locale, "displayName": nil,
		"avatar": s.base + "/v1/avatar/default", "avatarDefault": true, "amrValues": []string{"pwd"},
		"twoFactorAuthentication": false, "subscriptions": []string{}}, nil
}

// scopedKeyData tells the client how to derive the scoped keys it may ask
// for (POST /v1/account/scoped-key-data, Hawk sessionToken). For oldsync
// the key is kSync and keyRotationTimestamp is keys_changed_at, which the
// client puts in X-KeyID for the token server.
func (s *Service) scopedKeyData(r *request) (any, error) {
	var b struct {
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if _, err := s.client(b.ClientID); err != nil {
		return nil, err
	}
	scopes, err := parseScopes(b.Scope)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, sc := range scopes {
		if sc == ScopeOldSync {
			out[sc] = map[string]any{"identifier": sc, "keyRotationSecret": strings.Repeat("0", 64),
				"keyRotationTimestamp": r.account.KeysChanged}
		}
	}
	return out, nil
}

// clientConfiguration is /.well-known/fxa-client-configuration: every FxA
// service Firefox talks to is this weave.
func (s *Service) clientConfiguration(*request) (any, error) {
	return map[string]any{
		"auth_server_base_url":    s.base,
		"oauth_server_base_url":   s.base,
		"profile_server_base_url": s.base,
		// Firefox reads this one key as …_uri (FxAccountsConfig). weave
		// has no pairing channel server: an unreachable one makes QR
		// pairing fail at once instead of half-working through Mozilla's.
		"pairing_server_base_uri":   "wss://pairing.invalid",
		"sync_tokenserver_base_url": s.base,
	}, nil
}

func (s *Service) openIDConfiguration(*request) (any, error) {
	return map[string]any{
		"issuer":                                s.base,
		"authorization_endpoint":                s.base + "/authorization",
		"token_endpoint":                        s.base + "/v1/token",
		"revocation_endpoint":                   s.base + "/v1/destroy",
		"userinfo_endpoint":                     s.base + "/v1/profile",
		"jwks_uri":                              s.base + "/v1/jwks",
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{ScopeProfile, ScopeOldSync, ScopeSession},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	}, nil
}
