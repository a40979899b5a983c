package accounts

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/weave-sync/weave/accounts/onepw"
)

// Password changes and resets, with the token server's semantics
// (tokenserver-1.0.md §5.3–5.4): the OAuth "fxa-generation" claim is the
// account's VerifierSet, keys_changed_at (keyRotationTimestamp, X-KeyID) is
// KeysChanged.
//
//   - ChangePassword keeps kB (wrapKb is re-wrapped under the new
//     password): generation rises, keys_changed_at stays, so the token
//     server keeps the user's uid and data and refuses tokens minted before
//     the change (invalid-generation).
//   - ResetPassword (forgotten password, operator reset) cannot recover kB:
//     new kA and wrapKb, so a new kB and client state; generation and
//     keys_changed_at both become now (equal, so rule 1 of §5.3 holds), and
//     the token server allocates a new uid: the old, undecryptable data is
//     left behind.
//
// Both drop every session, keyFetch token, code and refresh token of the
// account (devices are kept), in one transaction.

// ChangePassword verifies oldAuthPW and sets newAuthPW. newWrapKb is
// kB XOR the new unwrapBKey, computed by the client (which alone knows kB
// and the new password), so kB survives the change.
func (s *Service) ChangePassword(ctx context.Context, email string, oldAuthPW, newAuthPW, newWrapKb []byte) error {
	a, _, err := s.checkPassword(ctx, email, oldAuthPW)
	if err != nil {
		return err
	}
	if err := s.changeCredentials(ctx, &a, newAuthPW, newWrapKb); err != nil {
		return err
	}
	return s.store.UpdateCredentials(ctx, a, nil)
}

// changeCredentials re-salts and re-wraps for a new password, keeping kA
// and (through newWrapKb) kB, and bumps the generation.
func (s *Service) changeCredentials(ctx context.Context, a *Account, newAuthPW, newWrapKb []byte) error {
	a.AuthSalt, a.ScryptN = randomBytes(32), s.cfg.Scrypt.N
	if err := s.setPassword(ctx, a, newAuthPW, newWrapKb); err != nil {
		return err
	}
	a.VerifierSet = max(s.nowMS(), a.VerifierSet+1)
	return nil
}

// ResetPassword sets a new password without knowing the old one, which
// replaces the account's keys (see above). It is what `weave account
// reset-password` calls.
func (s *Service) ResetPassword(ctx context.Context, email string, newAuthPW []byte) error {
	old, err := s.store.AccountByEmail(ctx, NormalizeEmail(email))
	if errors.Is(err, ErrNotFound) {
		return errUnknownAccount.with("email", email)
	} else if err != nil {
		return err
	}
	a, _, err := s.newCredentials(ctx, newAuthPW)
	if err != nil {
		return err
	}
	now := max(s.nowMS(), old.VerifierSet+1, old.KeysChanged+1)
	a.UID, a.Email, a.NormEmail, a.CreatedAt, a.Locale = old.UID, old.Email, old.NormEmail, old.CreatedAt, old.Locale
	a.VerifierSet, a.KeysChanged = now, now
	if err := s.store.UpdateCredentials(ctx, a, nil); err != nil {
		return err
	}
	// Every session is gone; the devices stay and learn it now rather
	// than at their next sync.
	s.notifyAccount(ctx, a.UID, "", newNotice(pushPasswordReset, nil), ttlPasswordChanged)
	return nil
}

// CreateAccount creates an account for an operator (`weave account
// create`), who knows the password: the client-side stretch is done here.
// It returns the new uid.
func (s *Service) CreateAccount(ctx context.Context, email, password string) (string, error) {
	if !validEmail(email) {
		return "", errInvalid("email")
	}
	a, _, err := s.newCredentials(ctx, onepw.Stretch(email, password).AuthPW)
	if err != nil {
		return "", err
	}
	a.UID, a.Email, a.NormEmail = randomHex(16), email, NormalizeEmail(email)
	a.CreatedAt = a.VerifierSet
	if err := s.store.CreateAccount(ctx, a, nil); errors.Is(err, ErrEmailExists) {
		return "", errAccountExists.with("email", email)
	} else if err != nil {
		return "", err
	}
	return a.UID, nil
}

// Account returns the account with the given email.
func (s *Service) Account(ctx context.Context, email string) (Account, error) {
	return s.store.AccountByEmail(ctx, NormalizeEmail(email))
}

// ListAccounts pages through accounts by uid (`weave account list`).
func (s *Service) ListAccounts(ctx context.Context, afterUID string, limit int) ([]Account, error) {
	return s.store.ListAccounts(ctx, afterUID, limit)
}

// ResetPasswordTo resets an account's password given the password itself
// (operator command): the client stretch is done here.
func (s *Service) ResetPasswordTo(ctx context.Context, email, password string) error {
	a, err := s.store.AccountByEmail(ctx, NormalizeEmail(email))
	if errors.Is(err, ErrNotFound) {
		return errUnknownAccount.with("email", email)
	} else if err != nil {
		return err
	}
	// The stretch is salted with the email as stored, which clients use.
	return s.ResetPassword(ctx, a.Email, onepw.Stretch(a.Email, password).AuthPW)
}

// Purge deletes expired tokens, codes and revocation records; run it
// periodically.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	return s.store.PurgeExpired(ctx, s.nowMS())
}

// KindPasswordChange is the token kind of passwordChangeToken.
const KindPasswordChange = "passwordChange"

// passwordChangeStart is POST /v1/password/change/start {email, oldAuthPW}:
// it checks the old password and returns a keyFetchToken (so the client can
// compute the new wrapKb) and a passwordChangeToken for finish.
func (s *Service) passwordChangeStart(r *request) (any, error) {
	if err := s.limits.checkIP(r.ip, "auth"); err != nil {
		return nil, err
	}
	var b struct {
		Email     string `json:"email"`
		OldAuthPW string `json:"oldAuthPW"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	authPW, err := credentialsBody{Email: b.Email, AuthPW: b.OldAuthPW}.check()
	if err != nil {
		if e, ok := err.(*Error); ok && e.Errno == ErrnoMissingParameter && b.Email != "" {
			return nil, errMissing("oldAuthPW")
		}
		return nil, err
	}
	a, wrapKb, err := s.checkPassword(r.r.Context(), b.Email, authPW)
	if err != nil {
		return nil, err
	}
	out, toks := s.issueTokens(r, a.UID, a.KA, wrapKb, true)
	raw, _, pt := s.newToken(KindPasswordChange, "passwordChangeToken", a.UID, nil, 15*time.Minute.Milliseconds())
	toks = append(toks[1:], pt) // no session from start
	for _, t := range toks {
		if err := s.store.PutToken(r.r.Context(), t); err != nil {
			return nil, err
		}
	}
	return map[string]any{"keyFetchToken": out["keyFetchToken"], "passwordChangeToken": hex.EncodeToString(raw), "verified": true}, nil
}

// passwordChangeFinish is POST /v1/password/change/finish (Hawk
// passwordChangeToken) {authPW, wrapKb}: every old token is dropped and a
// new session (and keyFetch token with ?keys=true) is returned.
func (s *Service) passwordChangeFinish(r *request) (any, error) {
	var b struct {
		AuthPW string `json:"authPW"`
		WrapKb string `json:"wrapKb"`
		// SessionToken is the id of the session the change comes from (a
		// Firefox handing its session to the account page): its device
		// gets the new session through the WebChannel, not a push.
		SessionToken *string `json:"sessionToken"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	origin := ""
	if b.SessionToken != nil {
		if len(*b.SessionToken) != 64 || !isLowerHex(*b.SessionToken) {
			return nil, errInvalid("sessionToken")
		}
		origin = *b.SessionToken
	}
	authPW, err := hexParam("authPW", b.AuthPW, onepw.KeyLen)
	if err != nil {
		return nil, err
	}
	wrapKb, err := hexParam("wrapKb", b.WrapKb, onepw.KeyLen)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.TakeToken(r.r.Context(), r.token.ID); errors.Is(err, ErrNotFound) {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	a := r.account
	if err := s.changeCredentials(r.r.Context(), &a, authPW, wrapKb); err != nil {
		return nil, err
	}
	out, toks := s.issueTokens(r, a.UID, a.KA, wrapKb, wantKeys(r))
	if err := s.store.UpdateCredentials(r.r.Context(), a, toks); err != nil {
		return nil, err
	}
	// Every old session is gone: the devices learn it now (Firefox checks
	// its session and asks the user to sign in again) instead of at their
	// next sync, all but the one the change came from.
	except := ""
	if origin != "" {
		if devs, err := s.deviceList(r.r.Context(), a.UID); err == nil {
			for _, d := range devs {
				if d.SessionTokenID == origin {
					except = d.ID
				}
			}
		}
	}
	s.notifyAccount(r.r.Context(), a.UID, except, newNotice(pushPasswordChanged, nil), ttlPasswordChanged)
	return out, nil
}
