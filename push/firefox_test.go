package push_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/firefox"
	"github.com/weave-sync/weave/internal/marionette"
	"github.com/weave-sync/weave/push/ece"
	"github.com/weave-sync/weave/push/webpush"
)

// subscribeScript subscribes a system-principal scope (as FxA does for
// its device registration) and records the payloads pushed to it.
const subscribeScript = `
const [scope, resolve] = [arguments[0], arguments[arguments.length - 1]];
window.__pushed = window.__pushed || [];
if (!window.__observing) {
  window.__observing = true;
  Services.obs.addObserver((subject, topic, data) => {
    const msg = subject && subject.QueryInterface(Ci.nsIPushMessage);
    window.__pushed.push({scope: data, text: msg && msg.data ? msg.data.text() : null});
  }, "push-message");
}
const svc = Cc["@mozilla.org/push/Service;1"].getService(Ci.nsIPushService);
svc.subscribe(scope, Services.scriptSecurityManager.getSystemPrincipal(), (rv, sub) => {
  if (!Components.isSuccessCode(rv) || !sub) { resolve({error: String(rv)}); return; }
  const b64 = k => ChromeUtils.base64URLEncode(new Uint8Array(sub.getKey(k)), {pad: false});
  resolve({endpoint: sub.endpoint, p256dh: b64("p256dh"), auth: b64("auth"),
           uaid: Services.prefs.getStringPref("dom.push.userAgentID", "")});
});
`

// TestFirefoxReceivesPush: an unmodified Firefox pointed at the service
// with its own prefs connects, subscribes, and receives and decrypts a
// message sent through the Web Push endpoint; its ack clears the store.
func TestFirefoxReceivesPush(t *testing.T) {
	firefox.Require(t)
	s := newServer(t, openSQLite(t), nil)
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := func() *firefox.Firefox {
		ff := firefox.StartT(t, firefox.Options{Profile: profile, Prefs: map[string]any{
			"dom.push.serverURL":                      s.svc.ServerURL(),
			"dom.push.testing.allowInsecureServerURL": true,
			"dom.push.connection.enabled":             true,
			"dom.push.loglevel":                       "debug",
		}})
		if err := ff.SetContext(ctx, marionette.Chrome); err != nil {
			t.Fatal(err)
		}
		if err := ff.SetTimeouts(ctx, marionette.Timeouts{Script: 30000}); err != nil {
			t.Fatal(err)
		}
		return ff
	}
	ff := start()
	var sub struct{ Endpoint, P256dh, Auth, UAID, Error string }
	if err := ff.ExecuteAsyncScript(ctx, subscribeScript, []any{"chrome://weave-push-test"}, &sub); err != nil {
		t.Fatal(err)
	}
	if sub.Error != "" || !strings.HasPrefix(sub.Endpoint, s.srv.URL+"/wpush/v1/") || len(sub.UAID) != 32 {
		t.Fatalf("subscription %+v", sub)
	}
	keys, err := ece.ParseKeys(sub.P256dh, sub.Auth)
	if err != nil {
		t.Fatal(err)
	}
	sender := webpush.New(nil, nil)
	payload := `{"command":"sync:collection_changed","data":{"collections":["clients"]}}`
	if err := sender.Send(ctx, webpush.Subscription{Endpoint: sub.Endpoint, Keys: keys},
		webpush.Message{Payload: []byte(payload), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	var pushed []struct{ Scope, Text string }
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := ff.ExecuteScript(ctx, `return window.__pushed;`, nil, &pushed); err != nil {
			t.Fatal(err)
		}
		if len(pushed) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(pushed) != 1 || pushed[0].Scope != "chrome://weave-push-test" || pushed[0].Text != payload {
		t.Fatalf("Firefox saw %+v, want one push of %s", pushed, payload)
	}
	waitDrained(t, s, sub.UAID)

	// Firefox restarts while a message waits: its hello carries its UAID,
	// which the service keeps (a new one would drop its subscriptions),
	// and the stored message is delivered and acked.
	ff.Close()
	waitDisconnected(t, s)
	if err := sender.Send(ctx, webpush.Subscription{Endpoint: sub.Endpoint, Keys: keys},
		webpush.Message{Payload: []byte("while Firefox was away"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ff = start()
	waitDrained(t, s, sub.UAID)
	var again struct{ Endpoint, UAID string }
	if err := ff.ExecuteAsyncScript(ctx, `
const resolve = arguments[arguments.length - 1];
Cc["@mozilla.org/push/Service;1"].getService(Ci.nsIPushService).getSubscription(arguments[0],
  Services.scriptSecurityManager.getSystemPrincipal(), (rv, sub) => resolve({endpoint: sub ? sub.endpoint : "",
  uaid: Services.prefs.getStringPref("dom.push.userAgentID", "")}));`, []any{"chrome://weave-push-test"}, &again); err != nil {
		t.Fatal(err)
	}
	if again.UAID != sub.UAID || again.Endpoint != sub.Endpoint {
		t.Fatalf("after a restart: UAID %s endpoint %s, want %s %s", again.UAID, again.Endpoint, sub.UAID, sub.Endpoint)
	}
}

// waitDrained waits for the browser to ack every stored message of uaid.
func waitDrained(t *testing.T, s *server, uaid string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left, err := s.store.Pending(ctx, uaid, time.Now().UnixMilli(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still stored: Firefox did not ack", len(left))
		}
	}
}
