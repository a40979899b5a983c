package accounts_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa"
)

const firefoxClient = "5882386c6d801776"

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPagesOnepwMatchesGo runs the page's WebCrypto onepw code in Chromium
// and checks every value against package onepw (itself checked against
// the protocol's published vectors) and the Go JWE code.
func TestPagesOnepwMatchesGo(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t)
	b.open(w.base + "/")

	email, password := "andré@example.org", "pässwörd"
	var st struct{ QS, AuthPW, UnwrapBKey string }
	b.eval(`(async () => { const P = WeaveOnepw; const c = await P.stretch(`+jsString(email)+`, `+jsString(password)+`);
		return {QS: P.hex(c.quickStretchedPW), AuthPW: P.hex(c.authPW), UnwrapBKey: P.hex(c.unwrapBKey)}; })()`, &st)
	c := onepw.Stretch(email, password)
	if st.QS != hex.EncodeToString(c.QuickStretchedPW) || st.AuthPW != hex.EncodeToString(c.AuthPW) || st.UnwrapBKey != hex.EncodeToString(c.UnwrapBKey) {
		t.Errorf("stretch: JS %+v, Go %x %x %x", st, c.QuickStretchedPW, c.AuthPW, c.UnwrapBKey)
	}
	if st.AuthPW != "247b675ffb4c46310bc87e26d712153abe5e1c90ef00a4784594f97ef54f2375" {
		t.Errorf("JS authPW %s is not the protocol's vector", st.AuthPW)
	}

	token := "4a9cbe5ae7190a7bb7cc54d5d84f5e4ba743904f8a764933b72f10260067375a"
	var dt struct{ HKDF, ID, Key, Extra string }
	b.eval(`(async () => { const P = WeaveOnepw; const tok = P.unhex(`+jsString(token)+`);
		const t = await P.deriveToken(tok, "keyFetchToken");
		return {HKDF: P.hex(await P.hkdf(tok, "identity.mozilla.com/picl/v1/keyFetchToken", 96)), ID: P.hex(t.id), Key: P.hex(t.hmacKey), Extra: P.hex(t.extra)}; })()`, &dt)
	k := onepw.DeriveToken(mustHex(t, token), "keyFetchToken")
	if dt.HKDF != hex.EncodeToString(onepw.HKDF(mustHex(t, token), onepw.KW("keyFetchToken"), 96)) ||
		dt.ID != hex.EncodeToString(k.ID) || dt.Key != hex.EncodeToString(k.HMACKey) || dt.Extra != hex.EncodeToString(k.Extra) {
		t.Errorf("deriveToken: JS %+v", dt)
	}

	// The published account/keys bundle vector.
	var bundle struct{ PT, Err string }
	vecKey := "dedd009a8275a4f672bb4b41e14a117812c0b2f400c85fa058e0293f3f45726a"
	vecBundle := "df4717238a738501bd2ad8f7114ef193ea69751a40108149bfb88a5643a8d683a1e75b705d4db135130f0896dbac0819ab7d54334e0cd4f9c945e0a7ada91899756cedf4384be404844050270310bc2b396f100eeda0c7b428cfe77c40a873ae"
	tampered := []byte(vecBundle)
	tampered[10] ^= 1
	b.eval(`(async () => { const P = WeaveOnepw;
		const pt = await P.openBundle(P.unhex(`+jsString(vecKey)+`), "account/keys", P.unhex(`+jsString(vecBundle)+`));
		let err = "";
		try { await P.openBundle(P.unhex(`+jsString(vecKey)+`), "account/keys", P.unhex(`+jsString(string(tampered))+`)); } catch (e) { err = e.message; }
		return {PT: P.hex(pt), Err: err}; })()`, &bundle)
	pt, err := onepw.OpenBundle(mustHex(t, vecKey), "account/keys", mustHex(t, vecBundle))
	if err != nil || bundle.PT != hex.EncodeToString(pt) || !strings.Contains(bundle.Err, "MAC") {
		t.Errorf("openBundle: JS %+v, Go %x %v", bundle, pt, err)
	}

	// A full key fetch: a bundle sealed the server's way under a random
	// keyFetchToken, unwrapped by the page into kB, and kB's oldsync key.
	kft := make([]byte, 32)
	kA, wrapKb := make([]byte, 32), make([]byte, 32)
	rand.Read(kft)
	rand.Read(kA)
	rand.Read(wrapKb)
	sealed := onepw.SealBundle(onepw.DeriveToken(kft, "keyFetchToken").Extra, "account/keys", append(append([]byte{}, kA...), wrapKb...))
	var keys struct{ KA, KB, Kid, K, Kty, Scope string }
	b.eval(`(async () => { const P = WeaveOnepw;
		const r = await P.unwrapKeys(P.unhex(`+jsString(hex.EncodeToString(kft))+`), P.unhex(`+jsString(hex.EncodeToString(sealed))+`), P.unhex(`+jsString(hex.EncodeToString(c.UnwrapBKey))+`));
		const s = await P.oldsyncKey(r.kB, 1700000000123);
		return {KA: P.hex(r.kA), KB: P.hex(r.kB), Kid: s.kid, K: s.k, Kty: s.kty, Scope: s.scope}; })()`, &keys)
	kB := onepw.XOR(wrapKb, c.UnwrapBKey)
	if keys.KA != hex.EncodeToString(kA) || keys.KB != hex.EncodeToString(kB) {
		t.Errorf("unwrapKeys: JS %s %s", keys.KA, keys.KB)
	}
	if keys.Kid != onepw.KeyID(1700000000123, kB) || keys.K != base64.RawURLEncoding.EncodeToString(onepw.KSync(kB)) ||
		keys.Kty != "oct" || keys.Scope != onepw.OldSyncScope {
		t.Errorf("oldsyncKey: JS %+v, Go kid %s", keys, onepw.KeyID(1700000000123, kB))
	}
	// The protocol's kSync / client-state vector, through the page.
	b.eval(`(async () => { const P = WeaveOnepw;
		const s = await P.oldsyncKey(P.unhex("fd5c747806c07ce0b9d69dcfea144663e630b65ec4963596a22f24910d7dd15d"), 1234);
		return {Kid: s.kid, K: s.k}; })()`, &keys)
	if keys.Kid != "1234-aulGg1ccenxU2rRwCqOZXw" || hex.EncodeToString(mustB64(t, keys.K)) != "ad501a50561be52b008878b2e0d8a73357778a712255f7722f497b5d4df14b05dc06afb836e1521e882f521eb34691d172337accdbf6e2a5b968b05a7bbb9885" {
		t.Errorf("oldsync vector: %+v", keys)
	}

	// keys_jwe: the page encrypts to a key the test holds, Go decrypts.
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	jwk := keysJWK(priv)
	plaintext := `{"https://identity.mozilla.com/apps/oldsync":{"kid":"1-x","k":"y","kty":"oct","scope":"https://identity.mozilla.com/apps/oldsync"}}`
	var jwe string
	b.eval(`(async () => { const P = WeaveOnepw; const peer = await P.parseJWK(`+jsString(jwk)+`);
		return await P.encryptJWE(peer, new TextEncoder().encode(`+jsString(plaintext)+`)); })()`, &jwe)
	got, err := accounts.DecryptJWE(jwe, priv)
	if err != nil || string(got) != plaintext {
		t.Fatalf("Go cannot decrypt the page's JWE: %v %q", err, got)
	}
	if !accounts.ValidJWE(jwe) {
		t.Errorf("the page's JWE fails the server's shape check: %s", jwe)
	}
	// parseJWK refuses what is not a P-256 public key.
	other, _ := ecdh.P384().GenerateKey(rand.Reader)
	ob := other.PublicKey().Bytes()
	for name, bad := range map[string]string{
		"not base64":  "!!!",
		"not json":    b64s("{"),
		"wrong curve": b64s(`{"kty":"EC","crv":"P-384","x":"` + base64.RawURLEncoding.EncodeToString(ob[1:49]) + `","y":"` + base64.RawURLEncoding.EncodeToString(ob[49:]) + `"}`),
		"off curve":   b64s(`{"kty":"EC","crv":"P-256","x":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + `","y":"` + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + `"}`),
		"rsa":         b64s(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`),
	} {
		var ok bool
		b.eval(`(async () => { try { await WeaveOnepw.parseJWK(`+jsString(bad)+`); return true; } catch (e) { return false; } })()`, &ok)
		if ok {
			t.Errorf("parseJWK accepted %s", name)
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// keysJWK is keys_jwk as Firefox builds it: base64url of the JSON
// WebCrypto exports (with its ext and key_ops members).
func keysJWK(priv *ecdh.PrivateKey) string {
	j := accounts.PublicJWK(priv.PublicKey())
	raw, _ := json.Marshal(map[string]any{"crv": j.Crv, "ext": true, "key_ops": []string{}, "kty": j.Kty, "x": j.X, "y": j.Y})
	return base64.RawURLEncoding.EncodeToString(raw)
}

// firefoxSignInURL is the URL Firefox opens to sign in to Sync
// (FxAccountsConfig.promiseConnectAccountURI with the parameters of
// FxAccountsOAuth.beginOAuthFlow); "action" comes twice, as Firefox
// appends it from both.
func firefoxSignInURL(base, clientID string, pk fxaclient.PKCE, state, jwk string) string {
	q := url.Values{}
	q.Add("context", "oauth_webchannel_v1")
	q.Add("entrypoint", "preferences")
	q.Add("action", "email")
	q.Add("service", "sync")
	q.Add("client_id", clientID)
	q.Add("action", "email")
	q.Add("response_type", "code")
	q.Add("access_type", "offline")
	q.Add("scope", onepw.OldSyncScope+" profile")
	q.Add("state", state)
	q.Add("code_challenge", pk.Challenge)
	q.Add("code_challenge_method", "S256")
	q.Add("keys_jwk", jwk)
	return base + "/?" + q.Encode()
}

func commands(msgs []webChannelMsg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Message.Command)
	}
	return out
}

// TestPagesFirefoxSignIn opens the page with the query Firefox uses, signs
// in, and checks what Firefox would receive: the WebChannel messages, a
// code that the PKCE verifier redeems, and a keys_jwe that decrypts with
// Firefox's ephemeral key to the account's real oldsync key, which the
// token server accepts.
func TestPagesFirefoxSignIn(t *testing.T) {
	w := newWorld(t)
	email, password := "Fox@Example.org", "correct horse battery"
	if _, err := w.client.SignUp(w.ctx, email, password); err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	pk := fxaclient.NewPKCE()
	state := "c3RhdGUtZnJvbS1maXJlZm94"

	b := newBrowser(t)
	b.onNewDocument(fakeFirefox)
	b.open(firefoxSignInURL(w.base, firefoxClient, pk, state, keysJWK(priv)))
	if s := b.step(); s != "email" {
		t.Fatalf("step %q, error %q", s, b.text("info"))
	}
	// The email as typed differs in case: the page must follow errno 120.
	b.fill(map[string]string{"email": "fox@example.org"})
	b.waitStep("signin")
	b.fill(map[string]string{"password": "wrong password"})
	b.waitStep("signin")
	if e := b.text("error"); !strings.Contains(e, "Incorrect password") {
		t.Fatalf("wrong password: error %q", e)
	}
	b.fill(map[string]string{"password": password})
	b.waitStep("done")

	msgs := b.webChannel()
	if got := strings.Join(commands(msgs), ","); got != "fxaccounts:fxa_status,fxaccounts:can_link_account,fxaccounts:login,fxaccounts:oauth_login" {
		t.Fatalf("WebChannel commands: %s", got)
	}
	for _, m := range msgs {
		if m.DetailType != "string" || m.ID != "account_updates" || m.Message.MessageID == "" {
			t.Errorf("message %s: detail %s, id %q, messageId %q", m.Message.Command, m.DetailType, m.ID, m.Message.MessageID)
		}
	}
	if d := msgs[0].Message.Data; d["service"] != "sync" || d["context"] != "oauth_webchannel_v1" || d["isPairing"] != false {
		t.Errorf("fxa_status data: %v", d)
	}
	login := msgs[2].Message.Data
	if login["email"] != email || login["verified"] != true || login["uid"] == "" || login["sessionToken"] == nil {
		t.Errorf("login data: %v", login)
	}
	if _, ok := login["keyFetchToken"]; ok {
		t.Error("OAuth login message carries keyFetchToken (Firefox ignores it in OAuth flows and FxA leaves it out)")
	}
	if sv, _ := login["services"].(map[string]any); sv == nil || sv["sync"] == nil {
		t.Errorf("login without services.sync (Sync would stay off): %v", login)
	}
	if d := msgs[1].Message.Data; d["email"] != email || d["uid"] != login["uid"] {
		t.Errorf("can_link_account data: %v", d)
	}
	ol := msgs[3].Message.Data
	code, _ := ol["code"].(string)
	if ol["state"] != state || ol["action"] != "signin" || code == "" ||
		!strings.HasPrefix(ol["redirect"].(string), "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel?") {
		t.Fatalf("oauth_login data: %v", ol)
	}

	// Firefox redeems the code at /v1/oauth/token, Hawk-signed with the
	// session token from the login message, with its PKCE verifier.
	st := mustHex(t, login["sessionToken"].(string))
	sess := &fxaclient.Session{SessionToken: st}
	redeem := func(verifier string) (*fxaclient.TokenResponse, error) {
		var tr fxaclient.TokenResponse
		err := w.client.Do(w.ctx, "POST", "/v1/oauth/token", sess.Cred(), map[string]string{
			"grant_type": "authorization_code", "code": code, "client_id": firefoxClient, "code_verifier": verifier}, &tr)
		return &tr, err
	}
	tr, err := redeem(pk.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tr.RefreshToken == "" || !strings.Contains(tr.Scope, onepw.OldSyncScope) || tr.KeysJWE == "" {
		t.Fatalf("token response: %+v", tr)
	}
	_, err = redeem(pk.Verifier)
	wantErrno(t, err, 400, 172) // a code is single use

	// keys_jwe decrypts with Firefox's private key to the right key.
	plain, err := accounts.DecryptJWE(tr.KeysJWE, priv)
	if err != nil {
		t.Fatal(err)
	}
	var bundle map[string]accounts.ScopedKey
	if err := json.Unmarshal(plain, &bundle); err != nil || len(bundle) != 1 {
		t.Fatalf("scoped keys: %s %v", plain, err)
	}
	sk := bundle[onepw.OldSyncScope]
	s, err := w.client.SignIn(w.ctx, email, password)
	if err != nil {
		t.Fatal(err)
	}
	_, kB, err := w.client.Keys(w.ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := w.svc.Account(w.ctx, email)
	if sk.Scope != onepw.OldSyncScope || sk.Kty != "oct" || sk.K != base64.RawURLEncoding.EncodeToString(onepw.KSync(kB)) ||
		sk.Kid != onepw.KeyID(a.KeysChanged, kB) {
		t.Fatalf("scoped key %+v, want kid %s", sk, onepw.KeyID(a.KeysChanged, kB))
	}
	// What Firefox does next: the token server with that kid.
	if tok, code := w.syncToken(tr.AccessToken, sk.Kid); code != 200 || tok["uid"] == nil {
		t.Fatalf("token server: %d %v", code, tok)
	}
	// Firefox revokes the refresh token it does not use.
	if err := w.client.Do(w.ctx, "POST", "/v1/oauth/destroy", nil, map[string]string{"client_id": firefoxClient, "token": tr.RefreshToken}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestPagesFirefoxWrongVerifier: a code the page obtained is burnt by a
// wrong PKCE verifier, and the right one then cannot use it.
func TestPagesFirefoxWrongVerifier(t *testing.T) {
	w := newWorld(t)
	if _, err := w.client.SignUp(w.ctx, "pkce@example.org", "password1234"); err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	pk := fxaclient.NewPKCE()
	b := newBrowser(t)
	b.onNewDocument(fakeFirefox)
	b.open(firefoxSignInURL(w.base, firefoxClient, pk, "st", keysJWK(priv)))
	b.fill(map[string]string{"email": "pkce@example.org"})
	b.waitStep("signin")
	b.fill(map[string]string{"password": "password1234"})
	b.waitStep("done")
	msgs := b.webChannel()
	code := msgs[len(msgs)-1].Message.Data["code"].(string)
	wrong := fxaclient.NewPKCE().Verifier
	_, err := w.client.TokenFromCode(w.ctx, firefoxClient, code, wrong)
	wantErrno(t, err, 400, 175)
	_, err = w.client.TokenFromCode(w.ctx, firefoxClient, code, pk.Verifier)
	wantErrno(t, err, 400, 172)
}

// TestPagesBadFirefoxQuery: a damaged keys_jwk (or other OAuth parameter)
// or an unknown client stops the page before it asks for anything, and
// nothing is sent to Firefox or created.
func TestPagesBadFirefoxQuery(t *testing.T) {
	w := newWorld(t)
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	pk := fxaclient.NewPKCE()
	good := keysJWK(priv)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	offCurve := strings.Replace(string(raw), `"x":"`, `"x":"A`, 1)
	b := newBrowser(t)
	b.onNewDocument(fakeFirefox)
	for name, u := range map[string]string{
		"truncated keys_jwk": firefoxSignInURL(w.base, firefoxClient, pk, "s", good[:len(good)-5]),
		"garbled keys_jwk":   firefoxSignInURL(w.base, firefoxClient, pk, "s", base64.RawURLEncoding.EncodeToString([]byte(offCurve))),
		"no state":           firefoxSignInURL(w.base, firefoxClient, pk, "", good),
		"bad challenge":      firefoxSignInURL(w.base, firefoxClient, fxaclient.PKCE{Challenge: "short"}, "s", good),
		"unknown client":     firefoxSignInURL(w.base, "ffffffffffffffff", pk, "s", good),
	} {
		b.open(u)
		if s := b.step(); s != "error" {
			t.Errorf("%s: step %q", name, s)
			continue
		}
		info := b.text("info")
		if !strings.Contains(info, "damaged") && !strings.Contains(info, "does not know") {
			t.Errorf("%s: message %q", name, info)
		}
		if msgs := b.webChannel(); len(msgs) != 0 {
			t.Errorf("%s: sent %v to Firefox", name, commands(msgs))
		}
	}
	if l, _ := w.svc.ListAccounts(w.ctx, "", 10); len(l) != 0 {
		t.Errorf("accounts created: %v", l)
	}
}

// TestPagesPlainSignUp: the page opened in any browser (no Firefox query)
// creates an account the Go client can sign in to, and says how to use it
// from Firefox.
func TestPagesPlainSignUp(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t)
	b.open(w.base + "/")
	if m := b.eval2(`document.body.dataset.mode`); m != "plain" {
		t.Fatalf("mode %q", m)
	}
	b.fill(map[string]string{"email": "new@example.org"})
	b.waitStep("signup")
	b.fill(map[string]string{"password": "short", "password-confirm": "short"})
	b.waitStep("signup")
	if e := b.text("error"); !strings.Contains(e, "8 characters") {
		t.Fatalf("short password: %q", e)
	}
	b.fill(map[string]string{"password": "long enough pw", "password-confirm": "different pw!"})
	b.waitStep("signup")
	if e := b.text("error"); !strings.Contains(e, "do not match") {
		t.Fatalf("mismatch: %q", e)
	}
	b.fill(map[string]string{"password": "long enough pw", "password-confirm": "long enough pw"})
	b.waitStep("done")
	if info := b.text("info"); !strings.Contains(info, "identity.fxaccounts.autoconfig.uri") || !strings.Contains(info, w.base) {
		t.Errorf("done page lacks the Firefox instructions: %q", info)
	}
	s, err := w.client.SignIn(w.ctx, "new@example.org", "long enough pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.client.Keys(w.ctx, s); err != nil {
		t.Fatal(err)
	}
	// The page signed its own session out: only the Go client's is left.
	a, _ := w.svc.Account(w.ctx, "new@example.org")
	if toks, _ := w.store.Tokens(w.ctx, a.UID, accounts.KindSession); len(toks) != 1 {
		t.Errorf("%d sessions, want 1", len(toks))
	}
	// Signing up again with the same email goes to sign-in.
	b.open(w.base + "/")
	b.fill(map[string]string{"email": "NEW@example.org"})
	b.waitStep("signin")
	b.fill(map[string]string{"password": "long enough pw"})
	b.waitStep("done")
	if m := b.text("done-message"); !strings.Contains(m, "correct") {
		t.Errorf("plain sign-in: %q", m)
	}
}

func (b *browser) eval2(expr string) string {
	b.t.Helper()
	var s string
	b.eval(expr, &s)
	return s
}

// TestPagesClosedSignup: with sign-up closed the page does not offer it.
func TestPagesClosedSignup(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) { c.SignupClosed = true })
	b := newBrowser(t)
	b.open(w.base + "/signup")
	b.fill(map[string]string{"email": "nobody@example.org"})
	b.waitStep("email")
	if e := b.text("error"); !strings.Contains(e, "operator") {
		t.Errorf("closed sign-up: %q", e)
	}
}

// TestPagesCaptchaSignUp signs up through the page in captcha mode,
// answering wrong first (the page fetches a new captcha) and then right,
// in Firefox mode, through to the oauth_login message.
func TestPagesCaptchaSignUp(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) { c.SignupCaptcha = true })
	var mu sync.Mutex
	answers := map[string]string{}
	accounts.OnCaptcha(w.svc, func(id, answer string) {
		mu.Lock()
		answers[id] = answer
		mu.Unlock()
	})
	// shown waits for the page to show a captcha other than prev and
	// returns its id and answer.
	shown := func(b *browser, prev string) (string, string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(40 * time.Millisecond) {
			var id string
			b.eval(`(() => { const i = document.getElementById("captcha-image");
				return i.complete && i.naturalWidth === 260 && i.dataset.captchaId || ""; })()`, &id)
			if id != "" && id != prev {
				mu.Lock()
				defer mu.Unlock()
				return id, answers[id]
			}
		}
		t.Fatal("the page shows no new captcha")
		return "", ""
	}
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	pk := fxaclient.NewPKCE()
	b := newBrowser(t)
	b.onNewDocument(fakeFirefox)
	b.open(firefoxSignInURL(w.base, firefoxClient, pk, "s1", keysJWK(priv)))
	b.fill(map[string]string{"email": "captcha@example.org"})
	b.waitStep("signup")
	id1, first := shown(b, "")
	b.fill(map[string]string{"password": "captcha pass 1", "password-confirm": "captcha pass 1", "captcha-answer": "WRONG1"})
	b.waitStep("signup")
	if e := b.text("error"); !strings.Contains(e, "did not match") {
		t.Fatalf("wrong captcha: %q", e)
	}
	if accountCount(t, w, "captcha@example.org") != 0 {
		t.Fatal("account created with a wrong captcha")
	}
	// The first picture's answer is spent: typed against the new picture
	// it is just wrong (unless, 1 in 20^6, the answers coincide).
	id2, second := shown(b, id1)
	if first != second {
		b.fill(map[string]string{"password": "captcha pass 1", "password-confirm": "captcha pass 1", "captcha-answer": first})
		b.waitStep("signup")
		if accountCount(t, w, "captcha@example.org") != 0 {
			t.Fatal("an old captcha's answer worked")
		}
		_, second = shown(b, id2)
	}
	// Choose what to sync: the engines Firefox offered, one declined.
	b.eval(`document.getElementById("engine-history").checked = false`, nil)
	b.fill(map[string]string{"password": "captcha pass 1", "password-confirm": "captcha pass 1", "captcha-answer": " " + strings.ToLower(second) + " "})
	b.waitStep("done")
	msgs := b.webChannel()
	if got := strings.Join(commands(msgs), ","); got != "fxaccounts:fxa_status,fxaccounts:can_link_account,fxaccounts:login,fxaccounts:oauth_login" {
		t.Fatalf("WebChannel commands: %s", got)
	}
	if msgs[3].Message.Data["action"] != "signup" {
		t.Errorf("oauth_login action %v", msgs[3].Message.Data["action"])
	}
	sync, _ := msgs[2].Message.Data["services"].(map[string]any)["sync"].(map[string]any)
	if offered, _ := sync["offeredEngines"].([]any); len(offered) != 6 || fmt.Sprint(sync["declinedEngines"]) != "[history]" {
		t.Errorf("login services.sync: %v", sync)
	}
	if _, err := w.client.SignIn(w.ctx, "captcha@example.org", "captcha pass 1"); err != nil {
		t.Fatal(err)
	}
}

// TestPagesServed checks the page routes, headers and assets without a
// browser.
func TestPagesServed(t *testing.T) {
	w := newWorld(t)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(w.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, p := range []string{"/", "/signin?service=sync", "/signup", "/oauth/signin", "/authorization", "/settings", "/settings/clients", "/connect_another_device", "/pair"} {
		resp, body := get(p)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, `/_accounts/app.js?v=`) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", p, resp.Header)
		}
	}
	for _, a := range []string{"api.js", "app.js", "onepw.js", "settings.js", "style.css"} {
		resp, body := get("/_accounts/" + a)
		if resp.StatusCode != 200 || len(body) < 100 || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: %d", a, resp.StatusCode)
		}
		// Everything is local: no URL of another site in the assets.
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(body, bad) && !strings.Contains(body, "https://identity.mozilla.com/apps/oldsync") {
				t.Errorf("%s references %q", a, bad)
			}
		}
	}
	if resp, _ := get("/_accounts/nope.js"); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
	resp, body := get("/metrics-flow?entrypoint=x")
	var mf map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &mf) != nil || mf["flowId"] == nil {
		t.Errorf("metrics-flow: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", w.base+"/signin", strings.NewReader("x"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST page: %v %v", resp, err)
	}
	var ci map[string]any
	if err := w.client.Do(w.ctx, "GET", "/v1/client/"+firefoxClient, nil, nil, &ci); err != nil || ci["name"] != "Firefox" {
		t.Errorf("client info: %v %v", ci, err)
	}
	wantErrno(t, w.client.Do(w.ctx, "GET", "/v1/client/ffffffffffffffff", nil, nil, nil), 400, 162)
	wantErrno(t, w.client.Do(w.ctx, "GET", "/v1/client/zz", nil, nil, nil), 400, 107)
	_ = fxa.OldSyncScope
}

// noSuchChannel is what Firefox answers when its account channel listens
// to another origin (WebChannelParent's "No Such Channel", no messageId).
const noSuchChannel = `
window.__webchannel = [];
window.addEventListener("WebChannelMessageToChrome", e => {
	const d = JSON.parse(e.detail);
	window.__webchannel.push({detailType: typeof e.detail, id: d.id, message: d.message});
	setTimeout(() => window.dispatchEvent(new CustomEvent("WebChannelMessageToContent",
		{detail: {id: d.id, message: {errno: 2, error: "No Such Channel"}}})), 0);
});
`

// TestPagesFirefoxNotConnected: opened in a Firefox whose account channel
// is not this server's, the page says how to connect instead of asking for
// a password that could not reach Firefox.
func TestPagesFirefoxNotConnected(t *testing.T) {
	w := newWorld(t)
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	b := newBrowser(t)
	b.onNewDocument(noSuchChannel)
	b.open(firefoxSignInURL(w.base, firefoxClient, fxaclient.NewPKCE(), "s", keysJWK(priv)))
	if s := b.waitStep("error"); s != "error" {
		t.Fatal(s)
	}
	if info := b.text("info"); !strings.Contains(info, "identity.fxaccounts.autoconfig.uri") || !strings.Contains(info, w.base) {
		t.Errorf("message: %q", info)
	}
	if got := strings.Join(commands(b.webChannel()), ","); got != "fxaccounts:fxa_status" {
		t.Errorf("sent %s", got)
	}
}

// TestPagesNothingHalfWay: when Firefox refuses to link the account, or
// the server refuses the authorization, Firefox is told nothing about the
// session and the page signs it out again.
func TestPagesNothingHalfWay(t *testing.T) {
	w := newWorld(t)
	if _, err := w.client.SignUp(w.ctx, "half@example.org", "password1234"); err != nil {
		t.Fatal(err)
	}
	a, _ := w.svc.Account(w.ctx, "half@example.org")
	sessions := func() int {
		toks, err := w.store.Tokens(w.ctx, a.UID, accounts.KindSession)
		if err != nil {
			t.Fatal(err)
		}
		return len(toks)
	}
	before := sessions()
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	// refused signs in with Firefox's page script (fakeFirefox plus script)
	// at page, and checks that the sign-in fails with an error containing
	// wantErr, that Firefox heard only the status and link questions, and
	// that no session is left behind.
	refused := func(what, script, page, wantErr string) {
		t.Helper()
		b := newBrowser(t)
		b.onNewDocument(fakeFirefox + script)
		b.open(page)
		b.fill(map[string]string{"email": "half@example.org"})
		b.waitStep("signin")
		b.fill(map[string]string{"password": "password1234"})
		b.waitStep("signin")
		if e := b.text("error"); !strings.Contains(e, wantErr) {
			t.Errorf("%s: %q", what, e)
		}
		if got := strings.Join(commands(b.webChannel()), ","); got != "fxaccounts:fxa_status,fxaccounts:can_link_account" {
			t.Errorf("sent %s", got)
		}
		if n := sessions(); n != before {
			t.Errorf("%d sessions after a %s, want %d", n, what, before)
		}
	}
	refused("refused link", `window.__canLink = false;`,
		firefoxSignInURL(w.base, firefoxClient, fxaclient.NewPKCE(), "s", keysJWK(priv)), "did not link")

	// A scope the server does not grant: refused at authorization, before
	// Firefox gets a login message.
	u := strings.Replace(firefoxSignInURL(w.base, firefoxClient, fxaclient.NewPKCE(), "s", keysJWK(priv)),
		url.QueryEscape(onepw.OldSyncScope+" profile"), url.QueryEscape("https://identity.mozilla.com/apps/notes"), 1)
	refused("refused authorization", "", u, "scopes")
}
