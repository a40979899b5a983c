package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/coder/websocket"

	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/push/ece"
)

// pushDevice is a Firefox profile for the accounts service: a session and
// a device whose push callback is a channel on weave's own push service.
type pushDevice struct {
	ws   *pushBrowser
	chid string
	s    *fxaclient.Session
	id   string
	priv *ecdh.PrivateKey
	auth []byte
}

// notice reads the next push to d, acks it and decrypts it with d's key.
func (d *pushDevice) notice(t *testing.T) map[string]any {
	t.Helper()
	m := d.ws.roundTrip("")
	if m["messageType"] != "notification" || m["channelID"] != d.chid {
		t.Fatalf("got %v", m)
	}
	headers, _ := m["headers"].(map[string]any)
	body, err := base64.RawURLEncoding.DecodeString(m["data"].(string))
	if err != nil || headers["encoding"] != "aes128gcm" {
		t.Fatalf("notification %v: %v", m, err)
	}
	ack, _ := json.Marshal(map[string]any{"messageType": "ack", "updates": []any{map[string]any{"channelID": d.chid, "version": m["version"], "code": 100}}})
	d.ws.roundTripNoReply(ack)
	plain, err := ece.Decrypt(d.priv, d.auth, body)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(plain, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *pushBrowser) roundTripNoReply(frame []byte) {
	b.t.Helper()
	if err := b.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
		b.t.Fatal(err)
	}
}

// TestServeAccountsPushThroughWeavePush: with `weave serve --accounts
// --push` and no other setting, devices register push callbacks on weave's
// own push service (the default --accounts-push-hosts), and Send Tab and
// device notices reach them over the WebSocket, decryptable with each
// device's key.
func TestServeAccountsPushThroughWeavePush(t *testing.T) {
	addr := testkit.FreeAddr(t)
	servePushAt(t, addr, "--public-url", "http://"+addr, "--push", "--accounts", "--accounts-signup", "open")
	base := "http://" + addr
	ctx := context.Background()
	c := fxaclient.New(base)
	if _, err := c.SignUp(ctx, "tab@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	const openURI = "https://identity.mozilla.com/cmd/open-uri"
	newDevice := func(name, chid string) *pushDevice {
		d := &pushDevice{ws: dialPush(t, "ws://"+addr+"/"), chid: chid, auth: make([]byte, 16)}
		endpoint := d.ws.subscribe(chid)
		var err error
		if d.s, err = c.SignIn(ctx, "tab@example.org", "pw"); err != nil {
			t.Fatal(err)
		}
		d.priv, _ = ecdh.P256().GenerateKey(rand.Reader)
		rand.Read(d.auth)
		var resp map[string]any
		if err := c.Do(ctx, "POST", "/v1/account/device", d.s.Cred(), map[string]any{
			"name": name, "type": "desktop", "availableCommands": map[string]string{openURI: "keys"},
			"pushCallback": endpoint, "pushPublicKey": base64.RawURLEncoding.EncodeToString(d.priv.PublicKey().Bytes()),
			"pushAuthKey": base64.RawURLEncoding.EncodeToString(d.auth)}, &resp); err != nil {
			t.Fatalf("register %s with callback %s: %v", name, endpoint, err)
		}
		d.id = resp["id"].(string)
		return d
	}
	a := newDevice("a", "0a0a0a0a-0000-4000-8000-000000000001")
	b := newDevice("b", "0b0b0b0b-0000-4000-8000-000000000002")
	if p := a.notice(t); p["command"] != "fxaccounts:device_connected" {
		t.Fatalf("a: %v", p)
	}
	var out map[string]any
	if err := c.Do(ctx, "POST", "/v1/account/devices/invoke_command", a.s.Cred(),
		map[string]any{"command": openURI, "target": b.id, "payload": map[string]any{"encrypted": "x"}}, &out); err != nil ||
		out["enqueued"] != true || out["notified"] != true {
		t.Fatalf("invoke_command: %v %v", out, err)
	}
	p := b.notice(t)
	data, _ := p["data"].(map[string]any)
	if p["command"] != "fxaccounts:command_received" || data["sender"] != a.id || data["command"] != openURI {
		t.Fatalf("b: %v", p)
	}
	if err := c.Do(ctx, "POST", "/v1/account/device/destroy", a.s.Cred(), map[string]string{"id": b.id}, nil); err != nil {
		t.Fatal(err)
	}
	if p := b.notice(t); p["command"] != "fxaccounts:device_disconnected" || p["data"].(map[string]any)["id"] != b.id {
		t.Fatalf("b: %v", p)
	}
}
