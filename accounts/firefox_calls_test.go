package accounts_test

import (
	"testing"
)

// TestFirefoxAfterSignInCalls covers the calls desktop Firefox makes
// right after signing in, before it registered a device (and the pairing
// configuration weave answers without a pairing server), so Firefox logs
// no errors.
func TestFirefoxAfterSignInCalls(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	s, err := c.SignUp(ctx, "calls@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	var cmds map[string]any
	if err := c.Do(ctx, "GET", "/v1/account/device/commands?index=0&limit=50", s.Cred(), nil, &cmds); err != nil ||
		cmds["last"] != true || cmds["index"] != float64(0) || len(cmds["messages"].([]any)) != 0 {
		t.Fatalf("device/commands: %v %v", cmds, err)
	}
	wantErrno(t, c.Do(ctx, "GET", "/v1/account/device/commands?index=-1", s.Cred(), nil, nil), 400, 107)
	wantErrno(t, c.Do(ctx, "GET", "/v1/account/device/commands", nil, nil, nil), 401, 110)
	notify := map[string]any{"to": "all", "excluded": []string{}, "payload": map[string]any{"version": 1, "command": "sync:collection_changed",
		"data": map[string]any{"collections": []string{"clients"}, "reason": "firstsync"}}, "TTL": 0}
	if err := c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), notify, nil); err != nil {
		t.Fatal(err)
	}
	// Without data the payload is not one FxA's schema allows.
	delete(notify["payload"].(map[string]any), "data")
	wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), notify, nil), 400, 107)
	wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/notify", s.Cred(), map[string]any{"to": "all"}, nil), 400, 108)
	wantErrno(t, c.Do(ctx, "POST", "/v1/account/devices/notify", nil, notify, nil), 401, 110)

	// Firefox reads pairing_server_base_uri (…_uri): weave names no
	// pairing server Firefox could half-use.
	var conf map[string]any
	if err := c.Do(ctx, "GET", "/.well-known/fxa-client-configuration", nil, nil, &conf); err != nil {
		t.Fatal(err)
	}
	if conf["pairing_server_base_uri"] != "wss://pairing.invalid" || conf["pairing_server_base_url"] != nil {
		t.Errorf("pairing: %v", conf)
	}
}
