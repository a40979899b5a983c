package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/fxa"
)

const firefoxDesktopClient = "5882386c6d801776"

// syncWithAccount does what Firefox does after signing in to weave's own
// accounts: keys, scoped keys, an OAuth token, the token server, storage.
func syncWithAccount(t *testing.T, srv *server, c *fxaclient.Client, s *fxaclient.Session) *syncClient {
	t.Helper()
	ctx := context.Background()
	_, kB, err := c.Keys(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	skd, err := c.ScopedKeyData(ctx, s, firefoxDesktopClient, fxa.OldSyncScope)
	if err != nil {
		t.Fatal(err)
	}
	keys := fxaclient.DeriveSyncKeys(kB, skd[fxa.OldSyncScope].KeyRotationTimestamp)
	tr, err := c.TokenWithSession(ctx, s, firefoxDesktopClient, fxa.OldSyncScope, false)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.base+"/1.0/sync/1.5", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	req.Header.Set("X-KeyID", keys.KeyID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token server with a weave account: %d %s", resp.StatusCode, body)
	}
	sc := &syncClient{t: t, srv: srv}
	if err := json.Unmarshal(body, &sc.token); err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestServeWithAccounts(t *testing.T) {
	srv := startServer(t, "", "--accounts", "--accounts-signup", "open")
	if !strings.Contains(srv.stdout.String(), "identity.fxaccounts.autoconfig.uri = "+srv.base) {
		t.Errorf("startup output lacks the autoconfig pref:\n%s", srv.stdout)
	}
	var conf map[string]any
	code, body := get(t, srv.base+"/.well-known/fxa-client-configuration", "")
	if code != 200 || json.Unmarshal([]byte(body), &conf) != nil || conf["sync_tokenserver_base_url"] != srv.base {
		t.Fatalf("autoconfig: %d %s", code, body)
	}
	ctx := context.Background()
	c := fxaclient.New(srv.base)
	if _, err := c.SignUp(ctx, "alice@example.org", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	s, err := c.SignIn(ctx, "alice@example.org", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	sc := syncWithAccount(t, srv, c, s)
	sc.must(200, "PUT", "/storage/meta/global", map[string]any{"payload": "hello"})
	var got struct{ Payload string }
	sc.must(200, "GET", "/storage/meta/global", nil).json(t, &got)
	if got.Payload != "hello" {
		t.Fatalf("read back %q", got.Payload)
	}
	// Mozilla-account tokens of the --fxa-jwks-file issuer still work.
	srv.client(t, "0123456789abcdef0123456789abcdef").must(200, "GET", "/info/collections", nil)
	// A wrong password is FxA's errno 103.
	if _, err := c.SignIn(ctx, "alice@example.org", "wrong"); err == nil || !strings.Contains(err.Error(), "103") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestAccountCommandAndClosedSignup(t *testing.T) {
	dir := t.TempDir()
	data := dir + "/data"
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"account", "create", "bob@example.org", "--data-dir", data, "--password", "hunter2hunter2"}, &out, &errb); code != 0 {
		t.Fatalf("account create: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"account", "list", "--data-dir", data}, &out, &errb); code != 0 || !strings.Contains(out.String(), "bob@example.org") {
		t.Fatalf("account list: %d %q %s", code, out.String(), errb.String())
	}

	srv := startServer(t, "", "--accounts", "--data-dir", data)
	ctx := context.Background()
	c := fxaclient.New(srv.base)
	if _, err := c.SignUp(ctx, "mallory@example.org", "whatever-whatever"); err == nil {
		t.Fatal("sign-up worked with --accounts-signup closed (the default)")
	}
	s, err := c.SignIn(ctx, "bob@example.org", "hunter2hunter2")
	if err != nil {
		t.Fatalf("operator-created account cannot sign in: %v", err)
	}
	syncWithAccount(t, srv, c, s).must(200, "GET", "/info/collections", nil)
}
