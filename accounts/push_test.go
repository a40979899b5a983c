package accounts_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/push/ece"
)

const (
	openURI  = "https://identity.mozilla.com/cmd/open-uri"
	closeURI = "https://identity.mozilla.com/cmd/close-uri/v1"
)

// pushed is one POST the fake push service received.
type pushed struct {
	path   string
	header http.Header
	body   []byte
}

// pushService is a Web Push endpoint on 127.0.0.1: it records every POST
// per path and answers with the status set for the path (default 201).
type pushService struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string][]pushed
	code map[string]int
	ch   chan struct{}
}

func newPushService(t *testing.T) *pushService {
	p := &pushService{t: t, got: map[string][]pushed{}, code: map[string]int{}, ch: make(chan struct{}, 1000)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got[r.URL.Path] = append(p.got[r.URL.Path], pushed{path: r.URL.Path, header: r.Header.Clone(), body: body})
		code := p.code[r.URL.Path]
		p.mu.Unlock()
		if r.Method != "POST" {
			code = 405
		}
		if code == 0 {
			code = 201
		}
		w.WriteHeader(code)
		p.ch <- struct{}{}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// wait returns the n-th (0-based) push to path, waiting up to 10 s.
func (p *pushService) wait(path string, n int) pushed {
	p.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		got := p.got[path]
		p.mu.Unlock()
		if len(got) > n {
			return got[n]
		}
		select {
		case <-p.ch:
		case <-deadline:
			p.t.Fatalf("no push #%d to %s", n+1, path)
		}
	}
}

func (p *pushService) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got[path])
}

// device is a Firefox profile's device: its session and push keys.
type device struct {
	name string
	s    *fxaclient.Session
	id   string
	path string // its push callback's path
	priv *ecdh.PrivateKey
	auth []byte
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// register signs in a new session for email and registers a device with
// push keys and the given commands, its callback on the push service.
func register(t *testing.T, w *world, ps *pushService, email, name string, cmds map[string]string) *device {
	t.Helper()
	s, err := w.client.SignIn(w.ctx, email, "pw")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := &device{name: name, s: s, path: "/wpush/v1/" + name, priv: priv, auth: make([]byte, 16)}
	rand.Read(d.auth)
	if cmds == nil {
		cmds = map[string]string{}
	}
	var resp map[string]any
	if err := w.client.Do(w.ctx, "POST", "/v1/account/device", s.Cred(), map[string]any{
		"name": name, "type": "desktop", "availableCommands": cmds, "pushCallback": ps.srv.URL + d.path,
		"pushPublicKey": b64u(priv.PublicKey().Bytes()), "pushAuthKey": b64u(d.auth),
	}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp["pushEndpointExpired"] != false || resp["pushCallback"] != ps.srv.URL+d.path {
		t.Fatalf("register: %v", resp)
	}
	d.id = resp["id"].(string)
	return d
}

// open decrypts a push to d with d's private key, checks the Web Push
// headers, and returns the payload and the TTL header.
func (d *device) open(t *testing.T, p pushed) (map[string]any, int) {
	t.Helper()
	if ce := p.header.Get("Content-Encoding"); ce != "aes128gcm" {
		t.Fatalf("Content-Encoding %q", ce)
	}
	ttl, err := strconv.Atoi(p.header.Get("TTL"))
	if err != nil {
		t.Fatalf("TTL header %q", p.header.Get("TTL"))
	}
	plain, err := ece.Decrypt(d.priv, d.auth, p.body)
	if err != nil {
		t.Fatalf("decrypt the push to %s: %v", d.name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(plain, &m); err != nil {
		t.Fatalf("payload %q: %v", plain, err)
	}
	if m["version"] != float64(1) {
		t.Fatalf("payload version: %v", m)
	}
	return m, ttl
}

// expect waits for the n-th push to d and checks its command, data and TTL.
func (d *device) expect(t *testing.T, ps *pushService, n int, command string, data map[string]any, ttl int) map[string]any {
	t.Helper()
	m, gotTTL := d.open(t, ps.wait(d.path, n))
	if m["command"] != command || gotTTL != ttl {
		t.Fatalf("push #%d to %s: %v TTL %d, want %s TTL %d", n+1, d.name, m, gotTTL, command, ttl)
	}
	if data == nil {
		if _, ok := m["data"]; ok {
			t.Fatalf("push %s has data: %v", command, m)
		}
		return m
	}
	got, _ := m["data"].(map[string]any)
	for k, v := range data {
		if got[k] != v {
			t.Fatalf("push %s data %v, want %s=%v", command, got, k, v)
		}
	}
	return m
}

func pushWorld(t *testing.T, backend string, mod ...func(*accounts.Config)) (*world, *pushService) {
	ps := newPushService(t)
	w := newWorldOn(t, backend, append([]func(*accounts.Config){func(c *accounts.Config) {
		c.PushHosts = []string{"http://127.0.0.1"}
	}}, mod...)...)
	t.Cleanup(func() { w.svc.Close(context.Background()) })
	return w, ps
}

func deviceList(t *testing.T, w *world, s *fxaclient.Session) map[string]map[string]any {
	t.Helper()
	var list []map[string]any
	if err := w.client.Do(w.ctx, "GET", "/v1/account/devices", s.Cred(), nil, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, d := range list {
		out[d["id"].(string)] = d
	}
	return out
}

// TestPushNotices: each notice FxA sends reaches the devices it should,
// encrypted to each device's keys (decrypted here with the device's
// private key), with FxA's payload and TTL: device_connected,
// sync:collection_changed via devices/notify, device_disconnected,
// password_changed, password_reset, profile_updated, account_destroyed.
func TestPushNotices(t *testing.T) {
	w, ps := pushWorld(t, "sqlite")
	ctx, c := w.ctx, w.client
	if _, err := c.SignUp(ctx, "push@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	a := register(t, w, ps, "push@example.org", "a", nil)
	b := register(t, w, ps, "push@example.org", "b", nil)
	a.expect(t, ps, 0, "fxaccounts:device_connected", map[string]any{"deviceName": "b"}, 0)
	cc := register(t, w, ps, "push@example.org", "c", nil)
	a.expect(t, ps, 1, "fxaccounts:device_connected", map[string]any{"deviceName": "c"}, 0)
	b.expect(t, ps, 0, "fxaccounts:device_connected", map[string]any{"deviceName": "c"}, 0)

	// Firefox's first-sync notify: everyone but itself, TTL 0.
	payload := map[string]any{"version": 1, "command": "sync:collection_changed",
		"data": map[string]any{"collections": []string{"clients"}, "reason": "firstsync"}}
	if err := c.Do(ctx, "POST", "/v1/account/devices/notify", cc.s.Cred(), map[string]any{
		"to": "all", "excluded": []string{cc.id}, "payload": payload, "TTL": 0}, nil); err != nil {
		t.Fatal(err)
	}
	a.expect(t, ps, 2, "sync:collection_changed", map[string]any{"reason": "firstsync"}, 0)
	m := b.expect(t, ps, 1, "sync:collection_changed", map[string]any{"reason": "firstsync"}, 0)
	if data, _ := json.Marshal(m["data"]); string(data) != `{"collections":["clients"],"reason":"firstsync"}` {
		t.Fatalf("collection_changed data %s", data)
	}
	// Its send-tab notify: the named devices, TTL 3600.
	payload["data"] = map[string]any{"collections": []string{"clients"}, "reason": "sendtab"}
	if err := c.Do(ctx, "POST", "/v1/account/devices/notify", a.s.Cred(), map[string]any{
		"to": []string{cc.id}, "payload": payload, "TTL": 3600}, nil); err != nil {
		t.Fatal(err)
	}
	cc.expect(t, ps, 0, "sync:collection_changed", map[string]any{"reason": "sendtab"}, 3600)

	// a disconnects c (the devices page): all three hear it, c included.
	if err := c.Do(ctx, "POST", "/v1/account/device/destroy", a.s.Cred(), map[string]string{"id": cc.id}, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		d *device
		n int
	}{{a, 3}, {b, 2}, {cc, 1}} {
		d.d.expect(t, ps, d.n, "fxaccounts:device_disconnected", map[string]any{"id": cc.id}, 5*3600)
	}
	wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", cc.s.Cred(), nil, nil), 401, 110)

	// b signs itself out: only a hears of it.
	if err := c.DestroySession(ctx, b.s); err != nil {
		t.Fatal(err)
	}
	a.expect(t, ps, 4, "fxaccounts:device_disconnected", map[string]any{"id": b.id}, 5*3600)
	accounts.WaitPushes(w.svc)
	if n := ps.count(b.path); n != 3 {
		t.Fatalf("b got %d pushes, want 3 (none for its own sign-out)", n)
	}

	w.svc.ProfileUpdated(ctx, a.s.UID)
	a.expect(t, ps, 5, "fxaccounts:profile_updated", nil, 0)

	if _, err := c.ChangePassword(ctx, "push@example.org", "pw", "pw2"); err != nil {
		t.Fatal(err)
	}
	a.expect(t, ps, 6, "fxaccounts:password_changed", nil, 6*3600)
	if err := w.svc.ResetPasswordTo(ctx, "push@example.org", "pw3"); err != nil {
		t.Fatal(err)
	}
	a.expect(t, ps, 7, "fxaccounts:password_reset", nil, 6*3600)
	if err := w.svc.DeleteAccount(ctx, a.s.UID); err != nil {
		t.Fatal(err)
	}
	a.expect(t, ps, 8, "fxaccounts:account_destroyed", map[string]any{"uid": a.s.UID}, 5*3600)
	accounts.WaitPushes(w.svc)
	if n := ps.count(a.path); n != 9 {
		t.Fatalf("a got %d pushes, want 9", n)
	}
}

// TestPushEndpointExpired: a 410 (or 404) from the push service marks the
// device's pushEndpointExpired in the device list, nothing more is sent to
// that callback, and registering a new one clears the mark.
func TestPushEndpointExpired(t *testing.T) {
	for _, code := range []int{410, 404} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			w, ps := pushWorld(t, "sqlite")
			ctx, c := w.ctx, w.client
			if _, err := c.SignUp(ctx, "gone@example.org", "pw"); err != nil {
				t.Fatal(err)
			}
			a := register(t, w, ps, "gone@example.org", "a", nil)
			ps.mu.Lock()
			ps.code[a.path] = code
			ps.mu.Unlock()
			b := register(t, w, ps, "gone@example.org", "b", nil) // pushes device_connected to a
			ps.wait(a.path, 0)
			accounts.WaitPushes(w.svc)
			if d := deviceList(t, w, b.s)[a.id]; d["pushEndpointExpired"] != true {
				t.Fatalf("after %d: %v", code, d)
			}
			notify := map[string]any{"to": []string{a.id}, "payload": map[string]any{"version": 1, "command": "fxaccounts:profile_updated"}}
			if err := c.Do(ctx, "POST", "/v1/account/devices/notify", b.s.Cred(), notify, nil); err != nil {
				t.Fatal(err)
			}
			accounts.WaitPushes(w.svc)
			if n := ps.count(a.path); n != 1 {
				t.Fatalf("%d pushes to an expired callback", n)
			}
			var out map[string]any
			a.path += "-new"
			var resp map[string]any
			body := map[string]any{"id": a.id, "pushCallback": ps.srv.URL + a.path,
				"pushPublicKey": b64u(a.priv.PublicKey().Bytes()), "pushAuthKey": b64u(a.auth)}
			if err := c.Do(ctx, "POST", "/v1/account/device", a.s.Cred(), body, &resp); err != nil || resp["pushEndpointExpired"] != false {
				t.Fatalf("re-register: %v %v", resp, err)
			}
			if d := deviceList(t, w, b.s)[a.id]; d["pushEndpointExpired"] != false || d["pushCallback"] != ps.srv.URL+a.path {
				t.Fatalf("after re-registering: %v", d)
			}
			if err := c.Do(ctx, "POST", "/v1/account/devices/notify", b.s.Cred(), notify, &out); err != nil {
				t.Fatal(err)
			}
			a.expect(t, ps, 0, "fxaccounts:profile_updated", nil, 0)
		})
	}
}

// TestInvokeCommandRoundTrip: Send Tab and close tabs between two devices
// on every backend: invoke_command queues the command and pushes
// command_received to the target, which reads it from device/commands
// (inclusive index, limit, last), as FxA answers.
func TestInvokeCommandRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		w, ps := pushWorld(t, backend)
		ctx, c := w.ctx, w.client
		if _, err := c.SignUp(ctx, "tabs@example.org", "pw"); err != nil {
			t.Fatal(err)
		}
		a := register(t, w, ps, "tabs@example.org", "a", map[string]string{openURI: "keys-a"})
		b := register(t, w, ps, "tabs@example.org", "b", map[string]string{openURI: "keys-b", closeURI: "close-keys-b"})
		ps.wait(a.path, 0) // device_connected
		invoke := func(cmd string, payload map[string]any, ttl any) map[string]any {
			t.Helper()
			body := map[string]any{"command": cmd, "target": b.id, "payload": payload}
			if ttl != nil {
				body["ttl"] = ttl
			}
			var out map[string]any
			if err := c.Do(ctx, "POST", "/v1/account/devices/invoke_command", a.s.Cred(), body, &out); err != nil {
				t.Fatal(err)
			}
			if out["enqueued"] != true || out["notified"] != true || len(out) != 2 {
				t.Fatalf("invoke_command: %v", out)
			}
			return out
		}
		invoke(openURI, map[string]any{"encrypted": "tab-1"}, nil)
		m := b.expect(t, ps, 0, "fxaccounts:command_received", map[string]any{"command": openURI, "sender": a.id}, 30*24*3600)
		data := m["data"].(map[string]any)
		idx := data["index"].(float64)
		if idx < 1 || data["url"] != w.base+"/v1/account/device/commands?index="+strconv.Itoa(int(idx))+"&limit=1" {
			t.Fatalf("command_received data: %v", data)
		}
		var got map[string]any
		if err := c.Do(ctx, "GET", "/v1/account/device/commands?index="+strconv.Itoa(int(idx)), b.s.Cred(), nil, &got); err != nil {
			t.Fatal(err)
		}
		want := `{"index":` + strconv.Itoa(int(idx)) + `,"last":true,"messages":[{"data":{"command":"` + openURI +
			`","payload":{"encrypted":"tab-1"},"sender":"` + a.id + `"},"index":` + strconv.Itoa(int(idx)) + `}]}`
		if j, _ := json.Marshal(got); string(j) != want {
			t.Fatalf("device/commands:\n got %s\nwant %s", j, want)
		}

		invoke(closeURI, map[string]any{"encrypted": "close-1"}, 600)
		m = b.expect(t, ps, 1, "fxaccounts:command_received", map[string]any{"command": closeURI}, 600)
		idx2 := m["data"].(map[string]any)["index"].(float64)
		if idx2 <= idx {
			t.Fatalf("index %v after %v", idx2, idx)
		}
		if err := c.Do(ctx, "GET", "/v1/account/device/commands?index=0&limit=1", b.s.Cred(), nil, &got); err != nil ||
			got["last"] != false || got["index"] != idx || len(got["messages"].([]any)) != 1 {
			t.Fatalf("limit 1: %v %v", got, err)
		}
		if err := c.Do(ctx, "GET", "/v1/account/device/commands", b.s.Cred(), nil, &got); err != nil ||
			got["last"] != true || got["index"] != idx2 || len(got["messages"].([]any)) != 2 {
			t.Fatalf("all: %v %v", got, err)
		}
		if err := c.Do(ctx, "GET", "/v1/account/device/commands?index="+strconv.Itoa(int(idx2)+1), b.s.Cred(), nil, &got); err != nil ||
			got["last"] != true || got["index"] != float64(0) || len(got["messages"].([]any)) != 0 {
			t.Fatalf("past the end: %v %v", got, err)
		}
		// a's own queue is empty; b's commands are b's.
		if err := c.Do(ctx, "GET", "/v1/account/device/commands", a.s.Cred(), nil, &got); err != nil || len(got["messages"].([]any)) != 0 {
			t.Fatalf("sender's queue: %v %v", got, err)
		}

		// Errors, as FxA answers them.
		wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/invoke_command", a.s.Cred(),
			map[string]any{"command": closeURI, "target": a.id, "payload": map[string]any{}}, nil), 400, 157)
		wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/invoke_command", a.s.Cred(),
			map[string]any{"command": openURI, "target": strings.Repeat("0", 32), "payload": map[string]any{}}, nil), 400, 123)
		for _, body := range []map[string]any{
			{"command": openURI, "payload": map[string]any{}},
			{"target": b.id, "payload": map[string]any{}},
			{"command": openURI, "target": b.id},
		} {
			wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/invoke_command", a.s.Cred(), body, nil), 400, 108)
		}
		for _, body := range []map[string]any{
			{"command": openURI, "target": "zz", "payload": map[string]any{}},
			{"command": openURI, "target": b.id, "payload": "x"},
			{"command": openURI, "target": b.id, "payload": map[string]any{}, "ttl": -1},
			{"command": openURI, "target": b.id, "payload": map[string]any{}, "ttl": 1.5},
			{"command": openURI, "target": b.id, "payload": map[string]any{}, "extra": 1},
		} {
			wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/invoke_command", a.s.Cred(), body, nil), 400, 107)
		}
		wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/invoke_command", nil, map[string]any{}, nil), 401, 110)
		wantErrno(t, c.Do(ctx, "GET", "/v1/account/device/commands?limit=101", b.s.Cred(), nil, nil), 400, 107)
		wantErrno(t, c.Do(ctx, "GET", "/v1/account/device/commands?index=x", b.s.Cred(), nil, nil), 400, 107)

		// A device without a push callback still gets the command; the
		// answer says it was not notified, and why.
		if err := c.Do(ctx, "POST", "/v1/account/device", b.s.Cred(), map[string]any{"id": b.id,
			"pushCallback": "", "pushPublicKey": "", "pushAuthKey": ""}, nil); err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := c.Do(ctx, "POST", "/v1/account/devices/invoke_command", a.s.Cred(),
			map[string]any{"command": openURI, "target": b.id, "payload": map[string]any{"encrypted": "tab-2"}}, &out); err != nil ||
			out["enqueued"] != true || out["notified"] != false || out["notifyError"] != "noCallback" {
			t.Fatalf("no callback: %v %v", out, err)
		}
		if err := c.Do(ctx, "GET", "/v1/account/device/commands?index="+strconv.Itoa(int(idx2)+1), b.s.Cred(), nil, &got); err != nil ||
			len(got["messages"].([]any)) != 1 {
			t.Fatalf("queued without push: %v %v", got, err)
		}

		// Destroying b empties its queue.
		if err := c.Do(ctx, "POST", "/v1/account/device/destroy", a.s.Cred(), map[string]string{"id": b.id}, nil); err != nil {
			t.Fatal(err)
		}
		if cmds, _, err := w.store.Commands(ctx, a.s.UID, b.id, 0, 100, 0); err != nil || len(cmds) != 0 {
			t.Fatalf("b's queue after destroy: %d %v", len(cmds), err)
		}
	})
}

// TestPushCallbackRules: a device may only register a push callback on an
// allowed push service (by default weave's own origin and Mozilla's push
// hosts), with all three push fields and a usable key; anything else is
// FxA's 400, and nothing is ever posted to a refused host.
func TestPushCallbackRules(t *testing.T) {
	evil := newPushService(t) // on 127.0.0.1, but another port than weave's
	w := newWorld(t)
	t.Cleanup(func() { w.svc.Close(context.Background()) })
	ctx, c := w.ctx, w.client
	s, err := c.SignUp(ctx, "rules@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	pub, auth := b64u(priv.PublicKey().Bytes()), b64u(make([]byte, 16))
	reg := func(cb, p, a any) error {
		body := map[string]any{"name": "x"}
		for k, v := range map[string]any{"pushCallback": cb, "pushPublicKey": p, "pushAuthKey": a} {
			if v != nil {
				body[k] = v
			}
		}
		return c.Do(ctx, "POST", "/v1/account/device", s.Cred(), body, nil)
	}
	for _, cb := range []string{
		evil.srv.URL + "/wpush/v1/x", // same host, another port
		"https://evil.example/wpush", // another host
		"https://updates.push.services.mozilla.com.evil.example/x",
		"https://user:pw@updates.push.services.mozilla.com/x",
		"http://updates.push.services.mozilla.com/x", // Mozilla's only over https
		"ftp://updates.push.services.mozilla.com/x",
		w.base + "/" + strings.Repeat("x", 256), // too long
		"not a url",
	} {
		wantErrno(t, reg(cb, pub, auth), 400, 107)
	}
	for _, cb := range []string{w.base + "/wpush/v1/abc", "https://updates.push.services.mozilla.com/wpush/v1/abc", ""} {
		if err := reg(cb, pub, auth); err != nil {
			t.Fatalf("%q: %v", cb, err)
		}
	}
	wantErrno(t, reg(w.base+"/wpush/v1/abc", nil, auth), 400, 108)
	wantErrno(t, reg(w.base+"/wpush/v1/abc", pub, nil), 400, 108)
	wantErrno(t, reg(nil, pub, auth), 400, 108)
	wantErrno(t, reg(w.base+"/wpush/v1/abc", b64u(make([]byte, 65)), auth), 400, 107) // not on the curve
	wantErrno(t, reg(w.base+"/wpush/v1/abc", "a+b/", auth), 400, 107)                 // not base64url
	wantErrno(t, reg(w.base+"/wpush/v1/abc", pub, b64u(make([]byte, 8))), 400, 107)   // short secret
	wantErrno(t, c.Do(ctx, "POST", "/v1/account/device", s.Cred(), map[string]any{
		"availableCommands": map[string]string{"bad name!": "x"}}, nil), 400, 107)
	accounts.WaitPushes(w.svc)
	evil.mu.Lock()
	n := len(evil.got)
	evil.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests reached a refused host", n)
	}
}

// TestDevicesNotifyValidation: devices/notify takes only payloads FxA's
// schema allows, and "excluded" only with "all".
func TestDevicesNotifyValidation(t *testing.T) {
	w, _ := pushWorld(t, "sqlite", func(c *accounts.Config) { c.Limits.Commands = 3 })
	ctx, c := w.ctx, w.client
	s, err := c.SignUp(ctx, "notify@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	cc := func(data any) map[string]any {
		return map[string]any{"version": 1, "command": "sync:collection_changed", "data": data}
	}
	for _, p := range []any{
		map[string]any{"version": 1, "command": "sync:collection_changed"},
		cc(map[string]any{"collections": []string{}}),
		cc(map[string]any{"collections": []string{"clients", "clients"}}),
		cc(map[string]any{"collections": []string{"nope"}}),
		cc(map[string]any{"collections": []string{"clients"}, "reason": "why"}),
		cc(map[string]any{"collections": []string{"clients"}, "extra": 1}),
		map[string]any{"version": 1.5, "command": "fxaccounts:profile_updated"},
		map[string]any{"command": "fxaccounts:profile_updated"},
		map[string]any{"version": 1, "command": "fxaccounts:profile_updated", "data": map[string]any{}},
		map[string]any{"version": 1, "command": "fxaccounts:profile_updated", "extra": 1},
		map[string]any{"version": 1, "command": "fxaccounts:device_connected", "data": map[string]any{}},
		map[string]any{"version": 1, "command": "fxaccounts:account_destroyed", "data": map[string]any{"uid": s.UID}},
		map[string]any{"version": 1, "command": "fxaccounts:command_received", "data": map[string]any{}},
		"x",
	} {
		wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), map[string]any{"to": "all", "payload": p}, nil), 400, 107)
	}
	ok := cc(map[string]any{"collections": []string{"clients", "tabs"}})
	for _, body := range []map[string]any{
		{"to": "some", "payload": ok},
		{"to": []string{"zz"}, "payload": ok},
		{"to": []string{strings.Repeat("a", 32)}, "excluded": []string{strings.Repeat("b", 32)}, "payload": ok},
		{"to": "all", "payload": ok, "TTL": -1},
		{"to": "all", "payload": ok, "extra": true},
	} {
		wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), body, nil), 400, 107)
	}
	wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), map[string]any{"to": "all"}, nil), 400, 108)
	for _, body := range []map[string]any{
		{"to": "all", "payload": ok},
		{"to": []string{strings.Repeat("a", 32)}, "payload": map[string]any{"version": 1, "command": "fxaccounts:password_changed"}, "TTL": 60},
		{"to": "all", "payload": map[string]any{}, "_endpointAction": "accountVerify"},
	} {
		if err := c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), body, nil); err != nil {
			t.Fatalf("%v: %v", body, err)
		}
	}
	// Limits.Commands per account and window.
	e := wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), map[string]any{"to": "all", "payload": ok}, nil), 429, 114)
	if e.Body["retryAfter"] == nil {
		t.Fatalf("429 without retryAfter: %v", e.Body)
	}
}

// TestAttachedClientDestroy: FxA's attached_client/destroy ends a device
// (with its session), a session or a refresh token of the caller's
// account, and refuses ids of other accounts or of nothing.
func TestAttachedClientDestroy(t *testing.T) {
	w, ps := pushWorld(t, "sqlite")
	ctx, c := w.ctx, w.client
	for _, e := range []string{"one@example.org", "two@example.org"} {
		if _, err := c.SignUp(ctx, e, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	a := register(t, w, ps, "one@example.org", "a", nil)
	b := register(t, w, ps, "one@example.org", "b", nil)
	stranger := register(t, w, ps, "two@example.org", "x", nil)
	tr, err := c.TokenWithSession(ctx, a.s, testClient.ID, "profile", true)
	if err != nil {
		t.Fatal(err)
	}
	destroy := func(body map[string]any) error {
		return c.Do(ctx, "POST", "/v1/account/attached_client/destroy", a.s.Cred(), body, nil)
	}
	wantErrno(t, destroy(map[string]any{"deviceId": stranger.id}), 400, 123)
	wantErrno(t, destroy(map[string]any{"sessionTokenId": strings.Repeat("a", 64)}), 401, 110)
	wantErrno(t, destroy(map[string]any{"refreshTokenId": strings.Repeat("a", 64)}), 400, 182)
	wantErrno(t, destroy(map[string]any{"deviceId": "zz"}), 400, 107)
	wantErrno(t, destroy(map[string]any{}), 400, 108)
	if err := destroy(map[string]any{"deviceId": b.id, "clientId": nil}); err != nil {
		t.Fatal(err)
	}
	b.expect(t, ps, 0, "fxaccounts:device_disconnected", map[string]any{"id": b.id}, 5*3600)
	wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", b.s.Cred(), nil, nil), 401, 110)
	refresh := sha256Hex(tr.RefreshToken)
	if err := destroy(map[string]any{"refreshTokenId": refresh}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, testClient.ID, tr.RefreshToken, "profile"); err == nil {
		t.Fatal("refresh token still works")
	}
	if _, err := w.store.Token(ctx, stranger.id); err != nil {
		t.Fatalf("the other account's device: %v", err)
	}
}

// TestDeviceAdoptedByPushCallback: a new session registering the push
// endpoint of a known device is that browser again (Firefox after a
// password change): it keeps the device's id and nobody is told of a new
// device.
func TestDeviceAdoptedByPushCallback(t *testing.T) {
	w, ps := pushWorld(t, "sqlite")
	ctx, c := w.ctx, w.client
	if _, err := c.SignUp(ctx, "again@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	a := register(t, w, ps, "again@example.org", "a", nil)
	b := register(t, w, ps, "again@example.org", "b", nil)
	ps.wait(a.path, 0)
	s2, err := c.SignIn(ctx, "again@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	var resp map[string]any
	if err := c.Do(ctx, "POST", "/v1/account/device", s2.Cred(), map[string]any{"name": "b again", "type": "desktop",
		"pushCallback": ps.srv.URL + b.path, "pushPublicKey": b64u(b.priv.PublicKey().Bytes()), "pushAuthKey": b64u(b.auth)}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp["id"] != b.id {
		t.Fatalf("new id %v for a known push endpoint (was %s)", resp["id"], b.id)
	}
	accounts.WaitPushes(w.svc)
	if n := ps.count(a.path); n != 1 {
		t.Fatalf("a got %d pushes, want 1 (only b's first connection)", n)
	}
	if l := deviceList(t, w, s2); len(l) != 2 || l[b.id]["name"] != "b again" || l[b.id]["isCurrentDevice"] != true {
		t.Fatalf("devices: %v", l)
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
