package accounts_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/weave-sync/weave/accounts/onepw"
)

// TestEmailControlCharacters (issue 12, finding 11): sign-up and the
// operator's create refuse an email with control, format or bidi-control
// characters (FxA's 400 errno 107), which would otherwise reach an
// operator's terminal raw.
func TestEmailControlCharacters(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	for _, email := range []string{
		"esc\x1b[31m@example.org", "bell\a@example.org", "rtl\u202egro.elpmaxe@example.org",
		"zw\u200bj@example.org", "del\x7f@example.org", "nbsp\u00a0x@example.org", "c1\u0085@example.org",
		"tab\t@example.org", "bom\ufeff@example.org", "isolate\u2066x@example.org",
	} {
		body := map[string]string{"email": email, "authPW": hex.EncodeToString(onepw.Stretch(email, "pw").AuthPW)}
		wantErrno(t, c.Do(ctx, "POST", "/v1/account/create", nil, body, nil), 400, 107)
		if _, err := w.svc.CreateAccount(ctx, email, "pw"); err == nil {
			t.Errorf("operator create accepted %q", email)
		}
		if accountCount(t, w, email) != 0 {
			t.Errorf("account %q created", email)
		}
	}
	// Non-ASCII letters stay allowed.
	if _, err := c.SignUp(ctx, "zoë@exämple.org", "pw"); err != nil {
		t.Errorf("IDN email refused: %v", err)
	}
}

// TestJSONContentTypeRequired (issue 12, finding 12): a cross-site "simple"
// POST (text/plain or a form, which a browser sends without a CORS
// preflight) creates no account and spends no password check; FxA's
// answers are 400 errno 107 for text/* and 415 for other types. The OAuth
// token endpoint still takes forms (RFC 6749).
func TestJSONContentTypeRequired(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	email := "csrf@example.org"
	body := []byte(`{"email":"` + email + `","authPW":"` + hex.EncodeToString(onepw.Stretch(email, "pw").AuthPW) + `"}`)
	for ct, want := range map[string][2]int{
		"text/plain":                        {400, 107},
		"text/plain; charset=utf-8":         {400, 107},
		"application/x-www-form-urlencoded": {415, 999},
		"multipart/form-data; boundary=x":   {415, 999},
		"application/jsonp":                 {415, 999},
		"nonsense/;;":                       {415, 999},
	} {
		for _, path := range []string{"/v1/account/create", "/v1/account/login"} {
			wantErrno(t, c.DoRaw(ctx, "POST", path, nil, ct, body, nil, nil), want[0], want[1])
		}
	}
	if accountCount(t, w, email) != 0 {
		t.Fatal("account created by a non-JSON POST")
	}
	if err := c.DoRaw(ctx, "POST", "/v1/account/create", nil, "application/json; charset=utf-8", body, nil, nil); err != nil {
		t.Fatalf("JSON with a charset: %v", err)
	}
	// The token endpoint keeps taking forms: an unknown refresh token is
	// its own error, not a media type error.
	form := []byte("grant_type=refresh_token&client_id=" + testClient.ID + "&refresh_token=" + strings.Repeat("ab", 32))
	wantErrno(t, c.DoRaw(ctx, "POST", "/v1/oauth/token", nil, "application/x-www-form-urlencoded", form, nil, nil), 400, 182)
	wantErrno(t, c.DoRaw(ctx, "POST", "/v1/oauth/token", nil, "text/plain", form, nil, nil), 400, 107)
}
