package accounts_test

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/hawk"
)

// keyID is the X-KeyID of the session's account for the token server.
func keyID(t *testing.T, w *world, s *fxaclient.Session) string {
	t.Helper()
	_, kB, err := w.client.Keys(w.ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	skd, err := w.client.ScopedKeyData(w.ctx, s, testClient.ID, fxa.OldSyncScope)
	if err != nil {
		t.Fatal(err)
	}
	return fxaclient.DeriveSyncKeys(kB, skd[fxa.OldSyncScope].KeyRotationTimestamp).KeyID
}

// TestHawkIDIsNotABearer (issue 12, finding 1): the id of a session's Hawk
// header, which every Hawk request sends in clear, is no Bearer credential
// at the token endpoint or the profile; the session token itself is.
func TestHawkIDIsNotABearer(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	s, err := c.SignUp(ctx, "wire@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	grant := []byte(`{"grant_type":"fxa-credentials","client_id":"` + testClient.ID + `","scope":"` + fxa.OldSyncScope + `"}`)
	call := func(cred string) (error, error) {
		h := http.Header{"Authorization": {"Bearer fxs_" + cred}}
		return c.DoRaw(ctx, "POST", "/v1/oauth/token", nil, "application/json", grant, h, nil),
			c.DoRaw(ctx, "GET", "/v1/account/profile", nil, "", nil, h, nil)
	}
	tokErr, profErr := call(s.Cred().ID)
	wantErrno(t, tokErr, 401, 110)
	wantErrno(t, profErr, 401, 110)
	if tokErr, profErr := call(hex.EncodeToString(s.SessionToken)); tokErr != nil || profErr != nil {
		t.Fatalf("the session token itself: %v, %v", tokErr, profErr)
	}
}

// TestHawkIDCaseReplay (issue 12, finding 2): a signed token request
// replayed with its id in upper case is not a new request.
func TestHawkIDCaseReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		w := newWorldOn(t, backend)
		ctx, c := w.ctx, w.client
		s, err := c.SignUp(ctx, "replay@example.org", "pw")
		if err != nil {
			t.Fatal(err)
		}
		cred := s.Cred()
		body := []byte(`{"grant_type":"fxa-credentials","client_id":"` + testClient.ID + `","scope":"` + fxa.OldSyncScope + `","access_type":"offline"}`)
		authz, err := hawk.Sign(cred.Key, cred.ID, "POST", w.base+"/v1/oauth/token", "application/json", body, time.Now(), "once")
		if err != nil {
			t.Fatal(err)
		}
		send := func(authz string) error {
			return c.DoRaw(ctx, "POST", "/v1/oauth/token", nil, "application/json", body, http.Header{"Authorization": {authz}}, nil)
		}
		if err := send(authz); err != nil {
			t.Fatal(err)
		}
		upper := strings.Replace(authz, `id="`+cred.ID+`"`, `id="`+strings.ToUpper(cred.ID)+`"`, 1)
		if upper == authz {
			t.Fatal("id not found in the header")
		}
		if e := wantErrno(t, send(upper), 401, 110); e == nil {
			return
		}
		wantErrno(t, send(authz), 401, 115)
		if toks, _ := w.store.Tokens(ctx, s.UID, accounts.KindRefresh); len(toks) != 1 {
			t.Errorf("%d refresh tokens, want 1", len(toks))
		}
	})
}

// TestSessionLifetimes (issue 12, finding 1): a session ends after
// SessionIdleTTL without use and after SessionTTL whatever its use.
func TestSessionLifetimes(t *testing.T) {
	clk := &offsetClock{}
	w := newWorld(t, func(c *accounts.Config) {
		c.Now, c.SessionIdleTTL, c.SessionTTL = clk.now, time.Hour, 3*time.Hour
	})
	ctx, c := w.ctx, w.client
	c.Now = clk.now
	busy, err := c.SignUp(ctx, "life@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	idle, err := c.SignIn(ctx, "life@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	status := func(s *fxaclient.Session) error { return c.Do(ctx, "GET", "/v1/session/status", s.Cred(), nil, nil) }
	bearer := func(s *fxaclient.Session) error {
		return c.DoRaw(ctx, "GET", "/v1/session/status", nil, "", nil,
			http.Header{"Authorization": {"Bearer fxs_" + hex.EncodeToString(s.SessionToken)}}, nil)
	}
	for i := 0; i < 2; i++ { // used every 50 minutes: alive
		clk.advance(50 * time.Minute)
		if err := status(busy); err != nil {
			t.Fatalf("busy session after %d×50 min: %v", i+1, err)
		}
	}
	// idle was last used 100 minutes ago.
	wantErrno(t, status(idle), 401, 110)
	wantErrno(t, bearer(idle), 401, 110)
	clk.advance(50 * time.Minute)
	if err := bearer(busy); err != nil {
		t.Fatalf("busy session at 2.5 h: %v", err)
	}
	clk.advance(31 * time.Minute) // 3 h 1 min after sign-up
	wantErrno(t, status(busy), 401, 110)
	if ss, err := w.svc.Sessions(ctx, busy.UID); err != nil || len(ss) != 0 {
		t.Errorf("expired sessions listed: %v %v", ss, err)
	}
}

// TestSessionsListAndDestroy (issue 12, findings 1 and 8): a user sees
// their sessions and ends another one (customSessionToken, as FxA); the
// ended session and the access tokens issued through it are refused at
// once, by the token server too. An id that is not one of the account's
// sessions is errno 110.
func TestSessionsListAndDestroy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		w := newWorldOn(t, backend)
		ctx, c := w.ctx, w.client
		s1, err := c.SignUp(ctx, "list@example.org", "pw")
		if err != nil {
			t.Fatal(err)
		}
		s2, err := c.SignIn(ctx, "list@example.org", "pw")
		if err != nil {
			t.Fatal(err)
		}
		other, err := c.SignUp(ctx, "other@example.org", "pw")
		if err != nil {
			t.Fatal(err)
		}
		var list []map[string]any
		if err := c.Do(ctx, "GET", "/v1/account/sessions", s1.Cred(), nil, &list); err != nil || len(list) != 2 {
			t.Fatalf("sessions: %v %v", list, err)
		}
		ids := map[string]bool{}
		for _, e := range list {
			ids[e["id"].(string)] = e["isCurrentDevice"].(bool)
			if _, ok := e["lastAccessTime"].(float64); !ok {
				t.Errorf("no lastAccessTime: %v", e)
			}
		}
		if cur, ok := ids[s1.Cred().ID]; !ok || !cur || ids[s2.Cred().ID] {
			t.Fatalf("sessions: %v", list)
		}

		kid := keyID(t, w, s2)
		tr, err := c.TokenWithSession(ctx, s2, testClient.ID, fxa.OldSyncScope, false)
		if err != nil {
			t.Fatal(err)
		}
		if tok, code := w.syncToken(tr.AccessToken, kid); code != 200 {
			t.Fatalf("token server: %d %v", code, tok)
		}

		destroy := func(custom string) error {
			return c.Do(ctx, "POST", "/v1/session/destroy", s1.Cred(), map[string]string{"customSessionToken": custom}, nil)
		}
		wantErrno(t, destroy(other.Cred().ID), 401, 110)
		wantErrno(t, destroy(strings.Repeat("ab", 32)), 401, 110)
		wantErrno(t, destroy("xyz"), 400, 107)
		if err := c.Do(ctx, "GET", "/v1/session/status", other.Cred(), nil, nil); err != nil {
			t.Fatalf("another account's session ended: %v", err)
		}
		if err := destroy(s2.Cred().ID); err != nil {
			t.Fatal(err)
		}
		wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", s2.Cred(), nil, nil), 401, 110)
		if tok, code := w.syncToken(tr.AccessToken, kid); code != 401 {
			t.Errorf("access token of an ended session at the token server: %d %v", code, tok)
		}
		if err := c.Do(ctx, "GET", "/v1/session/status", s1.Cred(), nil, nil); err != nil {
			t.Fatalf("the caller's own session ended: %v", err)
		}
		if ss, err := w.svc.Sessions(ctx, s1.UID); err != nil || len(ss) != 1 || ss[0].ID != s1.Cred().ID {
			t.Errorf("sessions after destroy: %v %v", ss, err)
		}
	})
}

// TestSignOutEverywhere: the operator's sign-out --all ends every session
// and refresh token, and the token server refuses the account's access
// tokens at once; the password and keys stay.
func TestSignOutEverywhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		w := newWorldOn(t, backend)
		ctx, c := w.ctx, w.client
		s, err := c.SignUp(ctx, "out@example.org", "pw")
		if err != nil {
			t.Fatal(err)
		}
		kid := keyID(t, w, s)
		tr, err := c.TokenWithSession(ctx, s, testClient.ID, fxa.OldSyncScope, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, code := w.syncToken(tr.AccessToken, kid); code != 200 {
			t.Fatalf("token server: %d", code)
		}
		if err := w.svc.SignOut(ctx, "out@example.org", ""); err != nil {
			t.Fatal(err)
		}
		wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", s.Cred(), nil, nil), 401, 110)
		if _, code := w.syncToken(tr.AccessToken, kid); code != 401 {
			t.Errorf("old access token at the token server: %d", code)
		}
		if _, err := c.Refresh(ctx, testClient.ID, tr.RefreshToken, ""); err == nil {
			t.Error("refresh token survived sign-out")
		}
		s2, err := c.SignIn(ctx, "out@example.org", "pw")
		if err != nil {
			t.Fatal(err)
		}
		if keyID(t, w, s2) != kid {
			t.Error("keys changed by sign-out")
		}
	})
}
