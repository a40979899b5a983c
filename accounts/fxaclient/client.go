// Package fxaclient is a small Go client of the FxA protocols weave's
// accounts service speaks (onepw sign-up/sign-in/keys, OAuth, scoped keys):
// what a CLI client does, and what the tests use end to end. It works
// against any FxA-compatible server.
package fxaclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/hawk"
)

// Error is an FxA error response.
type Error struct {
	Code    int
	Errno   int
	Message string
	Body    map[string]any
}

func (e *Error) Error() string {
	return fmt.Sprintf("fxa: %d errno %d: %s", e.Code, e.Errno, e.Message)
}

// Client talks to one accounts server (auth, OAuth and profile at the same
// base URL, as weave serves them).
type Client struct {
	BaseURL string // without /v1
	HTTP    *http.Client
	// Now is the clock for Hawk timestamps (default time.Now).
	Now func() time.Time
}

// New returns a Client for baseURL.
func New(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// HawkCred is a token's derived Hawk credentials.
type HawkCred struct {
	ID  string // hex token id
	Key string // raw key bytes
}

// Cred derives the Hawk credentials of a raw token.
func Cred(token []byte, name string) HawkCred {
	k := onepw.DeriveToken(token, name)
	return HawkCred{ID: hex.EncodeToString(k.ID), Key: string(k.HMACKey)}
}

// Do sends a request; body (if non-nil) is JSON-encoded; with cred it is
// Hawk-signed with a payload hash. The decoded JSON response goes to out.
func (c *Client) Do(ctx context.Context, method, path string, cred *HawkCred, body, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	return c.DoRaw(ctx, method, path, cred, "application/json", raw, nil, out)
}

// DoRaw is Do with a pre-encoded body and extra headers (tests use it for
// malformed input).
func (c *Client) DoRaw(ctx context.Context, method, path string, cred *HawkCred, contentType string, raw []byte, hdr http.Header, out any) error {
	u := c.BaseURL + path
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if raw != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if cred != nil {
		ct := ""
		if raw != nil {
			ct = contentType
		}
		a, err := hawk.Sign(cred.Key, cred.ID, method, u, ct, raw, c.now(), "")
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", a)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Code: resp.StatusCode}
		if json.Unmarshal(b, &e.Body) == nil {
			if n, ok := e.Body["errno"].(float64); ok {
				e.Errno = int(n)
			}
			e.Message, _ = e.Body["message"].(string)
		}
		return e
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Session is a signed-in session.
type Session struct {
	Email         string
	UID           string
	SessionToken  []byte
	KeyFetchToken []byte // nil once used
	UnwrapBKey    []byte
	Verified      bool
}

// Cred is the session token's Hawk credentials.
func (s *Session) Cred() *HawkCred { c := Cred(s.SessionToken, "sessionToken"); return &c }

type authResp struct {
	UID           string `json:"uid"`
	SessionToken  string `json:"sessionToken"`
	KeyFetchToken string `json:"keyFetchToken"`
	Verified      bool   `json:"verified"`
}

func (c *Client) auth(ctx context.Context, path, email, password string) (*Session, error) {
	cr := onepw.Stretch(email, password)
	var r authResp
	if err := c.Do(ctx, "POST", path+"?keys=true", nil, map[string]string{"email": email, "authPW": hex.EncodeToString(cr.AuthPW)}, &r); err != nil {
		return nil, err
	}
	s := &Session{Email: email, UID: r.UID, UnwrapBKey: cr.UnwrapBKey, Verified: r.Verified}
	var err1, err2 error
	s.SessionToken, err1 = hex.DecodeString(r.SessionToken)
	s.KeyFetchToken, err2 = hex.DecodeString(r.KeyFetchToken)
	if err1 != nil || err2 != nil || len(s.SessionToken) != 32 || len(s.KeyFetchToken) != 32 {
		return nil, fmt.Errorf("fxa: malformed tokens in %s response", path)
	}
	return s, nil
}

// SignUp creates an account (account/create?keys=true).
func (c *Client) SignUp(ctx context.Context, email, password string) (*Session, error) {
	return c.auth(ctx, "/v1/account/create", email, password)
}

// SignIn signs in (account/login?keys=true). On errno 120 (the account's
// email differs in case) it retries once with the spelling the server gave,
// since that spelling salted the password stretch.
func (c *Client) SignIn(ctx context.Context, email, password string) (*Session, error) {
	s, err := c.auth(ctx, "/v1/account/login", email, password)
	if e, ok := err.(*Error); ok && e.Errno == 120 {
		if stored, _ := e.Body["email"].(string); stored != "" && stored != email {
			return c.auth(ctx, "/v1/account/login", stored, password)
		}
	}
	return s, err
}

// Keys fetches kA and wrapKb with the session's keyFetchToken (single use)
// and returns kA and kB.
func (c *Client) Keys(ctx context.Context, s *Session) (kA, kB []byte, err error) {
	if s.KeyFetchToken == nil {
		return nil, nil, fmt.Errorf("fxa: keyFetchToken already used")
	}
	k := onepw.DeriveToken(s.KeyFetchToken, "keyFetchToken")
	cred := HawkCred{ID: hex.EncodeToString(k.ID), Key: string(k.HMACKey)}
	var r struct {
		Bundle string `json:"bundle"`
	}
	err = c.Do(ctx, "GET", "/v1/account/keys", &cred, nil, &r)
	s.KeyFetchToken = nil
	if err != nil {
		return nil, nil, err
	}
	b, err := hex.DecodeString(r.Bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("fxa: bad bundle: %w", err)
	}
	pt, err := onepw.OpenBundle(k.Extra, "account/keys", b)
	if err != nil {
		return nil, nil, err
	}
	if len(pt) != 64 {
		return nil, nil, fmt.Errorf("fxa: bundle has %d bytes, want 64", len(pt))
	}
	return pt[:32], onepw.XOR(pt[32:], s.UnwrapBKey), nil
}

// ScopedKeyData is one entry of account/scoped-key-data.
type ScopedKeyData struct {
	Identifier           string `json:"identifier"`
	KeyRotationSecret    string `json:"keyRotationSecret"`
	KeyRotationTimestamp int64  `json:"keyRotationTimestamp"`
}

// ScopedKeyData asks which scoped keys the client may derive.
func (c *Client) ScopedKeyData(ctx context.Context, s *Session, clientID, scope string) (map[string]ScopedKeyData, error) {
	out := map[string]ScopedKeyData{}
	err := c.Do(ctx, "POST", "/v1/account/scoped-key-data", s.Cred(), map[string]string{"client_id": clientID, "scope": scope}, &out)
	return out, err
}

// SyncKeys are what a Sync client needs from kB.
type SyncKeys struct {
	KSync       []byte // 64 bytes: encryption key ‖ HMAC key
	KeyID       string // X-KeyID for the token server
	ClientState string // hex kXCS (X-Client-State)
}

// DeriveSyncKeys derives the oldsync scoped key from kB and the
// keyRotationTimestamp of scoped-key-data.
func DeriveSyncKeys(kB []byte, keyRotationTimestamp int64) SyncKeys {
	return SyncKeys{KSync: onepw.KSync(kB), KeyID: onepw.KeyID(keyRotationTimestamp, kB), ClientState: hex.EncodeToString(onepw.KXCS(kB))}
}

// TokenResponse is an OAuth token response.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	KeysJWE      string `json:"keys_jwe"`
	SessionToken string `json:"session_token"`
	AuthAt       int64  `json:"auth_at"`
}

// TokenWithSession gets an OAuth token with grant_type fxa-credentials.
func (c *Client) TokenWithSession(ctx context.Context, s *Session, clientID, scope string, offline bool) (*TokenResponse, error) {
	at := "online"
	if offline {
		at = "offline"
	}
	var r TokenResponse
	err := c.Do(ctx, "POST", "/v1/oauth/token", s.Cred(), map[string]string{
		"grant_type": "fxa-credentials", "client_id": clientID, "scope": scope, "access_type": at}, &r)
	return &r, err
}

// PKCE is a code verifier and its S256 challenge.
type PKCE struct{ Verifier, Challenge string }

// NewPKCE makes a random PKCE pair.
func NewPKCE() PKCE {
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return PKCE{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// AuthorizeRequest is the body of /v1/oauth/authorization.
type AuthorizeRequest struct {
	ClientID            string `json:"client_id"`
	Scope               string `json:"scope"`
	State               string `json:"state"`
	ResponseType        string `json:"response_type"`
	AccessType          string `json:"access_type,omitempty"`
	CodeChallenge       string `json:"code_challenge,omitempty"`
	CodeChallengeMethod string `json:"code_challenge_method,omitempty"`
	KeysJWE             string `json:"keys_jwe,omitempty"`
	RedirectURI         string `json:"redirect_uri,omitempty"`
}

// Authorize asks for an authorization code for the session's account.
func (c *Client) Authorize(ctx context.Context, s *Session, req AuthorizeRequest) (code string, err error) {
	var r struct {
		Code  string `json:"code"`
		State string `json:"state"`
	}
	if err := c.Do(ctx, "POST", "/v1/oauth/authorization", s.Cred(), req, &r); err != nil {
		return "", err
	}
	if r.State != req.State {
		return "", fmt.Errorf("fxa: state mismatch")
	}
	return r.Code, nil
}

// TokenFromCode redeems an authorization code with its PKCE verifier.
func (c *Client) TokenFromCode(ctx context.Context, clientID, code, verifier string) (*TokenResponse, error) {
	var r TokenResponse
	err := c.Do(ctx, "POST", "/v1/token", nil, map[string]string{
		"grant_type": "authorization_code", "client_id": clientID, "code": code, "code_verifier": verifier}, &r)
	return &r, err
}

// Refresh gets a new access token from a refresh token.
func (c *Client) Refresh(ctx context.Context, clientID, refreshToken, scope string) (*TokenResponse, error) {
	var r TokenResponse
	err := c.Do(ctx, "POST", "/v1/token", nil, map[string]string{
		"grant_type": "refresh_token", "client_id": clientID, "refresh_token": refreshToken, "scope": scope}, &r)
	return &r, err
}

// DestroySession signs the session out.
func (c *Client) DestroySession(ctx context.Context, s *Session) error {
	return c.Do(ctx, "POST", "/v1/session/destroy", s.Cred(), map[string]any{}, nil)
}

// DestroyAccount deletes the account.
func (c *Client) DestroyAccount(ctx context.Context, email, password string) error {
	cr := onepw.Stretch(email, password)
	return c.Do(ctx, "POST", "/v1/account/destroy", nil, map[string]string{"email": email, "authPW": hex.EncodeToString(cr.AuthPW)}, nil)
}

// ChangePassword runs password/change/start and /finish: it fetches kB
// with the old password, re-wraps it for the new one (wrapKb = kB XOR new
// unwrapBKey) so the sync keys survive, and returns the new session.
func (c *Client) ChangePassword(ctx context.Context, email, oldPassword, newPassword string) (*Session, error) {
	oldCr, newCr := onepw.Stretch(email, oldPassword), onepw.Stretch(email, newPassword)
	var start struct {
		KeyFetchToken       string `json:"keyFetchToken"`
		PasswordChangeToken string `json:"passwordChangeToken"`
	}
	if err := c.Do(ctx, "POST", "/v1/password/change/start", nil, map[string]string{"email": email, "oldAuthPW": hex.EncodeToString(oldCr.AuthPW)}, &start); err != nil {
		return nil, err
	}
	kft, err1 := hex.DecodeString(start.KeyFetchToken)
	pct, err2 := hex.DecodeString(start.PasswordChangeToken)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("fxa: malformed password/change/start response")
	}
	_, kB, err := c.Keys(ctx, &Session{KeyFetchToken: kft, UnwrapBKey: oldCr.UnwrapBKey})
	if err != nil {
		return nil, err
	}
	cred := Cred(pct, "passwordChangeToken")
	var r authResp
	if err := c.Do(ctx, "POST", "/v1/password/change/finish?keys=true", &cred, map[string]string{
		"authPW": hex.EncodeToString(newCr.AuthPW), "wrapKb": hex.EncodeToString(onepw.XOR(kB, newCr.UnwrapBKey))}, &r); err != nil {
		return nil, err
	}
	s := &Session{Email: email, UID: r.UID, UnwrapBKey: newCr.UnwrapBKey, Verified: r.Verified}
	s.SessionToken, err1 = hex.DecodeString(r.SessionToken)
	s.KeyFetchToken, err2 = hex.DecodeString(r.KeyFetchToken)
	if err1 != nil || err2 != nil || len(s.SessionToken) != 32 {
		return nil, fmt.Errorf("fxa: malformed password/change/finish response")
	}
	return s, nil
}
