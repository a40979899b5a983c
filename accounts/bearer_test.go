package accounts_test

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa"
)

// tokenID is the Hawk id of a raw token: what FxA's Bearer form carries.
func tokenID(raw []byte, name string) string {
	return hex.EncodeToString(onepw.DeriveToken(raw, name).ID)
}

// TestBearerTokens: the routes that take a session or keyFetch token by
// Hawk also take FxA's typed "Authorization: Bearer fxs_…" / "fxk_…" /
// "fxpc_…" (auth-server bearer-fxa-token.js) with FxA's strictness and
// errno 110 for everything that is not a live token of the route's kind;
// but with the token itself, never its Hawk id, which every Hawk request
// sends in clear (issue 12, finding 1).
func TestBearerTokens(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	s, err := c.SignUp(ctx, "bearer@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	sid, kid := tokenID(s.SessionToken, "sessionToken"), tokenID(s.KeyFetchToken, "keyFetchToken")
	sraw, kraw := hex.EncodeToString(s.SessionToken), hex.EncodeToString(s.KeyFetchToken)
	do := func(method, path, authz string, body []byte, out any) error {
		ct := ""
		if body != nil {
			ct = "application/json"
		}
		return c.DoRaw(ctx, method, path, nil, ct, body, http.Header{"Authorization": {authz}}, out)
	}
	var st map[string]any
	if err := do("GET", "/v1/session/status", "Bearer fxs_"+sraw, nil, &st); err != nil || st["uid"] != s.UID {
		t.Fatalf("session/status with Bearer fxs_: %v %v", st, err)
	}
	var d map[string]any
	if err := do("POST", "/v1/account/device", "Bearer fxs_"+sraw, []byte(`{"name":"bearer","type":"desktop"}`), &d); err != nil || d["name"] != "bearer" {
		t.Fatalf("device with Bearer fxs_: %v %v", d, err)
	}
	// fxa-credentials at the token endpoint (what Firefox does for Sync).
	var tr fxaclient.TokenResponse
	if err := do("POST", "/v1/oauth/token", "Bearer fxs_"+sraw, []byte(`{"grant_type":"fxa-credentials","client_id":"`+testClient.ID+`","scope":"`+fxa.OldSyncScope+`"}`), &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("fxa-credentials with Bearer fxs_: %v", err)
	}

	for name, authz := range map[string]string{
		"the Hawk id (on the wire in every Hawk header)": "Bearer fxs_" + sid,
		"keyFetch prefix on a session route":             "Bearer fxk_" + sraw,
		"keyFetch token as session":                      "Bearer fxs_" + kraw,
		"upper-case hex":                                 "Bearer fxs_" + strings.ToUpper(sraw),
		"no prefix (a refresh token's form)":             "Bearer " + sraw,
		"double space":                                   "Bearer  fxs_" + sraw,
		"short token":                                    "Bearer fxs_" + sraw[:62],
		"unknown token":                                  "Bearer fxs_" + strings.Repeat("ab", 32),
		"lower-case scheme":                              "bearer fxs_" + sraw,
	} {
		err := do("GET", "/v1/session/status", authz, nil, nil)
		if name == "lower-case scheme" {
			wantErrno(t, err, 401, 109) // not Bearer, so parsed as Hawk: a bad signature
			continue
		}
		if e, ok := err.(*fxaclient.Error); !ok || e.Code != 401 || e.Errno != 110 {
			t.Errorf("%s: %v, want 401 errno 110", name, err)
		}
	}

	// keyFetch by Bearer fxk_: the bundle unwraps to the same kB, once.
	var kr struct {
		Bundle string `json:"bundle"`
	}
	wantErrno(t, do("GET", "/v1/account/keys", "Bearer fxs_"+sraw, nil, nil), 401, 110)
	wantErrno(t, do("GET", "/v1/account/keys", "Bearer fxk_"+kid, nil, nil), 401, 110)
	if err := do("GET", "/v1/account/keys", "Bearer fxk_"+kraw, nil, &kr); err != nil {
		t.Fatal(err)
	}
	bundle, _ := hex.DecodeString(kr.Bundle)
	pt, err := onepw.OpenBundle(onepw.DeriveToken(s.KeyFetchToken, "keyFetchToken").Extra, "account/keys", bundle)
	if err != nil || len(pt) != 64 {
		t.Fatalf("bundle: %v", err)
	}
	wantErrno(t, do("GET", "/v1/account/keys", "Bearer fxk_"+kraw, nil, nil), 401, 110)
	s2, _ := c.SignIn(ctx, "bearer@example.org", "pw")
	_, kB, err := c.Keys(ctx, s2)
	if err != nil || hex.EncodeToString(onepw.XOR(pt[32:], s.UnwrapBKey)) != hex.EncodeToString(kB) {
		t.Fatalf("Bearer and Hawk key fetches disagree: %v", err)
	}

	// passwordChangeToken: Bearer fxpc_ on password/change/finish.
	var start struct {
		KeyFetchToken       string `json:"keyFetchToken"`
		PasswordChangeToken string `json:"passwordChangeToken"`
	}
	if err := c.Do(ctx, "POST", "/v1/password/change/start", nil, map[string]string{"email": "bearer@example.org",
		"oldAuthPW": hex.EncodeToString(onepw.Stretch("bearer@example.org", "pw").AuthPW)}, &start); err != nil {
		t.Fatal(err)
	}
	pct, _ := hex.DecodeString(start.PasswordChangeToken)
	newCr := onepw.Stretch("bearer@example.org", "pw2")
	finish := []byte(`{"authPW":"` + hex.EncodeToString(newCr.AuthPW) + `","wrapKb":"` + hex.EncodeToString(onepw.XOR(kB, newCr.UnwrapBKey)) + `"}`)
	wantErrno(t, do("POST", "/v1/password/change/finish", "Bearer fxs_"+start.PasswordChangeToken, finish, nil), 401, 110)
	wantErrno(t, do("POST", "/v1/password/change/finish", "Bearer fxpc_"+tokenID(pct, "passwordChangeToken"), finish, nil), 401, 110)
	if err := do("POST", "/v1/password/change/finish", "Bearer fxpc_"+start.PasswordChangeToken, finish, nil); err != nil {
		t.Fatal(err)
	}
	s3, err := c.SignIn(ctx, "bearer@example.org", "pw2")
	if err != nil {
		t.Fatal(err)
	}
	if _, kB2, err := c.Keys(ctx, s3); err != nil || hex.EncodeToString(kB2) != hex.EncodeToString(kB) {
		t.Fatalf("kB after a Bearer password change: %v", err)
	}

	// After session/destroy the id is dead for Bearer too (the password
	// change already ended the old session, so use the new one).
	sraw = hex.EncodeToString(s3.SessionToken)
	if err := do("POST", "/v1/session/destroy", "Bearer fxs_"+sraw, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, do("GET", "/v1/session/status", "Bearer fxs_"+sraw, nil, nil), 401, 110)
}
