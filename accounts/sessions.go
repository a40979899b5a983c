package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
)

// Sessions: a user sees them (GET /v1/account/sessions, `weave account
// sessions`) and ends one or all (POST /v1/session/destroy, `weave account
// sign-out`). Ending a session also revokes the access tokens issued
// through it, at once and at weave's token server too (see Revoked).

// SessionInfo describes one live session of an account.
type SessionInfo struct {
	ID         string // the session token's id (not a credential: see bearerToken)
	CreatedAt  int64  // ms
	LastUsed   int64  // ms
	UserAgent  string
	DeviceID   string // "" when no device is registered on the session
	DeviceName string
	DeviceType string
}

// Sessions lists the live sessions of the account uid, oldest first.
func (s *Service) Sessions(ctx context.Context, uid string) ([]SessionInfo, error) {
	toks, err := s.store.Tokens(ctx, uid, KindSession)
	if err != nil {
		return nil, err
	}
	devs, err := s.store.Tokens(ctx, uid, KindDevice)
	if err != nil {
		return nil, err
	}
	bySession := map[string]deviceData{}
	for _, d := range devs {
		dd := parseDevice(d)
		bySession[dd.SessionTokenID] = dd
	}
	var out []SessionInfo
	for _, t := range toks {
		if !s.live(t) {
			continue
		}
		var sd sessionData
		_ = json.Unmarshal(t.Data, &sd)
		si := SessionInfo{ID: t.ID, CreatedAt: t.CreatedAt, LastUsed: max(t.LastUsed, t.CreatedAt), UserAgent: sd.UserAgent}
		if d, ok := bySession[t.ID]; ok {
			si.DeviceID, si.DeviceName, si.DeviceType = d.ID, d.Name, d.Type
		}
		out = append(out, si)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, nil
}

// accountSessions is FxA's GET /v1/account/sessions (Hawk sessionToken).
func (s *Service) accountSessions(r *request) (any, error) {
	ss, err := s.Sessions(r.r.Context(), r.account.UID)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, si := range ss {
		out = append(out, map[string]any{
			"id": si.ID, "createdTime": si.CreatedAt, "lastAccessTime": si.LastUsed,
			"userAgent": si.UserAgent, "isCurrentDevice": si.ID == r.token.ID, "isDevice": si.DeviceID != "",
			"deviceId": nullIfEmpty(si.DeviceID), "deviceName": nullIfEmpty(si.DeviceName),
			"deviceType": nullIfEmpty(si.DeviceType), "location": map[string]any{},
		})
	}
	return out, nil
}

// sessionDestroy is POST /v1/session/destroy (Hawk sessionToken): it ends
// the calling session or, with customSessionToken (a session id from
// /v1/account/sessions), another session of the same account; an id that
// names no session of the account is errno 110, as in FxA.
func (s *Service) sessionDestroy(r *request) (any, error) {
	var b struct {
		CustomSessionToken *string `json:"customSessionToken"`
	}
	if len(r.body) > 0 && string(r.body) != "null" {
		if err := decode(r, &b); err != nil {
			return nil, err
		}
	}
	id := r.token.ID
	if b.CustomSessionToken != nil {
		c := *b.CustomSessionToken
		if len(c) != 64 || !isLowerHex(c) {
			return nil, errInvalid("customSessionToken")
		}
		t, err := s.store.Token(r.r.Context(), c)
		if errors.Is(err, ErrNotFound) || (err == nil && (t.Kind != KindSession || t.UID != r.account.UID)) {
			return nil, errInvalidToken.with("message", "Invalid session token")
		} else if err != nil {
			return nil, err
		}
		id = c
	}
	// A device signing itself out needs no notice; one signed out from
	// elsewhere (the devices page) hears device_disconnected and signs out.
	if err := s.dropSession(r.r.Context(), r.account.UID, id, id != r.token.ID); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// dropSession deletes a session token and revokes the access tokens
// issued through it, in one transaction; the device registered on it goes
// in the same one (removeDevice: the other devices hear
// device_disconnected, and the removed one as well if tellItself).
func (s *Service) dropSession(ctx context.Context, uid, sessionID string, tellItself bool) error {
	devs, err := s.deviceList(ctx, uid)
	if err != nil {
		return err
	}
	dropped := false
	for _, d := range devs {
		// One device per session; should a second claim it, it goes in a
		// transaction of its own, the session being gone already.
		if d.SessionTokenID == sessionID {
			if err := s.removeDevice(ctx, uid, d, tellItself); err != nil {
				return err
			}
			dropped = true
		}
	}
	if dropped {
		return nil
	}
	return s.endGrant(ctx, uid, sessionID)
}

// SignOut ends one session of the account with the given email (by id, as
// Sessions lists them) or, with sessionID "", every session, refresh token
// and access token of the account (`weave account sign-out`). Signing out
// everywhere raises the account's generation, so the token server refuses
// the old access tokens as it does after a password change; the password
// and keys stay.
func (s *Service) SignOut(ctx context.Context, email, sessionID string) error {
	a, err := s.store.AccountByEmail(ctx, NormalizeEmail(email))
	if errors.Is(err, ErrNotFound) {
		return errUnknownAccount.with("email", email)
	} else if err != nil {
		return err
	}
	if sessionID != "" {
		t, err := s.store.Token(ctx, sessionID)
		if errors.Is(err, ErrNotFound) || (err == nil && (t.Kind != KindSession || t.UID != a.UID)) {
			return errInvalidToken.with("message", "Invalid session token")
		} else if err != nil {
			return err
		}
		return s.dropSession(ctx, a.UID, sessionID, true)
	}
	a.VerifierSet = max(s.nowMS(), a.VerifierSet+1)
	return s.store.UpdateCredentials(ctx, a, nil)
}

// putCapped stores a token; for a session or refresh token it then evicts
// the account's least recently used ones of that kind beyond the cap
// (Limits.MaxSessions, MaxRefreshTokens), ending them as a sign-out does.
// Concurrent grants may overshoot for a moment; each one trims back.
func (s *Service) putCapped(ctx context.Context, t Token) error {
	if err := s.store.PutToken(ctx, t); err != nil {
		return err
	}
	limit := 0
	switch t.Kind {
	case KindSession:
		limit = s.limits.l.MaxSessions
	case KindRefresh:
		limit = s.limits.l.MaxRefreshTokens
	default:
		return nil
	}
	toks, err := s.store.Tokens(ctx, t.UID, t.Kind)
	if err != nil || len(toks) <= limit {
		return err
	}
	used := func(t Token) int64 { return max(t.LastUsed, t.CreatedAt) }
	sort.SliceStable(toks, func(i, j int) bool { return used(toks[i]) < used(toks[j]) })
	for _, old := range toks[:len(toks)-limit] {
		if old.ID == t.ID {
			continue
		}
		if t.Kind == KindSession {
			err = s.dropSession(ctx, t.UID, old.ID, true)
		} else {
			err = s.endGrant(ctx, t.UID, old.ID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
