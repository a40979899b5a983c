package accounts_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/chromium"
)

// The page tests drive headless Chromium through internal/chromium.

func TestMain(m *testing.M) {
	code := m.Run()
	chromium.Stop()
	os.Exit(code)
}

// browser is one test's tab, with the steps of the accounts pages.
type browser struct {
	*chromium.Tab
	t *testing.T
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	return &browser{Tab: chromium.NewTab(t), t: t}
}

func (b *browser) mustCall(method string, params any, onPage bool, out any) {
	b.t.Helper()
	b.MustCall(method, params, onPage, out)
}

func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	b.Eval(expr, out)
}

func (b *browser) tryEval(expr string, out any) error { return b.TryEval(expr, out) }

func (b *browser) onNewDocument(src string) { b.OnNewDocument(src) }

// open navigates and waits until the page's script has set a step.
func (b *browser) open(url string) {
	b.t.Helper()
	b.mustCall("Page.navigate", map[string]any{"url": url}, true, nil)
	b.waitStep("email", "error", "info")
}

// step is the page's current body[data-step].
func (b *browser) step() string {
	var s string
	if err := b.tryEval(`document.body ? document.body.dataset.step || "" : ""`, &s); err != nil {
		return ""
	}
	return s
}

// waitStep waits until the page shows one of steps and returns it.
func (b *browser) waitStep(steps ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := b.step()
		for _, want := range steps {
			if s == want {
				return s
			}
		}
		if time.Now().After(deadline) {
			var errText, status string
			b.tryEval(`document.getElementById("error").textContent`, &errText)
			b.tryEval(`document.getElementById("status").textContent + " | " + document.getElementById("info").textContent`, &status)
			b.t.Fatalf("page step %q, want one of %v (error %q, status %q)", s, steps, errText, status)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// fill sets form fields by id and presses #submit, as a user would.
func (b *browser) fill(fields map[string]string) {
	b.t.Helper()
	raw, _ := json.Marshal(fields)
	b.eval(`(() => {
		const f = `+string(raw)+`;
		for (const [id, v] of Object.entries(f)) {
			const el = document.getElementById(id);
			el.value = v;
			el.dispatchEvent(new Event("input", {bubbles: true}));
		}
		document.getElementById("submit").click();
	})()`, nil)
}

func (b *browser) text(id string) string {
	b.t.Helper()
	var s string
	b.eval(`document.getElementById(`+jsString(id)+`).textContent`, &s)
	return s
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fakeFirefox plays the browser side of the account_updates WebChannel
// the way FxAccountsWebChannel.sys.mjs answers, and records every message
// the page sends in window.__webchannel (with the detail's JS type:
// Firefox desktop only accepts strings).
const fakeFirefox = `
window.__webchannel = [];
window.addEventListener("WebChannelMessageToChrome", e => {
	let d;
	try { d = typeof e.detail === "string" ? JSON.parse(e.detail) : e.detail; } catch (err) { d = {}; }
	window.__webchannel.push({detailType: typeof e.detail, id: d.id, message: d.message});
	if (!d || d.id !== "account_updates" || !d.message) return;
	const m = d.message;
	let data;
	switch (m.command) {
	case "fxaccounts:fxa_status":
		data = {signedInUser: null, clientId: "5882386c6d801776",
			capabilities: {multiService: true, pairing: false, choose_what_to_sync: true, keys_optional: true,
				can_link_account_uid: true, engines: ["addons", "bookmarks", "history", "passwords", "prefs", "tabs"]}};
		break;
	case "fxaccounts:can_link_account":
		data = {ok: window.__canLink !== false};
		break;
	case "fxaccounts:login":
	case "fxaccounts:oauth_login":
		data = {ok: true};
		break;
	default:
		return;
	}
	setTimeout(() => window.dispatchEvent(new CustomEvent("WebChannelMessageToContent",
		{detail: {id: d.id, message: {command: m.command, messageId: m.messageId, data}}})), 0);
});
`

type webChannelMsg struct {
	DetailType string `json:"detailType"`
	ID         string `json:"id"`
	Message    struct {
		Command   string         `json:"command"`
		MessageID string         `json:"messageId"`
		Data      map[string]any `json:"data"`
	} `json:"message"`
}

func (b *browser) webChannel() []webChannelMsg {
	b.t.Helper()
	var out []webChannelMsg
	b.eval(`window.__webchannel || []`, &out)
	return out
}
