package fxa_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/fxa/fxatest"
	"github.com/weave-sync/weave/fxa/issuer"
	"github.com/weave-sync/weave/internal/testkit"
)

// Key generation is slow, so tests share two issuers.
var issuers = sync.OnceValue(func() [2]*issuer.Issuer {
	return [2]*issuer.Issuer{issuer.New(), issuer.New()}
})

const uid = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

func staticVerifier(t *testing.T, iss *issuer.Issuer, o fxa.Options) *fxa.Verifier {
	t.Helper()
	ks, err := fxa.ParseJWKS(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	o.Keys = ks
	v, err := fxa.NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidToken(t *testing.T) {
	iss := issuers()[0]
	v := staticVerifier(t, iss, fxa.Options{})
	tok := iss.Mint(issuer.Token{Sub: uid, Generation: 1700000000000, ProfileChangedAt: 42,
		Scope: "profile https://identity.mozilla.com/apps/oldsync"})
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := fxa.Claims{FxAUID: uid, Generation: 1700000000000, ClientID: issuer.DefaultClientID,
		Scopes: []string{"profile", fxa.OldSyncScope}, ProfileChangedAt: 42}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("claims = %+v, want %+v", c, want)
	}
}

func TestClaimVariants(t *testing.T) {
	iss := issuers()[0]
	v := staticVerifier(t, iss, fxa.Options{})
	ctx := context.Background()
	ok := []struct {
		name  string
		extra map[string]any
		check func(fxa.Claims) bool
	}{
		{"no generation", nil, func(c fxa.Claims) bool { return c.Generation == 0 }},
		{"float generation", map[string]any{"fxa-generation": 1.7e12}, func(c fxa.Claims) bool { return c.Generation == 1.7e12 }},
		{"null generation", map[string]any{"fxa-generation": json.RawMessage("null")}, func(c fxa.Claims) bool { return c.Generation == 0 }},
		{"comma scopes", map[string]any{"scope": "profile," + fxa.OldSyncScope}, func(c fxa.Claims) bool { return len(c.Scopes) == 2 }},
		{"list scope", map[string]any{"scope": []string{"profile", fxa.OldSyncScope}}, func(c fxa.Claims) bool { return len(c.Scopes) == 2 }},
		{"parent scope", map[string]any{"scope": "https://identity.mozilla.com/apps/"}, func(c fxa.Claims) bool { return true }},
		{"no client_id", map[string]any{"client_id": nil}, func(c fxa.Claims) bool { return c.ClientID == "" }},
		{"bad profileChangedAt ignored", map[string]any{"fxa-profileChangedAt": "x"}, func(c fxa.Claims) bool { return c.ProfileChangedAt == 0 }},
		{"unknown claims", map[string]any{"fxa-foo": map[string]any{"a": 1}}, func(c fxa.Claims) bool { return true }},
	}
	for _, c := range ok {
		got, err := v.Verify(ctx, iss.Mint(issuer.Token{Sub: uid, Extra: c.extra}))
		if err != nil || !c.check(got) {
			t.Errorf("%s: %+v, %v", c.name, got, err)
		}
	}
	bad := []struct {
		name  string
		extra map[string]any
	}{
		{"no scope", map[string]any{"scope": nil}},
		{"other scope", map[string]any{"scope": "profile https://identity.mozilla.com/apps/notes"}},
		{"child scope only", map[string]any{"scope": fxa.OldSyncScope + "/bookmarks"}},
		{"fragment scope", map[string]any{"scope": fxa.OldSyncScope + "#read"}},
		{"scope object", map[string]any{"scope": map[string]any{}}},
		{"no sub", map[string]any{"sub": nil}},
		{"bad sub", map[string]any{"sub": "a@b"}},
		{"numeric sub", map[string]any{"sub": 12}},
		{"no exp", map[string]any{"exp": nil}},
		{"string exp", map[string]any{"exp": "9999999999"}},
		{"string generation", map[string]any{"fxa-generation": "1700000000000"}},
		{"fractional generation", map[string]any{"fxa-generation": 1.5}},
		{"negative generation", map[string]any{"fxa-generation": -1}},
		{"numeric client_id", map[string]any{"client_id": 5}},
		{"future nbf", map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}},
	}
	for _, c := range bad {
		if got, err := v.Verify(ctx, iss.Mint(issuer.Token{Sub: uid, Extra: c.extra})); !errors.Is(err, fxa.ErrInvalidToken) {
			t.Errorf("%s: %+v, %v", c.name, got, err)
		}
	}
}

func TestExpiry(t *testing.T) {
	iss := issuers()[0]
	clk := testkit.NewClock(time.Unix(1700000000, 0))
	v := staticVerifier(t, iss, fxa.Options{Now: clk.Now})
	ctx := context.Background()
	tok := iss.Mint(issuer.Token{Sub: uid, IssuedAt: clk.Now().Add(-time.Hour), Exp: clk.Now().Add(time.Second)})
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Errorf("1s before exp: %v", err)
	}
	clk.Add(time.Second)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("at exp: %v", err)
	}
	clk.Add(time.Hour)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("long expired: %v", err)
	}
	lenient := staticVerifier(t, iss, fxa.Options{Now: clk.Now, Leeway: 2 * time.Hour})
	if _, err := lenient.Verify(ctx, tok); err != nil {
		t.Errorf("within leeway: %v", err)
	}
}

func TestHeaderRules(t *testing.T) {
	iss := issuers()[0]
	v := staticVerifier(t, iss, fxa.Options{})
	ctx := context.Background()
	claims := issuer.Token{Sub: uid}.Claims()
	for _, c := range []struct {
		header map[string]any
		ok     bool
	}{
		{map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": iss.KID()}, true},
		{map[string]any{"alg": "RS256", "typ": "AT+JWT"}, true}, // no kid: every key is tried
		{map[string]any{"alg": "RS256", "typ": "application/at+JWT", "kid": iss.KID()}, true},
		{map[string]any{"alg": "RS256", "kid": iss.KID()}, false},
		{map[string]any{"alg": "RS256", "typ": "JWT", "kid": iss.KID()}, false},
		{map[string]any{"alg": "RS256", "typ": "application/jwt", "kid": iss.KID()}, false},
		{map[string]any{"alg": "RS256", "typ": "text/at+jwt", "kid": iss.KID()}, false},
		{map[string]any{"alg": "RS256", "typ": 1, "kid": iss.KID()}, false},
		{map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": 7}, false},
		{map[string]any{"alg": "RS512", "typ": "at+jwt", "kid": iss.KID()}, false},
		{map[string]any{"alg": "rs256", "typ": "at+jwt", "kid": iss.KID()}, false},
		{map[string]any{"typ": "at+jwt", "kid": iss.KID()}, false},
		{map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": iss.KID(), "crit": []string{"exp"}}, false},
	} {
		_, err := v.Verify(ctx, iss.Sign(c.header, claims))
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, fxa.ErrInvalidToken)) {
			t.Errorf("header %v: %v", c.header, err)
		}
	}
}

func TestWrongAlgorithms(t *testing.T) {
	iss := issuers()[0]
	srv := fxatest.Serve(iss)
	defer srv.Close()
	ks, _ := fxa.ParseJWKS(iss.JWKS())
	// With a server configured too, to prove JWT-shaped tokens never go to /v1/verify.
	v, err := fxa.NewVerifier(fxa.Options{Keys: ks, ServerURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	seg := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	claims := seg(issuer.Token{Sub: uid}.Claims())
	// HS256 keyed with the public key material: the classic confusion attack.
	for _, secret := range [][]byte{iss.PublicKey().N.Bytes(), iss.JWKS()} {
		in := seg(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": iss.KID()}) + "." + claims
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		tok := in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, fxa.ErrInvalidToken) {
			t.Errorf("HS256: %v", err)
		}
	}
	for _, alg := range []string{"none", "None"} {
		tok := seg(map[string]any{"alg": alg, "typ": "at+jwt"}) + "." + claims + "."
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, fxa.ErrInvalidToken) {
			t.Errorf("alg %s: %v", alg, err)
		}
	}
	// RS256 header with an empty signature.
	tok := seg(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": iss.KID()}) + "." + claims + "."
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("empty signature: %v", err)
	}
	if n := srv.VerifyCalls(); n != 0 {
		t.Errorf("JWT-shaped tokens sent to /v1/verify %d times", n)
	}
}

func TestTamperedSignature(t *testing.T) {
	iss := issuers()[0]
	v := staticVerifier(t, iss, fxa.Options{})
	tok := iss.Mint(issuer.Token{Sub: uid})
	parts := strings.Split(tok, ".")
	// Swap in claims that grant the same scope to another user.
	other := iss.Mint(issuer.Token{Sub: "ffffffffffffffffffffffffffffffff"})
	forged := parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2]
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 1
	flipped := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	for name, tok := range map[string]string{"swapped claims": forged, "flipped bit": flipped} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, fxa.ErrInvalidToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A token from an untrusted issuer with the same kid.
	foreign := issuers()[1].Sign(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": iss.KID()}, issuer.Token{Sub: uid}.Claims())
	if _, err := v.Verify(context.Background(), foreign); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("foreign issuer: %v", err)
	}
}

func TestJWKSFetchAndRotation(t *testing.T) {
	a, b := issuers()[0], issuers()[1]
	srv := fxatest.Serve(a)
	defer srv.Close()
	clk := testkit.NewClock(time.Now())
	v, err := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL + "/", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if srv.JWKSFetches() != 0 {
		t.Fatal("NewVerifier fetched keys")
	}
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, a.Mint(issuer.Token{Sub: uid})); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.JWKSFetches(); n != 1 {
		t.Errorf("fetches after 3 verifications = %d, want 1", n)
	}

	// FxA starts publishing b's key. A b token right after the last fetch
	// is rejected (refetch rate-limited), and costs no fetch.
	srv.SetJWKS(issuer.JWKS(a, b))
	if _, err := v.Verify(ctx, b.Mint(issuer.Token{Sub: uid})); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("unknown kid within rate limit: %v", err)
	}
	if n := srv.JWKSFetches(); n != 1 {
		t.Errorf("fetches = %d, want 1 (rate-limited)", n)
	}
	// After the interval an unknown kid triggers a refetch.
	clk.Add(fxa.DefaultRefreshInterval)
	if _, err := v.Verify(ctx, b.Mint(issuer.Token{Sub: uid})); err != nil {
		t.Errorf("new kid after rotation: %v", err)
	}
	if n := srv.JWKSFetches(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
	if _, err := v.Verify(ctx, a.Mint(issuer.Token{Sub: uid})); err != nil {
		t.Errorf("old key still published: %v", err)
	}

	// FxA retires a's key; once refreshed, a's tokens are rejected.
	srv.SetJWKS(b.JWKS())
	clk.Add(fxa.DefaultRefreshInterval)
	hostile := b.Sign(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "unknown"}, issuer.Token{Sub: uid}.Claims())
	if _, err := v.Verify(ctx, hostile); err != nil {
		// kid "unknown" matches no key, so it is rejected even though b signed it.
		if !errors.Is(err, fxa.ErrInvalidToken) {
			t.Errorf("unknown kid: %v", err)
		}
	} else {
		t.Error("token with unknown kid accepted")
	}
	if n := srv.JWKSFetches(); n != 3 {
		t.Errorf("fetches = %d, want 3", n)
	}
	if _, err := v.Verify(ctx, a.Mint(issuer.Token{Sub: uid})); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("retired key: %v", err)
	}
	// Hostile tokens with fresh kids cannot force more fetches.
	for i := 0; i < 5; i++ {
		tok := b.Sign(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": fmt.Sprint("k", i)}, issuer.Token{Sub: uid}.Claims())
		v.Verify(ctx, tok)
	}
	if n := srv.JWKSFetches(); n != 3 {
		t.Errorf("fetches after hostile kids = %d, want 3", n)
	}
}

func TestJWKSConcurrentFetch(t *testing.T) {
	a := issuers()[0]
	srv := fxatest.Serve(a)
	defer srv.Close()
	srv.SetDelay(50 * time.Millisecond)
	v, err := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tok := a.Mint(issuer.Token{Sub: uid})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.JWKSFetches(); n != 1 {
		t.Errorf("concurrent first use fetched %d times, want 1", n)
	}
}

func TestRemoteVerify(t *testing.T) {
	a := issuers()[0]
	srv := fxatest.Serve(a)
	defer srv.Close()
	srv.AddOpaque("opaque-token-1", fxatest.VerifyResponse{User: uid, ClientID: "abc", Scope: []string{"profile", fxa.OldSyncScope}, Generation: 17, ProfileChangedAt: 3})
	srv.AddOpaque("opaque-no-sync", fxatest.VerifyResponse{User: uid, ClientID: "abc", Scope: []string{"profile"}})
	srv.AddOpaque("opaque-bad-user", fxatest.VerifyResponse{User: "", Scope: []string{fxa.OldSyncScope}})
	v, err := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := v.Verify(ctx, "opaque-token-1")
	want := fxa.Claims{FxAUID: uid, Generation: 17, ClientID: "abc", Scopes: []string{"profile", fxa.OldSyncScope}, ProfileChangedAt: 3}
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Errorf("opaque: %+v, %v", c, err)
	}
	if _, err := v.Verify(ctx, "opaque-no-sync"); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("opaque without scope: %v", err)
	}
	if _, err := v.Verify(ctx, "unknown-opaque"); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("unknown opaque: %v", err)
	}
	if _, err := v.Verify(ctx, "opaque-bad-user"); !errors.Is(err, fxa.ErrUnavailable) {
		t.Errorf("garbage answer: %v", err)
	}
	// Tokens that look JWT-ish but are not decodable go remote too.
	if _, err := v.Verify(ctx, "a.b.c"); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("undecodable: %v", err)
	}
	if n := srv.VerifyCalls(); n != 5 {
		t.Errorf("verify calls = %d, want 5", n)
	}
	// No server: opaque tokens are simply invalid.
	ks, _ := fxa.ParseJWKS(a.JWKS())
	local, _ := fxa.NewVerifier(fxa.Options{Keys: ks})
	if _, err := local.Verify(ctx, "opaque-token-1"); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("opaque without server: %v", err)
	}
}

func TestRemoteResponses(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	v, _ := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL})
	for _, c := range []struct {
		status int
		body   string
		want   error
	}{
		{200, `{"user":"` + uid + `","client_id":"x","scope":"profile https://identity.mozilla.com/apps/oldsync","generation":5}`, nil},
		{200, `{"user":"` + uid + `","scope":["https://identity.mozilla.com/apps/oldsync"]}`, nil},
		{200, `{"user":"` + uid + `","scope":"profile"}`, fxa.ErrInvalidToken},
		{200, `not json`, fxa.ErrUnavailable},
		{200, `{"user":"` + uid + `","scope":["x"],"generation":"5"}`, fxa.ErrUnavailable},
		{400, `{"errno":108}`, fxa.ErrInvalidToken},
		{401, ``, fxa.ErrInvalidToken},
		{302, ``, fxa.ErrInvalidToken},
		{500, ``, fxa.ErrUnavailable},
		{503, ``, fxa.ErrUnavailable},
	} {
		status, body = c.status, c.body
		_, err := v.Verify(context.Background(), "opaque")
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%d %s: %v", c.status, c.body, err)
		}
	}
}

func TestServerDown(t *testing.T) {
	a := issuers()[0]
	srv := fxatest.Serve(a)
	url := srv.URL
	srv.Close()
	v, _ := fxa.NewVerifier(fxa.Options{ServerURL: url})
	ctx := context.Background()
	if _, err := v.Verify(ctx, "opaque"); !errors.Is(err, fxa.ErrUnavailable) || errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("opaque, server down: %v", err)
	}
	if _, err := v.Verify(ctx, a.Mint(issuer.Token{Sub: uid})); !errors.Is(err, fxa.ErrUnavailable) {
		t.Errorf("JWT, no keys, server down: %v", err)
	}
}

func TestKeysKeptWhenServerDown(t *testing.T) {
	a, b := issuers()[0], issuers()[1]
	srv := fxatest.Serve(a)
	clk := testkit.NewClock(time.Now())
	v, _ := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL, Now: clk.Now})
	ctx := context.Background()
	if _, err := v.Verify(ctx, a.Mint(issuer.Token{Sub: uid})); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	clk.Add(time.Hour)
	// Unknown kid and FxA unreachable: we cannot know, so 503.
	if _, err := v.Verify(ctx, b.Mint(issuer.Token{Sub: uid, IssuedAt: clk.Now()})); !errors.Is(err, fxa.ErrUnavailable) {
		t.Errorf("unknown kid, server down: %v", err)
	}
	// Cached keys still verify.
	if _, err := v.Verify(ctx, a.Mint(issuer.Token{Sub: uid, IssuedAt: clk.Now()})); err != nil {
		t.Errorf("cached key after failed refresh: %v", err)
	}
}

func TestSlowServer(t *testing.T) {
	a := issuers()[0]
	srv := fxatest.Serve(a)
	defer srv.Close()
	srv.AddOpaque("opaque", fxatest.VerifyResponse{User: uid, Scope: []string{fxa.OldSyncScope}})
	// The server would answer after 30 s; the three calls below must give
	// up after their 100 ms, so even a slow machine ends far sooner.
	srv.SetDelay(30 * time.Second)
	v, _ := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL, HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
	start := time.Now()
	if _, err := v.Verify(context.Background(), "opaque"); !errors.Is(err, fxa.ErrUnavailable) {
		t.Errorf("client timeout: %v", err)
	}
	if _, err := v.Verify(context.Background(), a.Mint(issuer.Token{Sub: uid})); !errors.Is(err, fxa.ErrUnavailable) {
		t.Errorf("JWKS timeout: %v", err)
	}
	// A context deadline works as well as the client timeout.
	v2, _ := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL, HTTPClient: &http.Client{}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := v2.Verify(ctx, "opaque")
	if !errors.Is(err, fxa.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ctx deadline: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("timeouts took %v", d)
	}
}

func TestNewVerifierOptions(t *testing.T) {
	if _, err := fxa.NewVerifier(fxa.Options{}); err == nil {
		t.Error("no keys and no server accepted")
	}
	for _, u := range []string{"ftp://x", "not a url", "http://"} {
		if _, err := fxa.NewVerifier(fxa.Options{ServerURL: u}); err == nil {
			t.Errorf("server URL %q accepted", u)
		}
	}
	v, _ := fxa.NewVerifier(fxa.Options{ServerURL: "http://127.0.0.1:1"})
	if _, err := v.Verify(context.Background(), ""); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("empty token: %v", err)
	}
	if _, err := v.Verify(context.Background(), strings.Repeat("a", 1<<20)); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("huge token: %v", err)
	}
}

func TestCustomScope(t *testing.T) {
	iss := issuers()[0]
	v := staticVerifier(t, iss, fxa.Options{Scope: "profile:email"})
	if _, err := v.Verify(context.Background(), iss.Mint(issuer.Token{Sub: uid, Scope: "profile"})); err != nil {
		t.Error(err)
	}
	if _, err := v.Verify(context.Background(), iss.Mint(issuer.Token{Sub: uid})); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Error(err)
	}
}

func TestScopeGrants(t *testing.T) {
	const want = fxa.OldSyncScope
	for _, c := range []struct {
		granted, wanted string
		ok              bool
	}{
		{want, want, true},
		{"https://identity.mozilla.com/apps/", want, true},
		{"https://identity.mozilla.com/apps", want, true},
		{"https://identity.mozilla.com/", want, true},
		{"https://identity.mozilla.com", want, true},
		{"https://identity.mozilla.com/apps/old", want, false},
		{"https://identity.mozilla.com/apps/oldsyncX", want, false},
		{want + "/bookmarks", want, false},
		{want, want + "/bookmarks", true},
		{want + "#read", want, false},
		{want, want + "#read", false},
		{want + "#read", want + "#read", true},
		{"https://identity.mozilla.com/apps/#read", want + "#read", true},
		{"http://identity.mozilla.com/apps/oldsync", want, false},
		{"https://identity.mozilla.com.evil.com/apps/oldsync", want, false},
		{"https://evil.com/apps/", want, false},
		{"https://user@identity.mozilla.com/apps/", want, false},
		{"https://identity.mozilla.com/apps/?x=1", want, false},
		{"HTTPS://identity.mozilla.com/apps/oldsync", want, false},
		{"oldsync", want, false},
		{"profile", want, false},
		{"", want, false},
		{want, "", false},
		{"profile", "profile", true},
		{"profile", "profile:email", true},
		{"profile:email", "profile", false},
		{"profile:write", "profile:email", true},
		{"profile:write", "profile:email:write", true},
		{"profile", "profile:write", false},
		{"profile:email", "profile:write", false},
		{"write", "profile", false},
		{"profiles", "profile", false},
		{"profile", want, false},
		{want, "profile", false},
	} {
		if got := fxa.ScopeGrants(c.granted, c.wanted); got != c.ok {
			t.Errorf("ScopeGrants(%q, %q) = %v", c.granted, c.wanted, got)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	iss := issuers()[0]
	j := iss.JWK()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(keys ...any) []byte { b, _ := json.Marshal(map[string]any{"keys": keys}); return b }
	with := func(k, v string) map[string]any {
		m := map[string]any{}
		for a, b := range j {
			m[a] = b
		}
		m[k] = v
		return m
	}
	ec := map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}
	ok := map[string][]byte{
		"fxa shape":      doc(with("fxa-createdAt", "1")),
		"ec skipped":     doc(ec, j),
		"enc skipped":    doc(with("use", "enc"), j),
		"padded n":       doc(with("n", j["n"].(string)+"=")),
		"no kid/use/alg": doc(map[string]any{"kty": "RSA", "n": j["n"], "e": j["e"]}),
	}
	for name, d := range ok {
		if ks, err := fxa.ParseJWKS(d); err != nil || ks.Len() != 1 {
			t.Errorf("%s: %v", name, err)
		}
	}
	smallJWK := map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(small.N.Bytes()), "e": "AQAB"}
	bad := map[string][]byte{
		"not json":  []byte("{"),
		"no keys":   doc(),
		"only ec":   doc(ec),
		"small key": doc(smallJWK),
		"bad n":     doc(with("n", "!!")),
		"even e":    doc(with("e", "AQAC")),
		"e=1":       doc(with("e", "AQ")),
		"huge e":    doc(with("e", "AQAAAAAB")),
	}
	for name, d := range bad {
		if _, err := fxa.ParseJWKS(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, issuer.JWKS(issuers()[0], issuers()[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := fxa.LoadJWKSFile(path)
	if err != nil || ks.Len() != 2 {
		t.Fatalf("LoadJWKSFile: %v", err)
	}
	v, _ := fxa.NewVerifier(fxa.Options{Keys: ks})
	for _, i := range issuers() {
		if _, err := v.Verify(context.Background(), i.Mint(issuer.Token{Sub: uid})); err != nil {
			t.Errorf("key from file: %v", err)
		}
	}
	if _, err := fxa.LoadJWKSFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestIssuerPEMRoundTrip(t *testing.T) {
	a := issuers()[0]
	b, err := issuer.FromPEM(a.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	if b.KID() != a.KID() {
		t.Error("kid changed across PEM round trip")
	}
	v := staticVerifier(t, a, fxa.Options{})
	if _, err := v.Verify(context.Background(), b.Mint(issuer.Token{})); err != nil {
		t.Errorf("token from reloaded key: %v", err)
	}
	if _, err := issuer.FromPEM([]byte("junk")); err == nil {
		t.Error("junk PEM accepted")
	}
}

func BenchmarkVerifyJWT(b *testing.B) {
	iss := issuers()[0]
	ks, _ := fxa.ParseJWKS(iss.JWKS())
	v, _ := fxa.NewVerifier(fxa.Options{Keys: ks})
	tok := iss.Mint(issuer.Token{Sub: uid, Generation: 1})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
