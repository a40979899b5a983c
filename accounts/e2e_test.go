package accounts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/hawk"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/internal/dbtest"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/routes"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tokenserver"
)

// testClient is a confidential-free public client for CLI-style tests.
var testClient = accounts.Client{ID: "0123456789abcdef", Name: "weave test CLI", Public: true}

const secret = "0123456789abcdef0123456789abcdef"

// world is a complete weave on 127.0.0.1: accounts, token server and a
// storage node, each on its own SQLite database in a temporary directory.
type world struct {
	t      *testing.T
	srv    *httptest.Server
	base   string
	svc    *accounts.Service
	store  *sqlstore.AccountStore
	client *fxaclient.Client
	ctx    context.Context
}

func newWorld(t *testing.T, mod ...func(*accounts.Config)) *world {
	t.Helper()
	return newWorldOn(t, "sqlite", mod...)
}

// accountBackends are the databases the accounts store runs on (it lives
// in the token database).
var accountBackends = []string{"sqlite", "mysql", "postgres"}

// forEachBackend runs test on a world whose accounts store is on each
// backend.
func forEachBackend(t *testing.T, test func(t *testing.T, backend string)) {
	for _, b := range accountBackends {
		t.Run(b, func(t *testing.T) { test(t, b) })
	}
}

// newWorldOn is newWorld with the accounts store on backend.
func newWorldOn(t *testing.T, backend string, mod ...func(*accounts.Config)) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	srv := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1
	base := "http://" + srv.Listener.Addr().String()

	adb, err := sqlstore.OpenSet(ctx, dbtest.Fresh(t, backend), sqlstore.PoolOptions{}, sqlstore.SetAccounts, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adb.Close() })
	store := sqlstore.NewAccountStore(adb)
	cfg := accounts.Config{
		Store: store, PublicURL: base,
		Clients: append([]accounts.Client{testClient}, accounts.DefaultClients...),
		Scrypt:  onepw.ScryptParams{N: 1 << 10, R: 8, P: 1}, // fast for tests
	}
	for _, m := range mod {
		m(&cfg)
	}
	svc, err := accounts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	tdb, err := sqlstore.OpenTokenDB(ctx, "sqlite://"+filepath.Join(dir, "tokens.db"), sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tdb.Close() })
	// The token server fetches the accounts service's JWKS over HTTP, as a
	// separate deployment would.
	ver, err := fxa.NewVerifier(fxa.Options{ServerURL: base})
	if err != nil {
		t.Fatal(err)
	}
	// As `weave serve --accounts` wires it: revoked access tokens are
	// refused at once.
	ts := tokenserver.New(tokenserver.Config{DB: tdb, Verifier: svc.RevocationCheck(ver), Secrets: []string{secret}, DefaultNodeURL: base})
	if err := ts.Init(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.OpenStore(ctx, "sqlite://"+filepath.Join(dir, "storage.db"), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	api, err := weavehttp.New(weavehttp.Config{Store: st, Limits: weave.DefaultLimits(), PublicURL: base, Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	node := routes.NodeHandler(routes.Node{URL: base, API: api, TokenServer: ts})
	srv.Config.Handler = routes.Handler(routes.Process{PublicURL: base, Nodes: node, Accounts: svc.Handler()})
	srv.Start()
	t.Cleanup(srv.Close)
	return &world{t: t, srv: srv, base: base, svc: svc, store: store, client: fxaclient.New(base), ctx: ctx}
}

func wantErrno(t *testing.T, err error, code, errno int) *fxaclient.Error {
	t.Helper()
	var e *fxaclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("want errno %d, got %v", errno, err)
	}
	if e.Code != code || e.Errno != errno {
		t.Fatalf("got %d/errno %d (%s), want %d/errno %d", e.Code, e.Errno, e.Message, code, errno)
	}
	for _, k := range []string{"code", "errno", "error", "message"} {
		if _, ok := e.Body[k]; !ok {
			t.Errorf("error body lacks %q: %v", k, e.Body)
		}
	}
	return e
}

// syncToken trades an OAuth access token for a storage token at weave's
// token server.
func (w *world) syncToken(accessToken, keyID string) (map[string]any, int) {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.base+"/1.0/sync/1.5", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("X-KeyID", keyID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out, resp.StatusCode
}

// storage sends a Hawk-signed storage request with a token-server token.
func (w *world) storage(tok map[string]any, method, path string, body []byte, ts time.Time, nonce string) (int, []byte) {
	w.t.Helper()
	u := tok["api_endpoint"].(string) + path
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	authz, err := hawk.Sign(tok["key"].(string), tok["id"].(string), method, u, ct, body, ts, nonce)
	if err != nil {
		w.t.Fatal(err)
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Authorization", authz)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestFullCLIFlow(t *testing.T) {
	w := newWorld(t)
	ctx, c := w.ctx, w.client
	email, password := "Andre@Example.org", "correct horse battery staple"

	var conf map[string]string
	if err := c.Do(ctx, "GET", "/.well-known/fxa-client-configuration", nil, nil, &conf); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"auth_server_base_url", "oauth_server_base_url", "profile_server_base_url", "sync_tokenserver_base_url"} {
		if conf[k] != w.base {
			t.Errorf("%s = %q, want %q", k, conf[k], w.base)
		}
	}

	created, err := c.SignUp(ctx, email, password)
	if err != nil {
		t.Fatal(err)
	}
	if len(created.UID) != 32 || !created.Verified {
		t.Fatalf("sign-up: %+v", created)
	}
	_, kB0, err := c.Keys(ctx, created)
	if err != nil {
		t.Fatal(err)
	}

	s, err := c.SignIn(ctx, email, password)
	if err != nil {
		t.Fatal(err)
	}
	kA, kB, err := c.Keys(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kB, kB0) || len(kA) != 32 {
		t.Fatal("kB differs between sign-up and sign-in")
	}
	// keyFetchToken is single use.
	s2, _ := c.SignIn(ctx, email, password)
	kft := fxaclient.Cred(s2.KeyFetchToken, "keyFetchToken")
	if err := c.Do(ctx, "GET", "/v1/account/keys", &kft, nil, nil); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, c.Do(ctx, "GET", "/v1/account/keys", &kft, nil, nil), 401, 110)

	var st map[string]any
	if err := c.Do(ctx, "GET", "/v1/recovery_email/status", s.Cred(), nil, &st); err != nil || st["verified"] != true || st["email"] != email {
		t.Fatalf("recovery_email/status: %v %v", st, err)
	}
	if err := c.Do(ctx, "GET", "/v1/session/status", s.Cred(), nil, &st); err != nil || st["uid"] != s.UID {
		t.Fatalf("session/status: %v %v", st, err)
	}

	skd, err := c.ScopedKeyData(ctx, s, testClient.ID, "profile "+fxa.OldSyncScope)
	if err != nil {
		t.Fatal(err)
	}
	sk, ok := skd[fxa.OldSyncScope]
	if !ok || sk.KeyRotationTimestamp <= 0 || len(skd) != 1 {
		t.Fatalf("scoped-key-data: %+v", skd)
	}
	keys := fxaclient.DeriveSyncKeys(kB, sk.KeyRotationTimestamp)
	if len(keys.KSync) != 64 || !strings.HasPrefix(keys.KeyID, func() string { b, _ := json.Marshal(sk.KeyRotationTimestamp); return string(b) }()+"-") {
		t.Fatalf("sync keys: %+v", keys)
	}

	tr, err := c.TokenWithSession(ctx, s, testClient.ID, "profile "+fxa.OldSyncScope, true)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TokenType != "bearer" || tr.RefreshToken == "" || tr.Scope != "https://identity.mozilla.com/apps/oldsync profile" {
		t.Fatalf("token response: %+v", tr)
	}

	// The access token is exactly what weave's token server accepts.
	tok, code := w.syncToken(tr.AccessToken, keys.KeyID)
	if code != 200 {
		t.Fatalf("token server: %d %v", code, tok)
	}
	now := time.Now()
	bso := []byte(`{"id":"global","payload":"{\"syncID\":\"abc\",\"storageVersion\":5}"}`)
	if code, b := w.storage(tok, "PUT", "/storage/meta/global", bso, now, ""); code != 200 {
		t.Fatalf("PUT: %d %s", code, b)
	}
	code, b := w.storage(tok, "GET", "/storage/meta/global", nil, now, "")
	if code != 200 || !strings.Contains(string(b), `storageVersion`) {
		t.Fatalf("GET: %d %s", code, b)
	}
	// Replayed Hawk request and expired Hawk timestamp at the storage node.
	if code, _ := w.storage(tok, "GET", "/storage/meta/global", nil, now, "fixednonce"); code != 200 {
		t.Fatalf("first: %d", code)
	}
	if code, _ := w.storage(tok, "GET", "/storage/meta/global", nil, now, "fixednonce"); code != 401 {
		t.Fatalf("replayed storage request: %d", code)
	}
	if code, _ := w.storage(tok, "GET", "/storage/meta/global", nil, now.Add(-10*time.Minute), ""); code != 401 {
		t.Fatalf("stale storage request: %d", code)
	}

	// Refresh token, profile, verify, destroy.
	r2, err := c.Refresh(ctx, testClient.ID, tr.RefreshToken, fxa.OldSyncScope)
	if err != nil || r2.Scope != fxa.OldSyncScope {
		t.Fatalf("refresh: %+v %v", r2, err)
	}
	if _, code := w.syncToken(r2.AccessToken, keys.KeyID); code != 200 {
		t.Fatalf("token server with refreshed token: %d", code)
	}
	var prof map[string]any
	if err := c.DoRaw(ctx, "GET", "/v1/profile", nil, "", nil, http.Header{"Authorization": {"Bearer " + tr.AccessToken}}, &prof); err != nil || prof["email"] != email || prof["uid"] != s.UID {
		t.Fatalf("profile: %v %v", prof, err)
	}
	err = c.DoRaw(ctx, "GET", "/v1/profile", nil, "", nil, http.Header{"Authorization": {"Bearer " + r2.AccessToken}}, nil)
	wantErrno(t, err, 403, 163) // oldsync-only token has no profile scope
	var v map[string]any
	if err := c.Do(ctx, "POST", "/v1/verify", nil, map[string]string{"token": tr.AccessToken}, &v); err != nil || v["user"] != s.UID {
		t.Fatalf("verify: %v %v", v, err)
	}
	if err := c.Do(ctx, "POST", "/v1/destroy", nil, map[string]string{"token": tr.AccessToken}, nil); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, c.Do(ctx, "POST", "/v1/verify", nil, map[string]string{"token": tr.AccessToken}, nil), 401, 110)
	if err := c.Do(ctx, "POST", "/v1/oauth/destroy", nil, map[string]string{"refresh_token": tr.RefreshToken}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(ctx, testClient.ID, tr.RefreshToken, "")
	wantErrno(t, err, 400, 182)

	// Session destroy makes the session token useless.
	if err := c.DestroySession(ctx, s); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", s.Cred(), nil, nil), 401, 110)
}

// TestServerKeyWrapping checks that the server's bundle decrypts to
// kB = wrapKb XOR unwrapBKey with the account's stored wrapWrapKb, i.e.
// that the server-side wrapping follows onepw.
func TestServerKeyWrapping(t *testing.T) {
	w := newWorld(t)
	s, err := w.client.SignUp(w.ctx, "wrap@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	kA, kB, err := w.client.Keys(w.ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.store.AccountByUID(w.ctx, s.UID)
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := onepw.ServerStretch(onepw.Stretch("wrap@example.org", "pw").AuthPW, a.AuthSalt, onepw.ScryptParams{N: a.ScryptN, R: 8, P: 1})
	wrapKb := onepw.XOR(a.WrapWrapKb, sk.WrapWrapKey)
	if !bytes.Equal(kA, a.KA) || !bytes.Equal(kB, onepw.XOR(wrapKb, s.UnwrapBKey)) || !bytes.Equal(sk.VerifyHash, a.VerifyHash) {
		t.Fatal("stored keys do not match what the client unwrapped")
	}
	// Nothing the server stores equals authPW, kB or the password stretch.
	authPW := onepw.Stretch("wrap@example.org", "pw").AuthPW
	for _, v := range [][]byte{a.VerifyHash, a.WrapWrapKb, a.AuthSalt} {
		if bytes.Equal(v, authPW) || bytes.Equal(v, kB) {
			t.Fatal("server stores a client secret")
		}
	}
}
