package accounts_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/hawk"
)

type offsetClock struct{ d atomic.Int64 }

func (c *offsetClock) now() time.Time          { return time.Now().Add(time.Duration(c.d.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.d.Add(int64(d)) }

func accountCount(t *testing.T, w *world, email string) int {
	t.Helper()
	if _, err := w.store.AccountByEmail(w.ctx, accounts.NormalizeEmail(email)); err == nil {
		return 1
	}
	return 0
}

func TestLoginErrors(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	if _, err := c.SignUp(ctx, "Mixed@Example.org", "right"); err != nil {
		t.Fatal(err)
	}
	_, err := c.SignIn(ctx, "Mixed@Example.org", "wrong")
	e := wantErrno(t, err, 400, 103)
	if e.Body["email"] != "Mixed@Example.org" {
		t.Errorf("103 body: %v", e.Body)
	}
	_, err = c.SignIn(ctx, "nobody@example.org", "x")
	wantErrno(t, err, 400, 102)
	_, err = c.SignUp(ctx, "mixed@example.ORG", "other")
	wantErrno(t, err, 400, 101)
	// A different case salts the stretch differently: errno 120 carries the
	// stored spelling, and fxaclient retries with it.
	cr := onepw.Stretch("mixed@example.org", "right")
	err = c.Do(ctx, "POST", "/v1/account/login", nil, map[string]string{"email": "mixed@example.org", "authPW": hex.EncodeToString(cr.AuthPW)}, nil)
	if e := wantErrno(t, err, 400, 120); e.Body["email"] != "Mixed@Example.org" {
		t.Errorf("120 body: %v", e.Body)
	}
	if s, err := c.SignIn(ctx, "mixed@example.org", "right"); err != nil || s.Email != "Mixed@Example.org" {
		t.Fatalf("sign-in with other case: %v", err)
	}
	var st map[string]bool
	if err := c.Do(ctx, "POST", "/v1/account/status", nil, map[string]string{"email": "MIXED@example.org"}, &st); err != nil || !st["exists"] {
		t.Fatalf("status: %v %v", st, err)
	}
}

func TestMalformedBodies(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) { c.MaxBodyBytes = 1024 })
	ctx, c := w.ctx, w.client
	good := hex.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name, body  string
		code, errno int
	}{
		{"not json", `{"email":`, 400, 106},
		{"empty", ``, 400, 106},
		{"array", `[1,2]`, 400, 106},
		{"missing email", `{"authPW":"` + good + `"}`, 400, 108},
		{"missing authPW", `{"email":"a@b.c"}`, 400, 108},
		{"short authPW", `{"email":"a@b.c","authPW":"abcd"}`, 400, 107},
		{"non-hex authPW", `{"email":"a@b.c","authPW":"` + strings.Repeat("zz", 32) + `"}`, 400, 107},
		{"numeric email", `{"email":5,"authPW":"` + good + `"}`, 400, 107},
		{"bad email", `{"email":"no-at-sign","authPW":"` + good + `"}`, 400, 107},
		{"too large", `{"email":"a@b.c","authPW":"` + good + `","x":"` + strings.Repeat("a", 2000) + `"}`, 413, 113},
	} {
		err := c.DoRaw(ctx, "POST", "/v1/account/create", nil, "application/json", []byte(tc.body), nil, nil)
		var fe *fxaclient.Error
		if !errorsAs(err, &fe) || fe.Code != tc.code || fe.Errno != tc.errno {
			t.Errorf("%s: %v, want %d/%d", tc.name, err, tc.code, tc.errno)
		}
	}
	if n := accountCount(t, w, "a@b.c"); n != 0 {
		t.Error("malformed sign-up created an account")
	}
	wantErrno(t, c.Do(ctx, "GET", "/v1/nope", nil, nil, nil), 404, 116)
	wantErrno(t, c.Do(ctx, "GET", "/v1/account/create", nil, nil, nil), 405, 116)
	wantErrno(t, c.Do(ctx, "POST", "/v1/token", nil, map[string]string{"client_id": testClient.ID}, nil), 400, 108)
	wantErrno(t, c.Do(ctx, "POST", "/v1/token", nil, map[string]string{"client_id": testClient.ID, "grant_type": "password"}, nil), 400, 107)
	wantErrno(t, c.Do(ctx, "POST", "/v1/token", nil, map[string]any{"client_id": testClient.ID, "grant_type": []int{1}}, nil), 400, 107)
}

func errorsAs(err error, fe **fxaclient.Error) bool {
	e, ok := err.(*fxaclient.Error)
	*fe = e
	return ok
}

func TestHawkErrors(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	s, err := c.SignUp(ctx, "hawk@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	cred := s.Cred()
	u := w.base + "/v1/session/status"
	send := func(authz string) error {
		return c.DoRaw(ctx, "GET", "/v1/session/status", nil, "", nil, http.Header{"Authorization": {authz}}, nil)
	}
	sign := func(key, id string, ts time.Time, nonce string) string {
		a, err := hawk.Sign(key, id, "GET", u, "", nil, ts, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	now := time.Now()
	a := sign(cred.Key, cred.ID, now, "n1")
	if err := send(a); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, send(a), 401, 115) // replay
	e := wantErrno(t, send(sign(cred.Key, cred.ID, now.Add(-5*time.Minute), "n2")), 401, 111)
	if _, ok := e.Body["serverTime"]; !ok {
		t.Errorf("111 without serverTime: %v", e.Body)
	}
	wantErrno(t, send(sign("wrong key", cred.ID, now, "n3")), 401, 109)
	wantErrno(t, send(sign(cred.Key, strings.Repeat("ab", 32), now, "n4")), 401, 110)
	wantErrno(t, send(sign(cred.Key, "short", now, "n5")), 401, 110)
	wantErrno(t, send(""), 401, 110)
	wantErrno(t, send("Hawk garbage"), 401, 109)
	// A keyFetchToken is not a session token.
	kf := fxaclient.Cred(s.KeyFetchToken, "keyFetchToken")
	wantErrno(t, send(sign(kf.Key, kf.ID, now, "n6")), 401, 110)
	// A signed body that was altered in transit.
	body := []byte(`{"name":"laptop","type":"desktop"}`)
	du := w.base + "/v1/account/device"
	authz, _ := hawk.Sign(cred.Key, cred.ID, "POST", du, "application/json", body, now, "n7")
	err = c.DoRaw(ctx, "POST", "/v1/account/device", nil, "application/json", []byte(`{"name":"evil!!","type":"desktop"}`), http.Header{"Authorization": {authz}}, nil)
	wantErrno(t, err, 401, 109)
}

func TestOAuthCodeFlow(t *testing.T) {
	clk := &offsetClock{}
	w := newWorld(t, func(c *accounts.Config) { c.Now = clk.now })
	ctx, c := w.ctx, w.client
	c.Now = clk.now
	if _, err := c.SignIn(ctx, "x", "y"); err == nil {
		t.Fatal("sign-in of unknown account worked")
	}
	s, err := c.SignUp(ctx, "oauth@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	pk := fxaclient.NewPKCE()
	req := fxaclient.AuthorizeRequest{ClientID: testClient.ID, Scope: "profile " + fxa.OldSyncScope, State: "st4te",
		ResponseType: "code", AccessType: "offline", CodeChallenge: pk.Challenge, CodeChallengeMethod: "S256", KeysJWE: "opaque..jwe.blob.x"}

	// Unknown client, missing PKCE, bad scope, bad redirect.
	bad := req
	bad.ClientID = "ffffffffffffffff"
	_, err = c.Authorize(ctx, s, bad)
	wantErrno(t, err, 400, 162)
	bad = req
	bad.CodeChallenge = ""
	_, err = c.Authorize(ctx, s, bad)
	wantErrno(t, err, 400, 169)
	bad = req
	bad.Scope = "https://identity.mozilla.com/apps/notes"
	_, err = c.Authorize(ctx, s, bad)
	wantErrno(t, err, 400, 163)
	bad = req
	bad.RedirectURI = "https://evil.example/"
	_, err = c.Authorize(ctx, s, bad)
	wantErrno(t, err, 400, 167)
	// keys_jwe must look like a compact JWE (FxA's validator), state ≤ 512.
	for _, jwe := range []string{"opaque.jwe.blob", "a..b.c.d!", strings.Repeat("a", 1100) + "..b.c.d"} {
		bad = req
		bad.KeysJWE = jwe
		_, err = c.Authorize(ctx, s, bad)
		wantErrno(t, err, 400, 107)
	}
	bad = req
	bad.State = strings.Repeat("s", 513)
	_, err = c.Authorize(ctx, s, bad)
	wantErrno(t, err, 400, 107)

	// Tampered verifier: refused, and the code is burnt.
	code, err := c.Authorize(ctx, s, req)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(pk.Verifier)
	tampered[0] ^= 1
	_, err = c.TokenFromCode(ctx, testClient.ID, code, string(tampered))
	wantErrno(t, err, 400, 175)
	_, err = c.TokenFromCode(ctx, testClient.ID, code, pk.Verifier)
	wantErrno(t, err, 400, 172)

	// Wrong client for the code; unknown client at the token endpoint.
	code, _ = c.Authorize(ctx, s, req)
	_, err = c.TokenFromCode(ctx, "ffffffffffffffff", code, pk.Verifier)
	wantErrno(t, err, 400, 162)
	_, err = c.TokenFromCode(ctx, accounts.DefaultClients[0].ID, code, pk.Verifier)
	wantErrno(t, err, 400, 173)

	// Expired code.
	code, _ = c.Authorize(ctx, s, req)
	clk.advance(11 * time.Minute)
	_, err = c.TokenFromCode(ctx, testClient.ID, code, pk.Verifier)
	wantErrno(t, err, 400, 174)
	clk.advance(-11 * time.Minute)

	// The good path: keys_jwe passes through untouched.
	code, _ = c.Authorize(ctx, s, req)
	tr, err := c.TokenFromCode(ctx, testClient.ID, code, pk.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tr.KeysJWE != "opaque..jwe.blob.x" || tr.RefreshToken == "" || tr.AccessToken == "" {
		t.Fatalf("token response: %+v", tr)
	}
	_, err = c.TokenFromCode(ctx, testClient.ID, code, pk.Verifier)
	wantErrno(t, err, 400, 172) // single use

	// The OAuth-server alias with Firefox's client returns its WebChannel
	// redirect carrying code and state.
	ff := req
	ff.ClientID = accounts.DefaultClients[0].ID
	var ar map[string]string
	if err := c.Do(ctx, "POST", "/v1/authorization", s.Cred(), ff, &ar); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ar["redirect"], "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel?code="+ar["code"]) || !strings.Contains(ar["redirect"], "state=st4te") {
		t.Fatalf("authorization: %v", ar)
	}
	// Expired codes are purged.
	clk.advance(time.Hour)
	if n, err := w.svc.Purge(ctx); err != nil || n < 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	clk.advance(-time.Hour)

	// Form-encoded token requests work too (RFC 6749).
	form := "grant_type=refresh_token&client_id=" + testClient.ID + "&refresh_token=" + tr.RefreshToken
	var out map[string]any
	if err := c.DoRaw(ctx, "POST", "/v1/token", nil, "application/x-www-form-urlencoded", []byte(form), nil, &out); err != nil || out["access_token"] == nil {
		t.Fatalf("form refresh: %v %v", out, err)
	}
	// The session scope yields a fresh, working session token.
	tr2, err := c.TokenWithSession(ctx, s, testClient.ID, accounts.ScopeSession, false)
	if err != nil || tr2.SessionToken == "" {
		t.Fatalf("session scope: %+v %v", tr2, err)
	}
	raw, _ := hex.DecodeString(tr2.SessionToken)
	s2 := &fxaclient.Session{SessionToken: raw}
	if err := c.Do(ctx, "GET", "/v1/session/status", s2.Cred(), nil, nil); err != nil {
		t.Fatal(err)
	}
	// Access token lifetime: an expired token is refused by /v1/verify.
	clk.advance(7 * time.Hour)
	wantErrno(t, c.Do(ctx, "POST", "/v1/verify", nil, map[string]string{"token": tr.AccessToken}, nil), 401, 110)
}

func TestRateLimitsAndLockout(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) {
		c.Limits = accounts.Limits{PerIP: 8, SignupsPerIP: 2, EmailFailures: 3, Window: time.Minute}
	})
	ctx, c := w.ctx, w.client
	if _, err := c.SignUp(ctx, "one@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignUp(ctx, "two@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	_, err := c.SignUp(ctx, "three@example.org", "pw")
	if e := wantErrno(t, err, 429, 114); e.Body["retryAfter"] == nil {
		t.Errorf("429 without retryAfter: %v", e.Body)
	}
	if accountCount(t, w, "three@example.org") != 0 {
		t.Fatal("throttled sign-up created an account")
	}
	for i := 0; i < 3; i++ {
		_, err := c.SignIn(ctx, "one@example.org", "bad")
		wantErrno(t, err, 400, 103)
	}
	_, err = c.SignIn(ctx, "one@example.org", "pw") // locked even with the right password
	wantErrno(t, err, 429, 114)
	if _, err := c.SignIn(ctx, "two@example.org", "pw"); err != nil {
		t.Fatalf("other account locked too: %v", err)
	}
	_, err = c.SignIn(ctx, "two@example.org", "pw") // 9th attempt from this IP
	wantErrno(t, err, 429, 114)
}

func TestSignupClosedAndOperatorCreate(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) { c.SignupClosed = true })
	_, err := w.client.SignUp(w.ctx, "closed@example.org", "pw")
	wantErrno(t, err, 400, 125)
	uid, err := w.svc.CreateAccount(w.ctx, "op@example.org", "pw")
	if err != nil || len(uid) != 32 {
		t.Fatal(uid, err)
	}
	s, err := w.client.SignIn(w.ctx, "op@example.org", "pw")
	if err != nil || s.UID != uid {
		t.Fatal(err)
	}
	if _, err := w.svc.CreateAccount(w.ctx, "OP@example.org", "x"); err == nil {
		t.Fatal("duplicate operator create")
	}
	if err := w.svc.ResetPasswordTo(w.ctx, "OP@EXAMPLE.org", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.SignIn(w.ctx, "op@example.org", "new"); err != nil {
		t.Fatal(err)
	}
	if l, err := w.svc.ListAccounts(w.ctx, "", 10); err != nil || len(l) != 1 || l[0].Email != "op@example.org" {
		t.Fatalf("list: %v %v", l, err)
	}
	// A restart finds the stored signing key: the same JWKS, so issued
	// tokens stay valid.
	again, err := accounts.New(accounts.Config{Store: w.store, PublicURL: w.base})
	if err != nil || string(again.JWKS()) != string(w.svc.JWKS()) {
		t.Fatalf("signing key not persisted: %v", err)
	}
	if _, err := fxa.ParseJWKS(again.JWKS()); err != nil {
		t.Fatal(err)
	}
}

func TestDevicesAndDestroy(t *testing.T) {
	var deleted atomic.Value
	w := newWorld(t, func(c *accounts.Config) {
		c.DeleteSyncData = func(_ context.Context, uid string) error { deleted.Store(uid); return nil }
	})
	ctx, c := w.ctx, w.client
	s, err := c.SignUp(ctx, "dev@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := c.Do(ctx, "POST", "/v1/account/device", s.Cred(), map[string]any{"name": "Laptop", "type": "desktop",
		"availableCommands": map[string]string{"https://identity.mozilla.com/cmd/open-uri": "x"}}, &d); err != nil {
		t.Fatal(err)
	}
	id, _ := d["id"].(string)
	if err := c.Do(ctx, "POST", "/v1/account/device", s.Cred(), map[string]any{"id": id, "name": "Renamed"}, &d); err != nil || d["name"] != "Renamed" {
		t.Fatalf("update: %v %v", d, err)
	}
	wantErrno(t, c.Do(ctx, "POST", "/v1/account/device", s.Cred(), map[string]any{"type": "toaster"}, nil), 400, 107)
	wantErrno(t, c.Do(ctx, "POST", "/v1/account/device", s.Cred(), map[string]any{"id": strings.Repeat("0", 32)}, nil), 400, 123)
	var list []map[string]any
	if err := c.Do(ctx, "GET", "/v1/account/devices", s.Cred(), nil, &list); err != nil || len(list) != 1 || list[0]["isCurrentDevice"] != true {
		t.Fatalf("devices: %v %v", list, err)
	}
	if _, err := c.TokenWithSession(ctx, s, testClient.ID, fxa.OldSyncScope, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "GET", "/v1/account/attached_clients", s.Cred(), nil, &list); err != nil || len(list) != 2 {
		t.Fatalf("attached clients: %v %v", list, err)
	}
	wantErrno(t, c.DestroyAccount(ctx, "dev@example.org", "wrong"), 400, 103)
	if err := c.DestroyAccount(ctx, "dev@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	if deleted.Load() != s.UID {
		t.Error("DeleteSyncData not called with the uid")
	}
	_, err = c.SignIn(ctx, "dev@example.org", "pw")
	wantErrno(t, err, 400, 102)
	wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", s.Cred(), nil, nil), 401, 110)
	toks, _ := w.store.Tokens(ctx, s.UID, accounts.KindDevice)
	if len(toks) != 0 {
		t.Error("devices survived account deletion")
	}
}
