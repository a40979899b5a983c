package accounts

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/weave-sync/weave/accounts/onepw"
)

// NormalizeEmail is the lookup key of an email address: lower-cased, as FxA
// compares them.
func NormalizeEmail(email string) string { return strings.ToLower(email) }

// validEmail accepts local@domain of printable characters: no space,
// control (ESC, BEL, …), format or bidi-control characters (U+202E would
// reorder what an operator's terminal or a web page shows), as FxA's
// validator refuses them (400 errno 107).
func validEmail(e string) bool {
	at := strings.LastIndexByte(e, '@')
	if !(at > 0 && at < len(e)-1 && len(e) <= 255 && utf8.ValidString(e) && !strings.Contains(e[at+1:], "@")) {
		return false
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Bidi_Control, r) ||
			!unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func hexParam(name, v string, n int) ([]byte, error) {
	if v == "" {
		return nil, errMissing(name)
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != n {
		return nil, errInvalid(name)
	}
	return b, nil
}

type credentialsBody struct {
	Email  string `json:"email"`
	AuthPW string `json:"authPW"`
	// Sign-up in captcha mode only (POST /v1/captcha).
	CaptchaID     string `json:"captchaId"`
	CaptchaAnswer string `json:"captchaAnswer"`
}

func (b credentialsBody) check() ([]byte, error) {
	if b.Email == "" {
		return nil, errMissing("email")
	}
	if !validEmail(b.Email) {
		return nil, errInvalid("email")
	}
	return hexParam("authPW", b.AuthPW, onepw.KeyLen)
}

// newToken makes a token of kind for uid: 32 random bytes (returned, for
// the client) and the stored record keyed by the derived Hawk id.
func (s *Service) newToken(kind, name, uid string, data any, ttlMS int64) ([]byte, onepw.TokenKeys, Token) {
	raw := randomBytes(onepw.KeyLen)
	k := onepw.DeriveToken(raw, name)
	now := s.nowMS()
	t := Token{ID: hex.EncodeToString(k.ID), Kind: kind, UID: uid, AuthKey: k.HMACKey, Data: []byte("{}"), CreatedAt: now, LastUsed: now}
	if data != nil {
		t.Data, _ = json.Marshal(data)
	}
	if ttlMS > 0 {
		t.ExpiresAt = now + ttlMS
	}
	return raw, k, t
}

type keyFetchData struct {
	Bundle string `json:"bundle"`
}

type sessionData struct {
	UserAgent string `json:"userAgent,omitempty"`
}

// issueTokens makes a session token and, when keys is set, a keyFetch
// token carrying kA‖wrapKb sealed for the client.
func (s *Service) issueTokens(r *request, uid string, kA, wrapKb []byte, keys bool) (map[string]any, []Token) {
	sess, _, st := s.newToken(KindSession, "sessionToken", uid, sessionData{UserAgent: trunc(r.r.UserAgent(), 255)}, s.cfg.SessionTTL.Milliseconds())
	out := map[string]any{"uid": uid, "sessionToken": hex.EncodeToString(sess), "verified": true, "authAt": s.now().Unix()}
	toks := []Token{st}
	if keys {
		var plain []byte
		plain = append(append(plain, kA...), wrapKb...)
		raw, k, _ := s.newToken(KindKeyFetch, "keyFetchToken", uid, nil, 0)
		kt := Token{ID: hex.EncodeToString(k.ID), Kind: KindKeyFetch, UID: uid, AuthKey: k.HMACKey, CreatedAt: s.nowMS(), ExpiresAt: s.nowMS() + s.cfg.KeyFetchTTL.Milliseconds()}
		kt.Data, _ = json.Marshal(keyFetchData{Bundle: hex.EncodeToString(onepw.SealBundle(k.Extra, "account/keys", plain))})
		out["keyFetchToken"] = hex.EncodeToString(raw)
		toks = append(toks, kt)
	}
	return out, toks
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func wantKeys(r *request) bool { return r.r.URL.Query().Get("keys") == "true" }

// credentials reads the {email, authPW} body of create, login and destroy,
// after the per-address rate limit.
func (s *Service) credentials(r *request) (credentialsBody, []byte, error) {
	var b credentialsBody
	if err := s.limits.checkIP(r.ip, "auth"); err != nil {
		return b, nil, err
	}
	if err := decode(r, &b); err != nil {
		return b, nil, err
	}
	authPW, err := b.check()
	return b, authPW, err
}

func (s *Service) accountCreate(r *request) (any, error) {
	if s.cfg.SignupClosed {
		return nil, newErr(400, ErrnoRequestBlocked, "The request was blocked for security reasons")
	}
	b, authPW, err := s.credentials(r)
	if err != nil {
		return nil, err
	}
	// Before the slow stretch; a captcha is spent even if what follows
	// fails (the page asks for a new one).
	if err := s.checkSignupCaptcha(r, b.CaptchaID, b.CaptchaAnswer); err != nil {
		return nil, err
	}
	if err := s.limits.checkIP(r.ip, "signup"); err != nil {
		return nil, err
	}
	a, wrapKb, err := s.newCredentials(r.r.Context(), authPW)
	if err != nil {
		return nil, err
	}
	a.UID, a.Email, a.NormEmail = randomHex(16), b.Email, NormalizeEmail(b.Email)
	a.CreatedAt = a.VerifierSet
	out, toks := s.issueTokens(r, a.UID, a.KA, wrapKb, wantKeys(r))
	if err := s.store.CreateAccount(r.r.Context(), a, toks); errors.Is(err, ErrEmailExists) {
		return nil, errAccountExists.with("email", b.Email)
	} else if err != nil {
		return nil, err
	}
	return out, nil
}

// newCredentials stretches authPW under a fresh salt and makes new random
// kA and wrapKb (a new kB): sign-up and password reset.
func (s *Service) newCredentials(ctx context.Context, authPW []byte) (Account, []byte, error) {
	a := Account{AuthSalt: randomBytes(32), ScryptN: s.cfg.Scrypt.N, KA: randomBytes(32)}
	wrapKb := randomBytes(32)
	if err := s.setPassword(ctx, &a, authPW, wrapKb); err != nil {
		return a, nil, err
	}
	now := s.nowMS()
	a.VerifierSet, a.KeysChanged = now, now
	return a, wrapKb, nil
}

// setPassword fills VerifyHash and WrapWrapKb for authPW, keeping wrapKb.
func (s *Service) setPassword(ctx context.Context, a *Account, authPW, wrapKb []byte) error {
	sk, err := s.stretch(ctx, authPW, a.AuthSalt, onepw.ScryptParams{N: a.ScryptN, R: 8, P: 1})
	if err != nil {
		return err
	}
	a.VerifyHash, a.WrapWrapKb = sk.VerifyHash, onepw.XOR(wrapKb, sk.WrapWrapKey)
	return nil
}

// checkPassword looks the account up and verifies authPW, applying the
// lockout; it returns the account and its unwrapped wrapKb.
func (s *Service) checkPassword(ctx context.Context, email string, authPW []byte) (Account, []byte, error) {
	norm := NormalizeEmail(email)
	done, err := s.limits.reserveAttempt(ctx, norm)
	if err != nil {
		return Account{}, nil, err
	}
	failed := false
	defer func() { done(failed) }()
	a, err := s.store.AccountByEmail(ctx, norm)
	if errors.Is(err, ErrNotFound) {
		return a, nil, errUnknownAccount.with("email", email)
	} else if err != nil {
		return a, nil, err
	}
	sk, err := s.stretch(ctx, authPW, a.AuthSalt, onepw.ScryptParams{N: a.ScryptN, R: 8, P: 1})
	if err != nil {
		return a, nil, err
	}
	if subtle.ConstantTimeCompare(sk.VerifyHash, a.VerifyHash) != 1 {
		failed = true
		if email != a.Email {
			return a, nil, newErr(400, ErrnoIncorrectEmailCase, "Incorrect email case").with("email", a.Email)
		}
		return a, nil, errBadPassword.with("email", a.Email)
	}
	return a, onepw.XOR(a.WrapWrapKb, sk.WrapWrapKey), nil
}

func (s *Service) accountLogin(r *request) (any, error) {
	b, authPW, err := s.credentials(r)
	if err != nil {
		return nil, err
	}
	a, wrapKb, err := s.checkPassword(r.r.Context(), b.Email, authPW)
	if err != nil {
		return nil, err
	}
	// A sign-in is a grant too: a known password must not mint sessions
	// without bound.
	if err := s.limits.grant(a.UID); err != nil {
		return nil, err
	}
	out, toks := s.issueTokens(r, a.UID, a.KA, wrapKb, wantKeys(r))
	for _, t := range toks {
		if err := s.putCapped(r.r.Context(), t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) accountKeys(r *request) (any, error) {
	// Single use: whoever takes the token first gets the bundle.
	t, err := s.store.TakeToken(r.r.Context(), r.token.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	var d keyFetchData
	if err := json.Unmarshal(t.Data, &d); err != nil || d.Bundle == "" {
		return nil, errInvalidToken
	}
	return map[string]any{"bundle": d.Bundle}, nil
}

func (s *Service) accountStatus(r *request) (any, error) {
	if err := s.limits.checkIP(r.ip, "auth"); err != nil {
		return nil, err
	}
	ctx := r.r.Context()
	var err error
	switch r.r.Method {
	case "GET":
		uid := r.r.URL.Query().Get("uid")
		if uid == "" {
			return nil, errMissing("uid")
		}
		if _, e := hex.DecodeString(uid); e != nil || len(uid) != 32 {
			return nil, errInvalid("uid")
		}
		_, err = s.store.AccountByUID(ctx, strings.ToLower(uid))
	case "POST":
		var b struct {
			Email string `json:"email"`
		}
		if err := decode(r, &b); err != nil {
			return nil, err
		}
		if b.Email == "" {
			return nil, errMissing("email")
		}
		_, err = s.store.AccountByEmail(ctx, NormalizeEmail(b.Email))
	default:
		return nil, errMethod
	}
	if errors.Is(err, ErrNotFound) {
		return map[string]any{"exists": false}, nil
	} else if err != nil {
		return nil, err
	}
	return map[string]any{"exists": true}, nil
}

func (s *Service) accountDestroy(r *request) (any, error) {
	b, authPW, err := s.credentials(r)
	if err != nil {
		return nil, err
	}
	a, _, err := s.checkPassword(r.r.Context(), b.Email, authPW)
	if err != nil {
		return nil, err
	}
	if err := s.DeleteAccount(r.r.Context(), a.UID); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// DeleteAccount deletes an account's Sync data (Config.DeleteSyncData),
// then the account and every token it holds (operator command and
// account/destroy). Once it returns, every credential of the account is
// dead: sessions and refresh tokens are gone, and access tokens fail
// RevocationCheck because the account is.
func (s *Service) DeleteAccount(ctx context.Context, uid string) error {
	if s.cfg.DeleteSyncData != nil {
		if err := s.cfg.DeleteSyncData(ctx, uid); err != nil {
			return fmt.Errorf("accounts: delete the Sync data of %s: %w", uid, err)
		}
	}
	devs, err := s.deviceList(ctx, uid)
	if err != nil {
		return err
	}
	if err := s.store.DeleteAccount(ctx, uid); err != nil {
		return err
	}
	// The devices, listed before they went, sign out.
	s.push.notify(uid, devs, newNotice(pushAccountDestroyed, map[string]string{"uid": uid}), ttlAccountDestroyed)
	return nil
}

func (s *Service) accountProfile(r *request) (any, error) {
	return map[string]any{"email": r.account.Email, "locale": r.account.Locale,
		"authenticationMethods": []string{"pwd"}, "authenticatorAssuranceLevel": 1}, nil
}

func (s *Service) sessionStatus(r *request) (any, error) {
	return map[string]any{"state": "verified", "uid": r.account.UID}, nil
}

// recoveryEmailStatus: weave sends no mail, so every address counts as
// verified (documented in the package comment).
func (s *Service) recoveryEmailStatus(r *request) (any, error) {
	return map[string]any{"email": r.account.Email, "verified": true, "sessionVerified": true, "emailVerified": true}, nil
}
