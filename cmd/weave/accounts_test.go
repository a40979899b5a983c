package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/internal/testkit"
)

const firefoxDesktopClient = "5882386c6d801776"

// syncWithAccount does what Firefox does after signing in to weave's own
// accounts: keys, scoped keys, an OAuth token, the token server, storage.
func syncWithAccount(t *testing.T, srv *server, c *fxaclient.Client, s *fxaclient.Session) *syncClient {
	t.Helper()
	body, _ := accountSyncToken(t, context.Background(), c, s, http.DefaultClient, srv.base, "with a weave account")
	sc := &syncClient{t: t, srv: srv}
	if err := json.Unmarshal(body, &sc.token); err != nil {
		t.Fatal(err)
	}
	return sc
}

// accountSyncToken fetches the session's kB and the oldsync scoped key's
// rotation time, derives the Sync keys, gets an OAuth token and trades it
// with the key id at base's token server; it returns the token server's
// answer and the keys.
func accountSyncToken(t *testing.T, ctx context.Context, c *fxaclient.Client, s *fxaclient.Session, hc *http.Client, base, what string) ([]byte, fxaclient.SyncKeys) {
	t.Helper()
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
	return syncToken(t, hc, base, tr.AccessToken, keys.KeyID, what), keys
}

func TestServeWithAccounts(t *testing.T) {
	srv := startServer(t, "", "--accounts", "--accounts-signup", "open")
	if out := srv.stdout.String(); !strings.Contains(out, "identity.fxaccounts.autoconfig.uri = "+srv.base) ||
		!strings.Contains(out, "identity.fxaccounts.allowHttp = true") || strings.Contains(out, "identity.sync.tokenserver.uri") {
		t.Errorf("startup output lacks the autoconfig pref:\n%s", srv.stdout)
	}
	var conf map[string]any
	code, body := get(t, srv.base+"/.well-known/fxa-client-configuration", "")
	if code != 200 || json.Unmarshal([]byte(body), &conf) != nil || conf["sync_tokenserver_base_url"] != srv.base {
		t.Fatalf("autoconfig: %d %s", code, body)
	}
	// The root is the sign-in page Firefox opens (identity.fxaccounts.remote.root).
	if code, body := get(t, srv.base+"/?context=oauth_webchannel_v1&service=sync", ""); code != 200 || !strings.Contains(body, `data-signup="open"`) {
		t.Errorf("sign-in page at /: %d %.200s", code, body)
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

// TestServeAccountsCaptchaAndPages runs `weave serve --accounts
// --accounts-signup captcha` behind a path prefix, with the override from
// its environment variable: the sign-in page is at the public URL itself
// (what Firefox opens), sign-up needs a captcha, and the override skips it.
func TestServeAccountsCaptchaAndPages(t *testing.T) {
	const secret = "automation-override-secret"
	t.Setenv("WEAVE_ACCOUNTS_CAPTCHA_OVERRIDE", secret)
	addr := testkit.FreeAddr(t)
	pub := "http://" + addr + "/sync"
	serveAt(t, addr, "--public-url", pub, "--accounts", "--accounts-signup", "captcha")
	for _, p := range []string{"/sync", "/sync/", "/sync/signin?service=sync", "/sync/_accounts/app.js"} {
		code, body := get(t, "http://"+addr+p, "")
		if code != 200 || (!strings.HasSuffix(p, ".js") && !strings.Contains(body, `data-signup="captcha"`)) {
			t.Errorf("%s: %d %.200s", p, code, body)
		}
	}
	if code, body := get(t, "http://"+addr+"/sync/", ""); code != 200 || !strings.Contains(body, `data-prefix="/sync"`) {
		t.Errorf("page does not know its prefix: %d", code)
	}
	ctx := context.Background()
	c := fxaclient.New(pub)
	if _, err := c.SignUp(ctx, "robot@example.org", "robot password"); err == nil || !strings.Contains(err.Error(), "errno 125") {
		t.Fatalf("sign-up without captcha: %v", err)
	}
	var cp map[string]any
	if err := c.Do(ctx, "POST", "/v1/captcha", nil, map[string]any{}, &cp); err != nil || !strings.HasPrefix(cp["image"].(string), "data:image/png;base64,") {
		t.Fatalf("captcha: %v", err)
	}
	authPW := hex.EncodeToString(onepw.Stretch("robot@example.org", "robot password").AuthPW)
	body := []byte(`{"email":"robot@example.org","authPW":"` + authPW + `"}`)
	if err := c.DoRaw(ctx, "POST", "/v1/account/create", nil, "application/json", body, http.Header{"X-Captcha-Override": {"wrong-wrong-wrong"}}, nil); err == nil || !strings.Contains(err.Error(), "errno 127") {
		t.Fatalf("wrong override: %v", err)
	}
	if err := c.DoRaw(ctx, "POST", "/v1/account/create", nil, "application/json", body, http.Header{"X-Captcha-Override": {secret}}, nil); err != nil {
		t.Fatalf("override: %v", err)
	}
	s, err := c.SignIn(ctx, "robot@example.org", "robot password")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Keys(ctx, s); err != nil {
		t.Fatal(err)
	}
}

// serveAt runs `weave serve` on addr (startServer picks its own address,
// which a --public-url with a path must name beforehand).
func serveAt(t *testing.T, addr string, extra ...string) {
	t.Helper()
	serveMain(t, io.Discard, append([]string{"--listen", addr, "--data-dir", t.TempDir(), "--fxa-oauth-url", "http://127.0.0.1:1",
		"--shutdown-grace", "0s", "--log-level", "warn"}, extra...)...)
}

// syncToken trades an OAuth access token and the oldsync key id for a Sync
// token at base's token server, as Firefox does, and returns the answer.
func syncToken(t *testing.T, hc *http.Client, base, accessToken, keyID, what string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/1.0/sync/1.5", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("X-KeyID", keyID)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token server %s: %d %s", what, resp.StatusCode, body)
	}
	return body
}

// TestAccountDeletionRevokesAndPurges (issue 12, finding 8): deleting a
// built-in account, by the API (account/destroy) or the operator command,
// purges its Sync records from the shard and refuses its storage token at
// once — the serving process's own node without waiting for a
// --state-refresh (set to an hour here) — and its access token at the
// token server.
func TestAccountDeletionRevokesAndPurges(t *testing.T) {
	for _, bc := range backendCases() {
		t.Run(bc.name, func(t *testing.T) {
			dbURL := bc.url(t)
			data := t.TempDir()
			args := append([]string{"--accounts", "--accounts-signup", "open", "--state-refresh", "1h", "--data-dir", data}, bc.extra(t)...)
			srv := startServer(t, dbURL, args...)
			ctx := context.Background()
			c := fxaclient.New(srv.base)
			cli := func(args ...string) string {
				t.Helper()
				args = append(args, "--data-dir", data)
				if dbURL != "" && args[0] == "user" {
					args = append(args, "--token-database-url", dbURL)
				} else if dbURL != "" {
					args = append(args, "--database-url", dbURL)
				}
				var out, errb bytes.Buffer
				if code := run(ctx, args, &out, &errb); code != 0 {
					t.Fatalf("weave %s: %d %s", strings.Join(args, " "), code, errb.String())
				}
				return out.String()
			}
			// syncing signs an account in, writes records and returns its
			// storage client and an access token.
			syncing := func(email string) (*syncClient, string, string) {
				s, err := c.SignUp(ctx, email, "correct horse battery staple")
				if err != nil {
					t.Fatal(err)
				}
				body, keys := accountSyncToken(t, ctx, c, s, http.DefaultClient, srv.base, "before deletion")
				sc := &syncClient{t: t, srv: srv}
				if err := json.Unmarshal(body, &sc.token); err != nil {
					t.Fatal(err)
				}
				sc.must(200, "PUT", "/storage/meta/global", map[string]any{"payload": "hello"})
				sc.must(200, "POST", "/storage/bookmarks", []map[string]any{{"id": "a", "payload": "x"}, {"id": "b", "payload": "y"}})
				tr, err := c.TokenWithSession(ctx, s, firefoxDesktopClient, fxa.OldSyncScope, false)
				if err != nil {
					t.Fatal(err)
				}
				return sc, tr.AccessToken, keys.KeyID
			}
			gone := func(sc *syncClient) {
				t.Helper()
				out := cli("user", "show", strconv.FormatInt(sc.token.UID, 10))
				if !strings.Contains(out, "storage") || !strings.Contains(out, "empty") || !strings.Contains(out, "retired") {
					t.Errorf("records or token record left after deletion:\n%s", out)
				}
			}
			refused := func(access, kid string) {
				t.Helper()
				req, _ := http.NewRequest("GET", srv.base+"/1.0/sync/1.5", nil)
				req.Header.Set("Authorization", "Bearer "+access)
				req.Header.Set("X-KeyID", kid)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 401 {
					t.Errorf("access token of a deleted account at the token server: %d", resp.StatusCode)
				}
			}

			// By the API: everything at once.
			sc, access, kid := syncing("gone-api@example.org")
			if err := c.DestroyAccount(ctx, "gone-api@example.org", "correct horse battery staple"); err != nil {
				t.Fatal(err)
			}
			sc.must(401, "GET", "/storage/meta/global", nil)
			sc.must(401, "GET", "/info/collections", nil)
			sc.must(401, "PUT", "/storage/meta/global", map[string]any{"payload": "after"})
			gone(sc)
			refused(access, kid)

			// By the operator command, from another process: the data goes
			// and writes are refused at once (503 from the store's move
			// mark); the node answers 401 from the serving process's next
			// --state-refresh.
			sc, access, kid = syncing("gone-cli@example.org")
			if out := cli("account", "delete", "gone-cli@example.org"); !strings.Contains(out, "deleted account") {
				t.Fatalf("account delete: %s", out)
			}
			if r := sc.do("PUT", "/storage/meta/global", map[string]any{"payload": "after"}); r.status != 401 && r.status != 503 {
				t.Errorf("write with the old token after account delete: %d %s", r.status, r.body)
			}
			gone(sc)
			refused(access, kid)
		})
	}
}

// TestPrintable (issue 12, finding 11): what `weave account list` and
// `sessions` print of user-chosen text cannot drive the terminal.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain@example.org":        "plain@example.org",
		"zoë@exämple.org":          "zoë@exämple.org",
		"esc\x1b[2J@example.org":   `esc\u001b[2J@example.org`,
		"bell\a@x":                 `bell\u0007@x`,
		"rtl\u202eevil@x":          `rtl\u202eevil@x`,
		"zw\u200bj\u2066@x\u0085y": `zw\u200bj\u2066@x\u0085y`,
		"bad\xffutf8":              `bad\ufffdutf8`,
	} {
		if got := accounts.Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
	var out, errb bytes.Buffer
	data := t.TempDir()
	if code := run(context.Background(), []string{"account", "create", "esc\x1b]0;owned\a@example.org", "--data-dir", data, "--password", "hunter2hunter2"}, &out, &errb); code == 0 {
		t.Fatalf("account create took an email with control characters: %s", out.String())
	}
}
