package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/push"
)

// pushBrowser is a minimal Firefox push client over a real WebSocket.
type pushBrowser struct {
	t    *testing.T
	ws   *websocket.Conn
	uaid string // from the hello reply of subscribe
}

func dialPush(t *testing.T, serverURL string) *pushBrowser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, serverURL, &websocket.DialOptions{Subprotocols: []string{push.Subprotocol}})
	if err != nil {
		t.Fatalf("dial %s: %v", serverURL, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &pushBrowser{t: t, ws: ws}
}

func (b *pushBrowser) roundTrip(send string) map[string]any {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if send != "" {
		if err := b.ws.Write(ctx, websocket.MessageText, []byte(send)); err != nil {
			b.t.Fatal(err)
		}
	}
	_, frame, err := b.ws.Read(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(frame, &m); err != nil {
		b.t.Fatalf("frame %s: %v", frame, err)
	}
	return m
}

// subscribe says hello and registers one channel, returning the endpoint.
func (b *pushBrowser) subscribe(chid string) string {
	b.t.Helper()
	m := b.roundTrip(`{"messageType":"hello","broadcasts":{},"use_webpush":true}`)
	if m["status"] != float64(200) || m["use_webpush"] != true {
		b.t.Fatalf("hello reply %v", m)
	}
	b.uaid, _ = m["uaid"].(string)
	m = b.roundTrip(`{"channelID":"` + chid + `","messageType":"register"}`)
	if m["status"] != float64(200) {
		b.t.Fatalf("register reply %v", m)
	}
	return m["pushEndpoint"].(string)
}

func postPush(t *testing.T, endpoint, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("TTL", "60")
	req.Header.Set("Content-Encoding", "aes128gcm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push to %s: %d", endpoint, resp.StatusCode)
	}
}

func (b *pushBrowser) expect(chid, body string) {
	b.t.Helper()
	m := b.roundTrip("")
	if m["messageType"] != "notification" || m["channelID"] != chid || m["data"] != base64.RawURLEncoding.EncodeToString([]byte(body)) {
		b.t.Fatalf("got %v, want a notification of %q", m, body)
	}
	ack, _ := json.Marshal(map[string]any{"messageType": "ack", "updates": []any{map[string]any{"channelID": chid, "version": m["version"], "code": 100}}})
	if err := b.ws.Write(context.Background(), websocket.MessageText, ack); err != nil {
		b.t.Fatal(err)
	}
}

// TestServePush runs `weave serve --push` behind a path prefix: the prefs it
// prints lead a browser to the service, and a push reaches it.
func TestServePush(t *testing.T) {
	addr := testkit.FreeAddr(t)
	metricsAddr := testkit.FreeAddr(t)
	out := servePushAt(t, addr, "--public-url", "http://"+addr+"/sync", "--push", "--metrics-listen", metricsAddr)
	wsURL := "ws://" + addr + "/sync/"
	for _, want := range []string{"dom.push.serverURL = " + wsURL + "\n", "dom.push.testing.allowInsecureServerURL = true\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("serve output lacks %q:\n%s", want, out)
		}
	}
	// The WebSocket is only for upgrades: a page request at the root goes
	// on as before.
	if resp, err := http.Get("http://" + addr + "/sync/"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("plain GET upgraded")
	}

	const chid = "87ca7290-4cdd-434e-8f9c-b76514cd3977"
	b := dialPush(t, wsURL)
	ep := b.subscribe(chid)
	if !regexp.MustCompile(`^http://` + regexp.QuoteMeta(addr) + `/sync/wpush/v1/[A-Za-z0-9_-]+$`).MatchString(ep) {
		t.Fatalf("endpoint %q", ep)
	}
	postPush(t, ep, "through weave serve")
	b.expect(chid, "through weave serve")

	// The Web Push errors are autopush's, behind the prefix too.
	resp, err := http.Post("http://"+addr+"/sync/wpush/v1/nope", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 404 || e["errno"] != float64(102) {
		t.Fatalf("bad token: %d %v", resp.StatusCode, e)
	}

	// The metrics count it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(body)
		if strings.Contains(text, `weave_push_messages_total{event="delivered"} 1`) {
			for _, want := range []string{"weave_push_connections 1", `weave_push_registrations_total{op="register"} 1`, `weave_push_messages_total{event="direct"} 1`, "weave_push_delivery_seconds_count 1",
				`weave_http_requests_total{endpoint="/sync/wpush/{version}/{token}",method="POST",status="201"} 1`} {
				if !strings.Contains(text, want) {
					t.Errorf("metrics lack %q in\n%s", want, grepLines(text, "wpush"))
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery not counted:\n%s", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServePushTwoProcesses: two `weave serve --push` on one database, as
// behind a load balancer without sticky sessions: a message posted to one
// reaches the browser connected to the other.
func TestServePushTwoProcesses(t *testing.T) {
	db := dbtest.Postgres(t)
	secret := "a-master-secret-shared-by-the-fleet"
	a := startServer(t, db, "--push", "--master-secret", secret)
	b := startServer(t, db, "--push", "--master-secret", secret)
	const chid = "0f0e0d0c-0b0a-4908-8706-050403020100"
	br := dialPush(t, "ws"+strings.TrimPrefix(b.base, "http")+"/")
	ep := br.subscribe(chid)
	viaA := a.base + ep[len(b.base):]
	postPush(t, viaA, "posted to A")
	br.expect(chid, "posted to A")
}

// servePushAt runs `weave serve` on addr until the test ends and returns
// what it printed on start.
func servePushAt(t *testing.T, addr string, extra ...string) string {
	t.Helper()
	out := &syncBuffer{}
	serveMain(t, out, append([]string{"--listen", addr, "--data-dir", t.TempDir(), "--fxa-oauth-url", "http://127.0.0.1:1",
		"--shutdown-grace", "0s", "--log-level", "warn"}, extra...)...)
	return out.String()
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
