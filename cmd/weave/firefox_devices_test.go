package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/firefox"
	"github.com/weave-sync/weave/internal/marionette"
)

// noticeWait is how soon issue 15 wants each device notice acted on.
const noticeWait = 10 * time.Second

// TestFirefoxDevicesPush is issue 15's real-client proof: two unmodified
// Firefox ESR profiles, signed in through weave's pages to one account,
// with Firefox's push prefs pointed at weave's push service (what weave
// prints on start; the test profile's push switch, off in QuietPrefs, back
// on). Each step must show in profile B within noticeWait:
//
//  1. A sends a tab to B (FxA's Send Tab command, the call Firefox's
//     "Send to device" menu makes); B opens it.
//  2. A closes that tab on B (the close-uri/v1 command, the call Firefox's
//     remote tab close makes once its 5 s undo delay is over); B closes it.
//  3. A changes the password on weave's account page; B gets the
//     password_changed push and, its session ended, needs to sign in again.
//  4. A disconnects B on the same page; B hears device_disconnected and
//     signs out.
//
// The password change comes before the disconnect because a disconnected
// Firefox signs out and unsubscribes from push (FxAccountsPush on
// fxaccounts:onlogout), so it could not hear of a later change; Firefox
// keeps its device id through "needs reauth" (FXA_PWDMGR_REAUTH_ALLOWLIST),
// so the disconnect still reaches it.
func TestFirefoxDevicesPush(t *testing.T) {
	firefox.Require(t)
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	srv := startServer(t, "", "--accounts", "--accounts-signup", "open", "--push")
	pushURL := regexp.MustCompile(`dom\.push\.serverURL = (\S+)`).FindStringSubmatch(srv.stdout.String())
	if pushURL == nil || !strings.Contains(srv.stdout.String(), "dom.push.testing.allowInsecureServerURL = true") {
		t.Fatalf("weave printed no push prefs:\n%s", srv.stdout.String())
	}
	pushPrefs := map[string]any{
		"dom.push.serverURL":                      pushURL[1],
		"dom.push.testing.allowInsecureServerURL": true,
		"dom.push.connection.enabled":             true,
	}
	// The tab travels between the profiles; it must load (Firefox closes
	// tabs by their loaded URI), so it is served here.
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>weave send tab</title><p>sent by profile A")
	}))
	t.Cleanup(page.Close) // registered before Firefox's cleanups, so runs after them
	tabURL := page.URL + "/sent-tab?n=1"

	// Only a hang reaches this: each wait below has its own bound.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	shots := newScreenshots(t)
	shots.off = true // Firefox's logs still go to the artifacts
	waitA := launchFirefox(t, srv.base, shots, "A", pushPrefs)
	waitB := launchFirefox(t, srv.base, shots, "B", pushPrefs)

	const email, password, newPassword = "devices@example.org", "the devices test password", "the changed devices password"
	a := waitA()
	step("A: Firefox started")
	openSignIn(ctx, t, a, srv.base, shots, "A")
	fillPages(ctx, t, a, shots, "A", email, password, signUp)
	b := waitB()
	step("B: Firefox started, A signed up")
	openSignIn(ctx, t, b, srv.base, shots, "B")
	fillPages(ctx, t, b, shots, "B", email, password, signIn)
	waitSignedIn(ctx, t, a, email)
	waitSignedIn(ctx, t, b, email)
	step("A and B signed in and synced")

	// B's device, as A sees it: registered with a push callback on weave's
	// push service and both tab commands.
	var bID string
	chromeAsync(ctx, t, b, weaveImports+`getFxAccountsSingleton().device.getLocalId().then(done, fail)`, nil, &bID)
	var target deviceView
	poll(ctx, t, stepWait, "A to list B with a push callback and the tab commands", func() bool {
		var list []deviceView
		chromeAsync(ctx, t, a, devicesJS, nil, &list)
		for _, d := range list {
			if d.ID == bID {
				target = d
			}
		}
		return target.SendTab && slices.Contains(target.Commands, closeURI) && target.PushCallback != ""
	})
	if !strings.HasPrefix(target.PushCallback, srv.base+"/wpush/") || target.PushExpired {
		t.Fatalf("B's push callback %q (expired %v) is not on weave's push service", target.PushCallback, target.PushExpired)
	}
	chrome(ctx, t, b, observeJS, nil, nil)
	step("A lists B (" + target.Name + ")")

	// 1. Send Tab.
	t0 := time.Now()
	var sent struct {
		OK    bool
		Error string
	}
	chromeAsync(ctx, t, a, sendTabJS, []any{bID, tabURL, "weave send tab"}, &sent)
	if !sent.OK {
		t.Fatalf("step 1 (send tab): A's Send Tab failed: %s", sent.Error)
	}
	within(ctx, t, b, t0, "step 1 (send tab): B opens the tab A sent", func(st *bState) bool {
		return st.saw("fxaccounts:command_received", "open-uri", "TabOpen") && slices.Contains(st.Tabs, tabURL)
	})
	step("1. B opened the tab A sent")

	// 2. Close Tabs.
	t0 = time.Now()
	chromeAsync(ctx, t, a, closeTabJS, []any{bID, tabURL}, &sent)
	if !sent.OK {
		t.Fatalf("step 2 (close tab): A's close-tabs command failed (see A's log: \"Error while invoking a send tab command\")")
	}
	within(ctx, t, b, t0, "step 2 (close tab): B closes the tab A closed remotely", func(st *bState) bool {
		return st.saw("fxaccounts:command_received", "close-uri", "TabClose "+tabURL) && !slices.Contains(st.Tabs, tabURL)
	})
	step("2. B closed the tab")

	// 3. Password change on weave's account page, opened in A as
	// Firefox's "Manage account" does (the page gets A's session from
	// Firefox over the account WebChannel).
	if err := a.Navigate(ctx, srv.base+"/settings?entrypoint=preferences"); err != nil {
		t.Fatal(err)
	}
	waitStep(ctx, t, a, "settings")
	if _, err := a.FindElement(ctx, marionette.CSS, `#clients li[data-current][data-device]`); err != nil {
		t.Fatalf("the account page in A did not use A's own session (no current device listed): %v", err)
	}
	if _, err := a.FindElement(ctx, marionette.CSS, `#clients li[data-device="`+bID+`"]`); err != nil {
		t.Fatalf("the account page does not list B: %v", err)
	}
	typeInto(ctx, t, a, "#pw-old", password)
	typeInto(ctx, t, a, "#pw-new", newPassword)
	typeInto(ctx, t, a, "#pw-repeat", newPassword)
	// The change is made when weave answers the page's
	// password/change/finish (the page stretches both passwords first,
	// and weave checks the old one with scrypt: seconds on a loaded
	// machine before anything is changed). B's clock is the same.
	chrome(ctx, t, a, markResponseJS, []any{srv.base + "/v1/password/change/finish"}, nil)
	click(ctx, t, a, "#pw-submit")
	waitStep(ctx, t, a, "password-changed")
	var changed int64
	chrome(ctx, t, a, `return window.__responded || 0`, nil, &changed)
	if changed == 0 {
		t.Fatal("A's page changed the password without a password/change/finish response")
	}
	within(ctx, t, b, time.UnixMilli(changed), "step 3 (password change): B gets the password_changed push and needs to sign in again", func(st *bState) bool {
		return st.saw("fxaccounts:password_changed", "fxaccounts:statechange") && st.Email == email && !st.Session
	})
	var aSession struct {
		Session bool
		Error   string
	}
	chromeAsync(ctx, t, a, weaveImports+`getFxAccountsSingleton().hasLocalSession().then(session => done({session}), fail)`, nil, &aSession)
	if !aSession.Session {
		t.Fatalf("A lost its session with the password change (the page's fxaccounts:change_password did not reach it): %+v", aSession)
	}
	step("3. B heard of the password change")

	// 4. Disconnect B from the devices list.
	btn, err := a.FindElement(ctx, marionette.CSS, `#clients li[data-device="`+bID+`"] button`)
	if err != nil {
		t.Fatalf("the account page no longer lists B after the password change: %v", err)
	}
	t0 = time.Now()
	if err := a.ElementClick(ctx, btn); err != nil {
		t.Fatal(err)
	}
	within(ctx, t, b, t0, "step 4 (disconnect): B is signed out", func(st *bState) bool {
		return st.saw("fxaccounts:device_disconnected", `device_disconnected {"isLocalDevice":true}`, "fxaccounts:onlogout") && st.Email == ""
	})
	step("4. B was signed out")
}

const closeURI = "https://identity.mozilla.com/cmd/close-uri/v1"

// markResponseJS records, in window.__responded, when Firefox got the
// response to a request for the URL given.
const markResponseJS = `
const url = arguments[0];
window.__responded = 0;
Services.obs.addObserver(function seen(subject) {
	const ch = subject.QueryInterface(Ci.nsIHttpChannel);
	if (ch.URI.spec == url && ch.requestMethod == "POST") {
		window.__responded = Date.now();
		Services.obs.removeObserver(seen, "http-on-examine-response");
	}
}, "http-on-examine-response");`

// deviceView is a device of A's list, with what A's Firefox makes of it.
type deviceView struct {
	ID, Name, PushCallback string
	PushExpired            bool
	Commands               []string
	SendTab, CloseTab      bool
}

const devicesJS = weaveImports + `
(async () => {
	const fxa = getFxAccountsSingleton();
	await fxa.device.refreshDeviceList({ignoreCached: true});
	return fxa.device.recentDeviceList.map(d => ({id: d.id, name: d.name, pushCallback: d.pushCallback || "",
		pushExpired: !!d.pushEndpointExpired, commands: Object.keys(d.availableCommands || {}),
		sendTab: !!fxa.commands.sendTab.isDeviceCompatible(d), closeTab: !!fxa.commands.closeTab.isDeviceCompatible(d)}));
})().then(done, fail);`

// sendTabJS is what Firefox's "Send to device" does (gSync.sendTabToDevice
// calls it for each FxA device), with the failure reasons kept.
const sendTabJS = weaveImports + `
const [id, url, title] = arguments;
(async () => {
	const fxa = getFxAccountsSingleton();
	const d = fxa.device.recentDeviceList.find(d => d.id == id);
	const r = await fxa.commands.sendTab.send([d], {url, title});
	return {ok: r.succeeded.length == 1, error: r.failed.map(f => String(f.error)).join("; ")};
})().then(done, fail);`

// closeTabJS is what Firefox's close-tab command queue sends for a device
// once the undo delay is over (CommandQueue.flushQueue).
const closeTabJS = weaveImports + `
const [id, url] = arguments;
(async () => {
	const fxa = getFxAccountsSingleton();
	const d = fxa.device.recentDeviceList.find(d => d.id == id);
	const ok = await fxa.commands.closeTab.sendCloseTabsCommand(d, [url], Services.uuid.generateUUID().toString().slice(1, -1));
	return {ok};
})().then(done, fail);`

// observeJS records, in B, the FxA pushes (by command) and the
// notifications Firefox's handlers raise for them.
const observeJS = `
window.__seen = [];
window.__observers = [];
const note = s => window.__seen.push({what: s, at: Date.now()});
const obs = (topic, fn) => {
	const o = (subject, t, data) => { try { fn(subject, data); } catch (e) { note(topic + " error " + e); } };
	Services.obs.addObserver(o, topic);
	window.__observers.push(o);
};
obs("push-message", (subject, scope) => {
	const m = subject && subject.QueryInterface(Ci.nsIPushMessage);
	if (scope == "chrome://fxa-device-update") note(m && m.data ? m.data.json().command : "push without data");
});
obs("fxaccounts:commands:open-uri", () => note("open-uri"));
obs("fxaccounts:commands:close-uri", () => note("close-uri"));
obs("fxaccounts:device_disconnected", (s, data) => note("device_disconnected " + data));
obs("fxaccounts:statechange", () => note("fxaccounts:statechange"));
obs("fxaccounts:onlogout", () => note("fxaccounts:onlogout"));
gBrowser.tabContainer.addEventListener("TabOpen", () => note("TabOpen"));
gBrowser.tabContainer.addEventListener("TabClose", e => note("TabClose " + e.target.linkedBrowser.currentURI.spec));`

// bState is what profile B shows: its account, whether it holds a
// session, the URIs loaded in its tabs and what observeJS recorded.
type bState struct {
	Email   string
	Session bool
	Tabs    []string
	Seen    []seenEvent
	Error   string
	since   int64 // the step's start (ms since 1970)
	last    int64 // when the latest event saw matched
}

type seenEvent struct {
	What string
	At   int64
}

// saw reports whether every one of all was seen since since (ms), and
// notes when the last of them was.
func (s *bState) saw(all ...string) bool {
	s.last = 0
	for _, w := range all {
		i := slices.IndexFunc(s.Seen, func(e seenEvent) bool { return e.What == w && e.At >= s.since })
		if i < 0 {
			s.last = 0
			return false
		}
		s.last = max(s.last, s.Seen[i].At)
	}
	return true
}

const bStateJS = weaveImports + `
const {BrowserWindowTracker} = ChromeUtils.importESModule("resource:///modules/BrowserWindowTracker.sys.mjs");
(async () => {
	const fxa = getFxAccountsSingleton();
	const u = await fxa.getSignedInUser();
	const tabs = [];
	for (const w of BrowserWindowTracker.orderedWindows) for (const tab of w.gBrowser.tabs) tabs.push(tab.linkedBrowser.currentURI.spec);
	return {email: u ? u.email : "", session: u ? await fxa.hasLocalSession() : false, tabs, seen: window.__seen || []};
})().then(done, fail);`

// within polls B until ok holds, and fails the test, naming step, with
// B's state if the events ok asks for (saw) did not all happen within
// noticeWait of t0. Their times are B's (this machine's clock), so a slow
// poll of a loaded Firefox does not count against the step; what ok
// checks beyond them (tabs, account state) need only follow, within
// stepWait.
func within(ctx context.Context, t *testing.T, b *firefox.Firefox, t0 time.Time, step string, ok func(*bState) bool) {
	t.Helper()
	for {
		var st bState
		chromeAsync(ctx, t, b, bStateJS, nil, &st)
		if st.Error != "" {
			// Firefox throws this when the account changes under a read
			// (B in the middle of signing out): read again.
			if strings.Contains(st.Error, "ERROR_INVALID_ACCOUNT_STATE") && time.Since(t0) <= stepWait {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Fatalf("%s: reading B's state: %s", step, st.Error)
		}
		st.since = t0.UnixMilli()
		done := ok(&st)
		took := time.Since(t0)
		if st.last != 0 {
			took = time.UnixMilli(st.last).Sub(t0)
		}
		if done && took <= noticeWait {
			t.Logf("%s: %.1fs", step, took.Seconds())
			return
		}
		if took > noticeWait || time.Since(t0) > stepWait {
			t.Fatalf("%s: not within %v (%.1fs). B has account %q (session %v), tabs %q, saw %+v",
				step, noticeWait, took.Seconds(), st.Email, st.Session, st.Tabs, st.Seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
