package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/firefox"
	"github.com/weave-sync/weave/internal/marionette"
)

// TestFirefoxEndToEnd is issue 7's real-client test: Debian's firefox-esr,
// unmodified, headless, fresh profiles, pointed at weave by the one
// autoconfig pref. Profile 1 signs up through weave's pages from Firefox's
// own "Sign in" button, adds a bookmark and a saved login and syncs; the
// test reads both back from weave's storage the way a CLI client would
// (onepw sign-in, kB, oldsync scoped key, crypto/keys, decrypt) and checks
// them. Profile 2 signs in through the pages and must receive them.
//
// Screenshots of every step go to $WEAVE_TEST_ARTIFACTS (firefox-*.png);
// WEAVE_UPDATE_SCREENSHOTS=1 also copies the documented ones into
// docs/firefox-screenshots/.
func TestFirefoxEndToEnd(t *testing.T) {
	firefox.Require(t)
	start := time.Now()
	// Progress with times, to see where a slow run spent them.
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	// Captcha sign-up, as a public server would run it. The pages show the
	// captcha; the test stands in for the human with the operator's
	// override secret, added by Firefox's network layer (overrideCaptcha).
	const override = "e2e-captcha-override-0123456789"
	srv := startServer(t, "", "--accounts", "--accounts-signup", "captcha", "--accounts-captcha-override", override)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	shots := newScreenshots(t)
	step("weave serving")

	const (
		email     = "firefox-e2e@example.org"
		password  = "a sync passphrase for the e2e test"
		bmURL     = "https://bookmark.example/weave-e2e"
		bmTitle   = "weave e2e bookmark"
		logOrigin = "https://login.example"
		logUser   = "e2e-user"
		logPass   = "e2e-Secret-p4ss"
	)

	// Both Firefoxes start now; profile 2 waits until profile 1 is done.
	wait1 := launchFirefox(t, srv.base, shots, "1")
	wait2 := launchFirefox(t, srv.base, shots, "2")

	// Profile 1: sign up, add data, sync.
	ff1 := wait1()
	step("profile 1: Firefox started")
	overrideCaptcha(ctx, t, ff1, srv.base, override)
	openSignIn(ctx, t, ff1, srv.base, shots, "1")
	step("profile 1: sign-in page open")
	fillPages(ctx, t, ff1, shots, "1", email, password, signUpWithCaptcha)
	step("profile 1: signed up through the pages")
	waitSignedIn(ctx, t, ff1, email)
	step("profile 1: signed in, first sync done")
	var guid string
	chromeAsync(ctx, t, ff1, addBookmarkJS, []any{bmURL, bmTitle}, &guid)
	chromeAsync(ctx, t, ff1, addLoginJS, []any{logOrigin, logUser, logPass}, &guid)
	syncNow(ctx, t, ff1)
	step("profile 1: bookmark and login synced")
	shots.page(ctx, t, ff1, "about:preferences#sync", email, "1-5-synced")

	// weave now holds both, encrypted with keys only the account's
	// password unlocks.
	sc, keys := signInAsCLI(t, srv.base, http.DefaultClient, email, password)
	bulk := defaultKeys(t, sc, keys)
	var found bool
	for _, r := range decryptCollection(t, sc, bulk, "bookmarks") {
		if r["type"] == "bookmark" && r["bmkUri"] == bmURL {
			found = true
			if r["title"] != bmTitle || r["parentid"] != "toolbar" {
				t.Errorf("bookmark record %v: want title %q in the toolbar", r, bmTitle)
			}
		}
	}
	if !found {
		t.Errorf("no bookmark record for %s on the server", bmURL)
	}
	found = false
	for _, r := range decryptCollection(t, sc, bulk, "passwords") {
		if r["hostname"] == logOrigin {
			found = true
			if r["username"] != logUser || r["password"] != logPass {
				t.Errorf("login record for %s has username %q password %q", logOrigin, r["username"], r["password"])
			}
		}
	}
	if !found {
		t.Errorf("no login record for %s on the server", logOrigin)
	}
	step("server holds both records, decrypted and checked")
	go ff1.Close() // frees its CPU for profile 2; the cleanup waits for it

	// Profile 2: a fresh Firefox signs in and receives them.
	ff2 := wait2()
	step("profile 2: Firefox started")
	openSignIn(ctx, t, ff2, srv.base, shots, "2")
	fillPages(ctx, t, ff2, shots, "2", email, password, signIn)
	step("profile 2: signed in through the pages")
	waitSignedIn(ctx, t, ff2, email)
	step("profile 2: first sync done")
	var bm struct{ Title, URL string }
	poll(ctx, t, stepWait, "the bookmark to reach profile 2", func() bool {
		chromeAsync(ctx, t, ff2, findBookmarkJS, []any{bmURL}, &bm)
		if bm.URL == "" {
			syncNow(ctx, t, ff2)
		}
		return bm.URL != ""
	})
	if bm.Title != bmTitle {
		t.Errorf("profile 2 has the bookmark titled %q, want %q", bm.Title, bmTitle)
	}
	var logins []struct{ Username, Password string }
	poll(ctx, t, stepWait, "the login to reach profile 2", func() bool {
		chromeAsync(ctx, t, ff2, findLoginsJS, []any{logOrigin}, &logins)
		if len(logins) == 0 {
			syncNow(ctx, t, ff2)
		}
		return len(logins) > 0
	})
	if len(logins) != 1 || logins[0].Username != logUser || logins[0].Password != logPass {
		t.Errorf("profile 2 logins for %s: %+v", logOrigin, logins)
	}
	step("profile 2 has the bookmark and the login")
	shots.publish(t)
}

// TestFirefoxHTTPSProxy is the deployment docs/firefox.md describes for a
// real server: weave behind a TLS-terminating reverse proxy that serves it
// under a path prefix (https://HOST/sync/ → weave's /), with
// --public-url https://HOST/sync and the autoconfig pref set to that URL,
// nothing else (no allowHttp). A fresh Firefox signs up through the pages
// and syncs, and the CLI reader finds its records through the proxy.
func TestFirefoxHTTPSProxy(t *testing.T) {
	firefox.Require(t)
	ca, serverTLS := testCA(t)
	// The proxy's address must be known before weave starts, to be its
	// public URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "https://" + ln.Addr().String() + "/sync"
	srv := startServer(t, "", "--accounts", "--accounts-signup", "open", "--public-url", public)
	target, _ := url.Parse(srv.base)
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/sync")
		if !ok {
			http.NotFound(w, r)
			return
		}
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path, pr.Out.URL.RawPath = rest, ""
			pr.SetXForwarded()
		}}).ServeHTTP(w, r)
	}))
	proxy.Listener.Close()
	proxy.Listener = ln
	proxy.TLS = serverTLS
	proxy.StartTLS()
	t.Cleanup(proxy.Close) // after Firefox's cleanup, registered below
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	shots := newScreenshots(t)
	ff := launchFirefox(t, public, shots, "https")()
	// What a user does with a private CA (a public certificate needs
	// nothing): trust it in Firefox's certificate store.
	chrome(ctx, t, ff, `Cc["@mozilla.org/security/x509certdb;1"].getService(Ci.nsIX509CertDB).addCertFromBase64(arguments[0], "C,,")`,
		[]any{base64.StdEncoding.EncodeToString(ca.Raw)}, nil)
	const email, password = "https-proxy@example.org", "a passphrase behind a proxy"
	openSignIn(ctx, t, ff, public, shots, "https")
	fillPages(ctx, t, ff, shots, "https", email, password, signUp)
	waitSignedIn(ctx, t, ff, email)

	// Firefox's first sync uploaded its client record; read it back.
	cc, keys := signInAsCLI(t, public, hc, email, password)
	var names []any
	for _, r := range decryptCollection(t, cc, defaultKeys(t, cc, keys), "clients") {
		names = append(names, r["name"])
	}
	if len(names) != 1 || names[0] == "" || names[0] == nil {
		t.Fatalf("clients collection through the proxy: %v", names)
	}
	if !strings.HasPrefix(cc.token.APIEndpoint, public+"/1.5/") {
		t.Fatalf("storage endpoint %s is not behind the proxy", cc.token.APIEndpoint)
	}
}

// testCA makes a CA and a server certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T) (*x509.Certificate, *tls.Config) {
	t.Helper()
	ca := newCertAuthority(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(ca.issue(t, 2, key))
	if err != nil {
		t.Fatal(err)
	}
	return ca.cert, &tls.Config{Certificates: []tls.Certificate{cert}}
}

// launchFirefox starts a fresh profile in the background, so Firefox's
// start-up overlaps other work; the returned function waits for it. The
// profile's only weave-specific settings are the two prefs docs/firefox.md
// tells users to set. Firefox's output goes to the artifacts, and its end
// to the log of a failed test. extra prefs go over those.
func launchFirefox(t *testing.T, base string, shots *screenshots, name string, extra ...map[string]any) func() *firefox.Firefox {
	t.Helper()
	prefs := firefox.AccountPrefs(base)
	for _, m := range append([]map[string]any{firefox.DebugPrefs()}, extra...) {
		maps.Copy(prefs, m)
	}
	opts := firefox.Options{Binary: firefox.Require(t), Profile: filepath.Join(t.TempDir(), "profile"), Prefs: prefs, Width: 1024, Height: 768,
		StartTimeout: 2 * time.Minute}
	var ff *firefox.Firefox
	var err error
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		ff, err = firefox.Start(context.Background(), opts)
	}()
	t.Cleanup(func() {
		<-ready
		if ff == nil {
			return
		}
		ff.Close()
		os.WriteFile(filepath.Join(shots.dir, "firefox-"+name+".log"), []byte(ff.Log()), 0o644)
		if t.Failed() {
			t.Logf("Firefox %s output (all of it in %s):\n%s", name, shots.dir, firefox.Tail(ff.Log(), 20000))
		}
	})
	return func() *firefox.Firefox {
		t.Helper()
		<-ready
		if err != nil {
			t.Fatalf("starting Firefox %s: %v", name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), stepWait)
		defer cancel()
		// Implicit waits make FindElement wait for the pages' steps.
		if err := ff.SetTimeouts(ctx, marionette.Timeouts{Implicit: stepWait.Milliseconds(), Script: stepWait.Milliseconds(), PageLoad: stepWait.Milliseconds()}); err != nil {
			t.Fatal(err)
		}
		return ff
	}
}

// overrideCaptcha makes Firefox add the operator's captcha override
// header to account/create requests, from its network layer: the page
// itself runs unchanged and still shows its captcha.
func overrideCaptcha(ctx context.Context, t *testing.T, ff *firefox.Firefox, base, secret string) {
	t.Helper()
	chrome(ctx, t, ff, `
		const [url, secret] = arguments;
		Services.obs.addObserver({observe(subject) {
			const ch = subject.QueryInterface(Ci.nsIHttpChannel);
			if (ch.URI.spec.startsWith(url)) ch.setRequestHeader("X-Captcha-Override", secret, false);
		}}, "http-on-modify-request");`, []any{base + "/v1/account/create", secret}, nil)
}

// openSignIn clicks "Sign in" in Settings → Sync, as a user does, and
// checks that Firefox fetched weave's autoconfig and opened its page.
func openSignIn(ctx context.Context, t *testing.T, ff *firefox.Firefox, base string, shots *screenshots, profile string) {
	t.Helper()
	if err := ff.Navigate(ctx, "about:preferences#sync"); err != nil {
		t.Fatal(err)
	}
	btn, err := ff.FindElement(ctx, marionette.ID, "noFxaSignIn")
	if err != nil {
		t.Fatalf("Settings has no Sign in button: %v", err)
	}
	content(ctx, t, ff, scrollToGroupJS+"scrollToGroup(arguments[0])", []any{btn}, nil)
	shots.take(ctx, t, ff, profile+"-1-settings", false)
	if err := ff.ElementClick(ctx, btn); err != nil {
		t.Fatal(err)
	}
	var u string
	poll(ctx, t, stepWait, "Firefox to open weave's sign-in page", func() bool {
		u, _ = ff.CurrentURL(ctx)
		// ROOT/?… for a root URL, ROOT?… below a path prefix.
		return strings.HasPrefix(u, base+"/?") || strings.HasPrefix(u, base+"?")
	})
	for _, want := range []string{"context=oauth_webchannel_v1", "client_id=5882386c6d801776", "keys_jwk=", "code_challenge="} {
		if !strings.Contains(u, want) {
			t.Errorf("sign-in URL %s lacks %s", u, want)
		}
	}
	var prefs map[string]string
	chrome(ctx, t, ff, `const r = {}; for (const p of arguments[0]) r[p] = Services.prefs.getStringPref(p, ""); return r`,
		[]any{[]string{"identity.sync.tokenserver.uri", "identity.fxaccounts.auth.uri", "identity.fxaccounts.remote.root"}}, &prefs)
	if prefs["identity.sync.tokenserver.uri"] != base+"/1.0/sync/1.5" || prefs["identity.fxaccounts.auth.uri"] != base+"/v1" ||
		prefs["identity.fxaccounts.remote.root"] != base {
		t.Fatalf("autoconfig did not point Firefox at weave: %v", prefs)
	}
}

// pagesFlow is which way through weave's pages fillPages goes.
type pagesFlow int

const (
	signIn pagesFlow = iota
	signUp
	signUpWithCaptcha
)

// fillPages goes through weave's sign-up or sign-in page (element ids from
// the pages' contract: #email, #password, #password-confirm,
// #captcha-image, #captcha-answer, #submit; body[data-step]).
func fillPages(ctx context.Context, t *testing.T, ff *firefox.Firefox, shots *screenshots, profile, email, password string, flow pagesFlow) {
	t.Helper()
	waitStep(ctx, t, ff, "email")
	typeInto(ctx, t, ff, "#email", email)
	shots.take(ctx, t, ff, profile+"-2-email", true)
	click(ctx, t, ff, "#submit")
	if flow == signIn {
		waitStep(ctx, t, ff, "signin")
		typeInto(ctx, t, ff, "#password", password)
		shots.take(ctx, t, ff, profile+"-3-signin", true)
	} else {
		waitStep(ctx, t, ff, "signup")
		typeInto(ctx, t, ff, "#password", password)
		typeInto(ctx, t, ff, "#password-confirm", password)
		if flow == signUpWithCaptcha {
			var loaded bool
			poll(ctx, t, stepWait, "the captcha image", func() bool {
				content(ctx, t, ff, `const i = document.getElementById("captcha-image"); return !!i && i.complete && i.naturalWidth > 0`, nil, &loaded)
				return loaded
			})
			// Any answer: the override header decides.
			typeInto(ctx, t, ff, "#captcha-answer", "AAAAAA")
		}
		shots.take(ctx, t, ff, profile+"-3-signup", true)
	}
	click(ctx, t, ff, "#submit")
	waitStep(ctx, t, ff, "done")
	shots.take(ctx, t, ff, profile+"-4-done", true)
}

func waitStep(ctx context.Context, t *testing.T, ff *firefox.Firefox, want string) {
	t.Helper()
	var st struct{ Step, Error string }
	poll(ctx, t, stepWait, "page step "+want, func() bool {
		content(ctx, t, ff, `const e = document.getElementById("error"); return {step: document.body ? document.body.dataset.step || "" : "", error: e ? e.textContent : ""}`, nil, &st)
		if st.Step == "error" || (st.Error != "" && st.Step != want) {
			t.Fatalf("page shows an error at step %q (waiting for %q): %s", st.Step, want, st.Error)
		}
		return st.Step == want
	})
}

func typeInto(ctx context.Context, t *testing.T, ff *firefox.Firefox, css, text string) {
	t.Helper()
	el, err := ff.FindElement(ctx, marionette.CSS, css)
	if err == nil {
		err = ff.ElementSendKeys(ctx, el, text)
	}
	if err != nil {
		t.Fatalf("typing into %s: %v", css, err)
	}
}

func click(ctx context.Context, t *testing.T, ff *firefox.Firefox, css string) {
	t.Helper()
	el, err := ff.FindElement(ctx, marionette.CSS, css)
	if err == nil {
		err = ff.ElementClick(ctx, el)
	}
	if err != nil {
		t.Fatalf("clicking %s: %v", css, err)
	}
}

// waitSignedIn waits until Firefox has the account, verified, and its
// first sync (which starts by itself after sign-in) has succeeded.
func waitSignedIn(ctx context.Context, t *testing.T, ff *firefox.Firefox, email string) {
	t.Helper()
	var st struct {
		Email, Status, Service, LastSync, Error string
		Verified, Locked                        bool
	}
	poll(ctx, t, stepWait, "Firefox to sign in and finish its first sync", func() bool {
		chromeAsync(ctx, t, ff, stateJS, nil, &st)
		if st.Error != "" {
			t.Fatalf("reading Firefox's account state: %s", st.Error)
		}
		return st.Email == email && st.Verified && !st.Locked && st.LastSync != "" && st.Status == "success.sync"
	})
}

// syncNow runs one complete sync; a sync already running is waited for
// and then followed by ours.
func syncNow(ctx context.Context, t *testing.T, ff *firefox.Firefox) {
	t.Helper()
	var r struct {
		Finished, Status, Service, Error string
	}
	poll(ctx, t, stepWait, "a sync to run", func() bool {
		chromeAsync(ctx, t, ff, syncJS, nil, &r)
		if r.Error != "" || r.Finished == "weave:service:sync:error" {
			t.Fatalf("sync failed: %+v", r)
		}
		return r.Finished != ""
	})
	if r.Status != "success.sync" {
		t.Fatalf("sync ended with %+v", r)
	}
}

const weaveImports = `
const {Weave} = ChromeUtils.importESModule("resource://services-sync/main.sys.mjs");
const {getFxAccountsSingleton} = ChromeUtils.importESModule("resource://gre/modules/FxAccounts.sys.mjs");
const {PlacesUtils} = ChromeUtils.importESModule("resource://gre/modules/PlacesUtils.sys.mjs");
const done = arguments[arguments.length - 1];
const fail = e => done({error: String(e)});
`

const stateJS = weaveImports + `
getFxAccountsSingleton().getSignedInUser().then(u => done({
	email: u ? u.email : "", verified: !!(u && u.verified), locked: Weave.Service.locked,
	status: Weave.Status.sync, service: Weave.Status.service,
	lastSync: Services.prefs.getStringPref("services.sync.lastSync", "")}), fail);`

// syncJS waits out a running sync, runs one and reports whether it did
// (Weave.Service.sync returns silently when another holds the lock).
const syncJS = weaveImports + `
(async () => {
	for (let i = 0; i < 100 && Weave.Service.locked; i++) await new Promise(r => setTimeout(r, 100));
	let finished = "";
	const obs = (s, topic) => { finished = topic; };
	Services.obs.addObserver(obs, "weave:service:sync:finish");
	Services.obs.addObserver(obs, "weave:service:sync:error");
	try { await Weave.Service.sync({why: "user"}); } finally {
		Services.obs.removeObserver(obs, "weave:service:sync:finish");
		Services.obs.removeObserver(obs, "weave:service:sync:error");
	}
	return {finished, status: Weave.Status.sync, service: Weave.Status.service};
})().then(done, fail);`

const addBookmarkJS = weaveImports + `
PlacesUtils.bookmarks.insert({parentGuid: PlacesUtils.bookmarks.toolbarGuid, url: arguments[0], title: arguments[1]})
	.then(b => done(b.guid), fail);`

const addLoginJS = weaveImports + `
const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
login.init(arguments[0], arguments[0], null, arguments[1], arguments[2], "", "");
Services.logins.addLoginAsync(login).then(l => done(l.guid), fail);`

const findBookmarkJS = weaveImports + `
PlacesUtils.bookmarks.fetch({url: arguments[0]}).then(b => done(b ? {title: b.title, url: b.url.href} : {}), fail);`

const findLoginsJS = weaveImports + `
Services.logins.searchLoginsAsync({origin: arguments[0]})
	.then(ls => done(ls.map(l => ({username: l.username, password: l.password}))), fail);`

func chrome(ctx context.Context, t *testing.T, ff *firefox.Firefox, script string, args []any, out any) {
	t.Helper()
	inContext(ctx, t, ff, marionette.Chrome, func() error { return ff.ExecuteScript(ctx, script, args, out) })
}

func chromeAsync(ctx context.Context, t *testing.T, ff *firefox.Firefox, script string, args []any, out any) {
	t.Helper()
	inContext(ctx, t, ff, marionette.Chrome, func() error { return ff.ExecuteAsyncScript(ctx, script, args, out) })
}

func content(ctx context.Context, t *testing.T, ff *firefox.Firefox, script string, args []any, out any) {
	t.Helper()
	if err := ff.ExecuteScript(ctx, script, args, out); err != nil {
		t.Fatal(err)
	}
}

// inContext runs fn in the chrome or content context and switches back to
// content, where the rest of the test works.
func inContext(ctx context.Context, t *testing.T, ff *firefox.Firefox, which marionette.Context, fn func() error) {
	t.Helper()
	if err := ff.SetContext(ctx, which); err != nil {
		t.Fatal(err)
	}
	err := fn()
	if err2 := ff.SetContext(ctx, marionette.Content); err == nil {
		err = err2
	}
	if err != nil {
		t.Fatal(err)
	}
}

// stepWait bounds one step of a Firefox test: a page load, a step of
// weave's pages, a sync, a script. Each takes a second or two on a quiet
// machine, but over 20 s was seen on a loaded two-core box (other
// packages' tests under -race beside it), and Firefox's start over 40 s.
// Only a hang reaches the bound, so it is generous.
const stepWait = 60 * time.Second

// poll calls fn until it returns true, at most for d (and the context).
func poll(ctx context.Context, t *testing.T, d time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshots keeps PNGs of the steps in the artifact directory.
type screenshots struct {
	dir   string
	taken []string
	off   bool // take does nothing (tests whose steps are not documented)
}

func newScreenshots(t *testing.T) *screenshots {
	dir := os.Getenv("WEAVE_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &screenshots{dir: dir}
}

// take keeps the viewport, or with full the whole document.
func (s *screenshots) take(ctx context.Context, t *testing.T, ff *firefox.Firefox, name string, full bool) {
	t.Helper()
	if s.off {
		return
	}
	shoot := ff.TakeScreenshot
	if full {
		shoot = ff.TakeFullScreenshot
	}
	png, err := shoot(ctx)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(s.dir, "firefox-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	s.taken = append(s.taken, p)
}

// page loads url and takes its screenshot once text shows on it
// (Settings renders its panes after the load event, in shadow DOM).
func (s *screenshots) page(ctx context.Context, t *testing.T, ff *firefox.Firefox, url, text, name string) {
	t.Helper()
	if err := ff.Navigate(ctx, url); err != nil {
		t.Fatal(err)
	}
	var shown bool
	poll(ctx, t, stepWait, fmt.Sprintf("%q on %s", text, url), func() bool {
		content(ctx, t, ff, findTextJS, []any{text}, &shown)
		return shown
	})
	s.take(ctx, t, ff, name, false)
}

// findTextJS looks for visible text or a label, through shadow roots, and
// scrolls its Settings group to the top of the window.
const findTextJS = scrollToGroupJS + `
const want = arguments[0];
const walk = root => {
	for (const el of root.querySelectorAll("*")) {
		if (el.shadowRoot && walk(el.shadowRoot)) return true;
		const own = [...el.childNodes].filter(n => n.nodeType == 3).map(n => n.data).join("") + " " + (el.getAttribute("label") || "") + " " + (el.value || "");
		if (own.includes(want) && el.checkVisibility()) {
			scrollToGroup(el);
			return true;
		}
	}
	return false;
};
return walk(document);`

// scrollToGroupJS defines scrollToGroup(el): bring the Settings card
// holding el (setting-group, across shadow roots) to the top, so a
// screenshot shows the account and sync cards rather than page banners.
const scrollToGroupJS = `
const scrollToGroup = el => {
	let g = el;
	while (g && g.localName != "setting-group") g = g.parentElement || (g.getRootNode() && g.getRootNode().host);
	(g || el).scrollIntoView({block: "start", behavior: "instant"});
};`

// publish copies the screenshots docs/firefox.md shows into the docs, when
// asked to (WEAVE_UPDATE_SCREENSHOTS=1): CI keeps them as artifacts only.
func (s *screenshots) publish(t *testing.T) {
	t.Helper()
	if os.Getenv("WEAVE_UPDATE_SCREENSHOTS") != "1" {
		t.Logf("screenshots in %s (WEAVE_UPDATE_SCREENSHOTS=1 copies them to docs/firefox-screenshots)", s.dir)
		return
	}
	dst := filepath.Join("..", "..", "docs", "firefox-screenshots")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.taken {
		if !documentedShots[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "firefox-"), ".png")] {
			continue
		}
		b, err := os.ReadFile(p)
		if err == nil {
			b, err = compactPNG(b)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("copied the documented screenshots to %s", dst)
}

// compactPNG re-encodes a screenshot with the 256 colours it uses most
// (flat UI colours; anti-aliasing shades map to the nearest), about a
// third of the size, so the docs' pictures stay small in the repository.
func compactPNG(b []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	r := img.Bounds()
	count := map[color.RGBA]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			count[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colors := slices.SortedFunc(maps.Keys(count), func(a, b color.RGBA) int { return count[b] - count[a] })
	pal := make(color.Palette, 0, 256)
	for _, c := range colors[:min(256, len(colors))] {
		pal = append(pal, c)
	}
	p := image.NewPaletted(r, pal)
	draw.Draw(p, r, img, r.Min, draw.Src)
	var out bytes.Buffer
	err = (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, p)
	return out.Bytes(), err
}

// documentedShots are the steps docs/firefox.md shows.
var documentedShots = map[string]bool{
	"1-1-settings": true, "1-2-email": true, "1-3-signup": true, "1-4-done": true, "1-5-synced": true, "2-3-signin": true,
}
