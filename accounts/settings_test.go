package accounts_test

import (
	"context"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
)

// fakeSignedInFirefox is fakeFirefox for a browser signed in to the
// account (window.__user): fxa_status hands the page its session, as
// FxAccountsWebChannel does for the configured origin, and the messages
// of the account page are acknowledged.
const fakeSignedInFirefox = `
window.__webchannel = [];
window.addEventListener("WebChannelMessageToChrome", e => {
	const d = JSON.parse(e.detail);
	window.__webchannel.push({detailType: typeof e.detail, id: d.id, message: d.message});
	const m = d.message;
	let data = {ok: true};
	if (m.command === "fxaccounts:fxa_status") data = {signedInUser: window.__user || null, clientId: "5882386c6d801776", capabilities: {}};
	setTimeout(() => window.dispatchEvent(new CustomEvent("WebChannelMessageToContent",
		{detail: {id: d.id, message: {command: m.command, messageId: m.messageId, data}}})), 0);
});
`

// click presses the button with id, or the Disconnect button of the
// client entry whose data-device is device.
func (b *browser) click(expr string) {
	b.t.Helper()
	b.eval(`(() => { const el = `+expr+`; if (!el) throw new Error("no element"); el.click(); })()`, nil)
}

func (b *browser) set(id, value string) {
	b.t.Helper()
	b.eval(`document.getElementById(`+jsString(id)+`).value = `+jsString(value), nil)
}

func (b *browser) openSettings(url string) string {
	b.t.Helper()
	b.mustCall("Page.navigate", map[string]any{"url": url}, true, nil)
	return b.waitStep("settings", "settings-signin")
}

// TestSettingsPageInFirefox drives the account page in a browser that
// plays Firefox signed in to the account: it lists the devices, changes
// the password (Firefox gets the new session; the other device, and only
// it, a password_changed push), disconnects the other device (which hears
// of it), and deletes the account with its Sync data (Firefox is told;
// the remaining device gets account_destroyed).
func TestSettingsPageInFirefox(t *testing.T) {
	var deleted atomic.Value
	w, ps := pushWorld(t, "sqlite", func(c *accounts.Config) {
		c.DeleteSyncData = func(_ context.Context, uid string) error { deleted.Store(uid); return nil }
	})
	ctx, c := w.ctx, w.client
	email := "page@example.org"
	if _, err := c.SignUp(ctx, email, "pw"); err != nil {
		t.Fatal(err)
	}
	a := register(t, w, ps, email, "a", nil) // the browser on the page
	bdev := register(t, w, ps, email, "b", nil)
	ps.wait(a.path, 0) // device_connected (b)

	br := newBrowser(t)
	br.onNewDocument(fakeSignedInFirefox + `window.__user = {email: ` + jsString(email) + `, uid: ` + jsString(a.s.UID) +
		`, sessionToken: ` + jsString(hex.EncodeToString(a.s.SessionToken)) + `, verified: true};`)
	if s := br.openSettings(w.base + "/settings?entrypoint=preferences&uid=" + a.s.UID + "&email=" + email); s != "settings" {
		t.Fatalf("step %s", s)
	}
	var n int
	br.eval(`document.querySelectorAll("#clients li").length`, &n)
	var current string
	br.eval(`document.querySelector("#clients li[data-current]").dataset.device`, &current)
	if n != 3 || current != a.id || br.text("s-who") != email { // a, b and the sign-up session
		t.Fatalf("clients %d, current %q, who %q", n, current, br.text("s-who"))
	}

	// Password change.
	br.set("pw-old", "wrong")
	br.set("pw-new", "new password 1")
	br.set("pw-repeat", "new password 1")
	br.click(`document.getElementById("pw-submit")`)
	br.waitStep("settings")
	if e := br.text("s-error"); !strings.Contains(e, "Incorrect password") {
		t.Fatalf("wrong old password: %q", e)
	}
	br.set("pw-old", "pw")
	br.set("pw-new", "new password 1")
	br.set("pw-repeat", "new password 1")
	br.click(`document.getElementById("pw-submit")`)
	br.waitStep("password-changed")
	var change map[string]any
	for _, m := range br.webChannel() {
		if m.Message.Command == "fxaccounts:change_password" {
			change = m.Message.Data
		}
	}
	tok, _ := change["sessionToken"].(string)
	raw, err := hex.DecodeString(tok)
	if err != nil || change["email"] != email || change["uid"] != a.s.UID || change["verified"] != true || tok == hex.EncodeToString(a.s.SessionToken) {
		t.Fatalf("change_password message: %v", change)
	}
	newSess := &fxaclient.Session{Email: email, UID: a.s.UID, SessionToken: raw}
	if err := c.Do(ctx, "GET", "/v1/session/status", newSess.Cred(), nil, nil); err != nil {
		t.Fatalf("Firefox's new session: %v", err)
	}
	wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", bdev.s.Cred(), nil, nil), 401, 110)
	bdev.expect(t, ps, 0, "fxaccounts:password_changed", nil, 6*3600)
	accounts.WaitPushes(w.svc)
	if n := ps.count(a.path); n != 1 {
		t.Fatalf("the browser that changed the password got %d pushes, want only device_connected", n)
	}
	if _, err := c.SignIn(ctx, email, "new password 1"); err != nil {
		t.Fatalf("sign in with the new password: %v", err)
	}

	// Disconnect b, listed without its (ended) session.
	br.click(`document.querySelector('#clients li[data-device="` + bdev.id + `"] button')`)
	br.waitStep("password-changed")
	for i := 0; i < 200 && !strings.Contains(br.text("s-status"), "Disconnected"); i++ {
		br.waitStep("password-changed")
	}
	bdev.expect(t, ps, 1, "fxaccounts:device_disconnected", map[string]any{"id": bdev.id}, 5*3600)
	a.expect(t, ps, 1, "fxaccounts:device_disconnected", map[string]any{"id": bdev.id}, 5*3600)
	if _, ok := deviceList(t, w, newSess)[bdev.id]; ok {
		t.Fatal("b still listed")
	}

	// Deletion.
	br.set("del-password", "new password 1")
	br.click(`document.getElementById("del-submit")`)
	br.waitStep("password-changed")
	if e := br.text("s-error"); !strings.Contains(e, "Confirm") {
		t.Fatalf("unconfirmed deletion: %q", e)
	}
	br.eval(`document.getElementById("del-confirm").checked = true`, nil)
	br.click(`document.getElementById("del-submit")`)
	br.waitStep("deleted")
	var del map[string]any
	for _, m := range br.webChannel() {
		if m.Message.Command == "fxaccounts:delete" {
			del = m.Message.Data
		}
	}
	if del["uid"] != a.s.UID || deleted.Load() != a.s.UID {
		t.Fatalf("delete message %v, Sync data of %v deleted", del, deleted.Load())
	}
	a.expect(t, ps, 2, "fxaccounts:account_destroyed", map[string]any{"uid": a.s.UID}, 5*3600)
	if _, err := c.SignIn(ctx, email, "new password 1"); err == nil {
		t.Fatal("the deleted account signs in")
	}
}

// TestSettingsPageSignInAndSignOutEverywhere: outside Firefox the page
// signs in with the password; "Sign out everywhere" ends every session
// and device of the account, and tells each device.
func TestSettingsPageSignInAndSignOutEverywhere(t *testing.T) {
	w, ps := pushWorld(t, "sqlite")
	ctx, c := w.ctx, w.client
	email := "out@example.org"
	if _, err := c.SignUp(ctx, email, "pw"); err != nil {
		t.Fatal(err)
	}
	a := register(t, w, ps, email, "a", nil)
	other, err := c.SignIn(ctx, email, "pw") // a session without a device
	if err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	if s := br.openSettings(w.base + "/settings/clients?email=" + email); s != "settings-signin" {
		t.Fatalf("step %s", s)
	}
	br.set("s-password", "wrong")
	br.click(`document.getElementById("s-signin-submit")`)
	br.waitStep("settings-signin")
	if e := br.text("s-error"); !strings.Contains(e, "Incorrect password") {
		t.Fatalf("wrong password: %q", e)
	}
	br.set("s-password", "pw")
	br.click(`document.getElementById("s-signin-submit")`)
	br.waitStep("settings")
	var n int
	br.eval(`document.querySelectorAll("#clients li").length`, &n)
	if n != 4 { // the signup session, a's, other's, the page's
		t.Fatalf("%d clients listed", n)
	}
	br.click(`document.getElementById("signout-all")`)
	br.waitStep("signed-out")
	a.expect(t, ps, 0, "fxaccounts:device_disconnected", map[string]any{"id": a.id}, 5*3600)
	for _, s := range []*fxaclient.Session{a.s, other} {
		wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", s.Cred(), nil, nil), 401, 110)
	}
	sess, err := w.store.Tokens(ctx, a.s.UID, accounts.KindSession)
	if err != nil || len(sess) != 0 {
		t.Fatalf("%d sessions left (%v)", len(sess), err)
	}
}
