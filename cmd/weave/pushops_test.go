package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weave-sync/weave/internal/testkit"
)

// TestPushOperations: `weave push stats` reads what a running `weave
// serve --push` holds, and `weave loadtest push` drives it (connections,
// messages and their delivery).
func TestPushOperations(t *testing.T) {
	addr := testkit.FreeAddr(t)
	dir := t.TempDir()
	serveMain(t, &syncBuffer{}, "--listen", addr, "--data-dir", dir, "--fxa-oauth-url", "http://127.0.0.1:1",
		"--shutdown-grace", "0s", "--log-level", "warn", "--push")
	weave := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}

	// One browser with a message it has not acknowledged. Handed to it
	// directly, the message is stored when its session ends unacked; the
	// browser comes back, gets it again and still does not ack.
	const chid = "5b0a8c2e-7d1f-4e5a-9c3b-2f6e8d4a1b7c"
	b := dialPush(t, "ws://"+addr+"/")
	ep := b.subscribe(chid)
	uaid := b.uaid
	postPush(t, ep, "waiting")
	b.roundTrip("") // the notification, not acked
	b.ws.Close(websocket.StatusNormalClosure, "")
	var code int
	var out, errs string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out, errs = weave("push", "stats", "--data-dir", dir)
		if code != 0 {
			t.Fatalf("push stats: exit %d: %s", code, errs)
		}
		if regexp.MustCompile(`(?m)^messages waiting +1$`).MatchString(out) || time.Now().After(deadline) {
			break
		}
	}
	b = dialPush(t, "ws://"+addr+"/")
	if m := b.roundTrip(`{"messageType":"hello","uaid":"` + uaid + `","use_webpush":true}`); m["uaid"] != uaid {
		t.Fatalf("hello again: %v", m)
	}
	if m := b.roundTrip(""); m["messageType"] != "notification" {
		t.Fatalf("stored message not redelivered: %v", m)
	}
	code, out, errs = weave("push", "stats", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("push stats: exit %d: %s", code, errs)
	}
	for _, re := range []string{`(?m)^UAIDs +1$`, `(?m)^channels +1$`, `(?m)^messages waiting +1$`, `(?m)^  0 to 1m old +1$`, `(?m)^  [0-9a-f]+ +1 +20`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("push stats output lacks %s:\n%s", re, out)
		}
	}

	// 20 more browsers, 50 messages/s for a second: all delivered.
	code, out, errs = weave("loadtest", "push", "--target", "http://"+addr, "--push-conns", "20", "--push-rate", "50", "--duration", "1s", "--progress-interval", "200ms")
	if code != 0 {
		t.Fatalf("loadtest push: exit %d:\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "connections  20/20 up") || !regexp.MustCompile(`messages +(\d+) sent .* 0 errors, (\d+) delivered, 0 lost`).MatchString(out) || !strings.Contains(out, "p99") {
		t.Errorf("loadtest push report:\n%s", out)
	}
	if m := regexp.MustCompile(`messages +(\d+) sent .* (\d+) delivered`).FindStringSubmatch(out); m == nil || m[1] != m[2] || m[1] == "0" {
		t.Errorf("sent and delivered differ: %q", m)
	}
	if !strings.Contains(errs, "conns 20/20") {
		t.Errorf("no progress lines:\n%s", errs)
	}
	if code, _, errs := weave("push", "stats", "--data-dir", t.TempDir()); code == 0 || !strings.Contains(errs, "weave serve --push") {
		t.Errorf("push stats on a database without push: exit %d, %s", code, errs)
	}
}
