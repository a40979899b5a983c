package tokenserver_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/fxa/fxatest"
	"github.com/weave-sync/weave/fxa/issuer"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tokenlib"
	"github.com/weave-sync/weave/tokenserver"
)

const (
	oldSecret     = "old-master-secret-0123456789"
	newSecret     = "new-master-secret-9876543210"
	metricsSecret = "test-metrics-secret"
	defaultNode   = "https://node1.example.com"

	csA = "0123456789abcdef0123456789abcdef"
	csB = "fedcba9876543210fedcba9876543210"
	csC = "00112233445566778899aabbccddeeff"
)

// clock is the token server's clock: real time (FxA tokens are checked
// against it too) that a test can move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

type env struct {
	t     *testing.T
	db    *sqlstore.TokenDB
	iss   *issuer.Issuer
	fxa   *fxatest.Server
	srv   *tokenserver.Server
	clock *clock
	cfg   tokenserver.Config
}

// testIssuer is shared: generating an RSA key costs tens of milliseconds.
var (
	issuerOnce   sync.Once
	sharedIssuer *issuer.Issuer
)

func testIssuer() *issuer.Issuer {
	issuerOnce.Do(func() { sharedIssuer = issuer.New() })
	return sharedIssuer
}

// newEnv starts a token server on a fresh SQLite token DB with the fake
// FxA on 127.0.0.1; edit adjusts the configuration before New.
func newEnv(t *testing.T, edit func(*tokenserver.Config)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, iss: testIssuer(), clock: &clock{}}
	db, err := sqlstore.OpenTokenDB(ctx, "sqlite://"+filepath.Join(t.TempDir(), "tokens.db"), sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.fxa = fxatest.Serve(e.iss)
	t.Cleanup(e.fxa.Close)
	v, err := fxa.NewVerifier(fxa.Options{ServerURL: e.fxa.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = tokenserver.Config{
		DB:                  db,
		Verifier:            v,
		Secrets:             []string{oldSecret, newSecret},
		MetricsSecret:       metricsSecret,
		NodeType:            "sqlite",
		DefaultNodeURL:      defaultNode,
		DefaultNodeCapacity: 1000,
		Now:                 e.clock.Now,
	}
	if edit != nil {
		edit(&e.cfg)
	}
	e.srv = tokenserver.New(e.cfg)
	if err := e.srv.Init(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// request is one token request; zero fields are left out.
type request struct {
	method      string
	path        string // default /1.0/sync/1.5
	auth        string // whole Authorization value
	keyID       string
	clientState string // X-Client-State
	accept      string
}

func (e *env) do(r request) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodGet
	}
	if r.path == "" {
		r.path = "/1.0/sync/1.5"
	}
	req := httptest.NewRequest(r.method, "http://token.example.com"+r.path, nil)
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	if r.keyID != "" {
		req.Header.Set("X-KeyID", r.keyID)
	}
	if r.clientState != "" {
		req.Header.Set("X-Client-State", r.clientState)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return w
}

// keyID builds X-KeyID from keys_changed_at and a hex client state.
func keyID(kca int64, cs string) string {
	raw, err := hex.DecodeString(cs)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%d-%s", kca, base64.RawURLEncoding.EncodeToString(raw))
}

// bearer mints an access token for uid with the given generation (0: no
// fxa-generation claim).
func (e *env) bearer(uid string, generation int64) string {
	return "Bearer " + e.iss.Mint(issuer.Token{Sub: uid, Generation: generation})
}

// get is a well-formed token request.
func (e *env) get(uid string, generation, kca int64, cs string) *httptest.ResponseRecorder {
	return e.do(request{auth: e.bearer(uid, generation), keyID: keyID(kca, cs)})
}

func okResponse(t *testing.T, w *httptest.ResponseRecorder) tokenserver.Response {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", w.Code, w.Body)
	}
	var r tokenserver.Response
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

type errResponse struct {
	Status string `json:"status"`
	Errors []struct {
		Location    string `json:"location"`
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"errors"`
}

func decodeErr(t *testing.T, w *httptest.ResponseRecorder) errResponse {
	t.Helper()
	var r errResponse
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if len(r.Errors) != 1 {
		t.Fatalf("error body %s: want exactly one error", w.Body)
	}
	return r
}

func uidHex(i int) string { return fmt.Sprintf("%032x", i+1) }

func TestTokenServerFirstRequest(t *testing.T) {
	e := newEnv(t, nil)
	const fxaUID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	before := e.clock.Now().Unix()
	w := e.do(request{auth: e.bearer(fxaUID, 1700000000500), keyID: keyID(1700000000000, csA), clientState: csA,
		accept: "application/json,text/plain;q=0.5"})
	now := e.clock.Now().Unix()
	r := okResponse(t, w)

	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if ts, _ := strconv.ParseInt(w.Header().Get("X-Timestamp"), 10, 64); ts < before || ts > now {
		t.Errorf("X-Timestamp %q, want about %d", w.Header().Get("X-Timestamp"), now)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}
	if r.UID <= 0 || r.APIEndpoint != fmt.Sprintf("%s/1.5/%d", defaultNode, r.UID) || r.Duration != 3600 ||
		r.HashAlg != "sha256" || r.NodeType == nil || *r.NodeType != "sqlite" {
		t.Fatalf("response %+v", r)
	}
	if want := tokenlib.HashedFxAUID(metricsSecret, fxaUID); r.HashedFxAUID != want {
		t.Errorf("hashed_fxa_uid %q, want %q", r.HashedFxAUID, want)
	}
	// Exactly the fields of spec §7.
	var raw map[string]json.RawMessage
	json.Unmarshal(w.Body.Bytes(), &raw)
	if len(raw) != 8 {
		t.Errorf("response has %d fields, want 8: %s", len(raw), w.Body)
	}

	// The storage side: the token parses with the configured secrets, the
	// newest one signed it, and the derived key is the response's key.
	p, key, err := tokenlib.Parse([]string{oldSecret, newSecret}, r.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if key != r.Key {
		t.Errorf("derived key %q, response key %q", key, r.Key)
	}
	if _, _, err := tokenlib.Parse([]string{oldSecret}, r.ID, time.Now()); err == nil {
		t.Error("token verifies with the old secret; the newest must sign")
	}
	if key != tokenlib.DeriveKey(newSecret, r.ID, p.Salt) {
		t.Error("key not derived from the newest secret")
	}
	hashed := tokenlib.HashedFxAUID(metricsSecret, fxaUID)
	if p.UID != r.UID || p.Node != defaultNode || p.FxAUID != fxaUID ||
		p.FxAKid != "1700000000000-ASNFZ4mrze8BI0VniavN7w" || p.HashedFxAUID != hashed ||
		p.HashedDeviceID != tokenlib.HashedDeviceID(metricsSecret, hashed, "none") ||
		p.TokenserverOrigin != "rust" || len(p.Salt) != 6 {
		t.Errorf("payload %+v", p)
	}
	if p.Expires < before+3600 || p.Expires > now+3600 {
		t.Errorf("expires %d, want now+3600 = %d", p.Expires, now+3600)
	}

	// The record.
	u, err := e.db.GetUser(context.Background(), fxaUID+"@api.accounts.firefox.com")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != r.UID || u.Generation != 1700000000500 || u.KeysChangedAt != 1700000000000 || u.ClientState != csA {
		t.Errorf("record %+v", u)
	}

	// The same request again: the same uid, a fresh token.
	r2 := okResponse(t, e.get(fxaUID, 1700000000500, 1700000000000, csA))
	if r2.UID != r.UID || r2.ID == r.ID {
		t.Errorf("second request: uid %d (want %d), same token %v", r2.UID, r.UID, r2.ID == r.ID)
	}
	// Lower-case scheme works too.
	r3 := okResponse(t, e.do(request{auth: "bearer " + e.iss.Mint(issuer.Token{Sub: fxaUID, Generation: 1700000000500}),
		keyID: keyID(1700000000000, csA)}))
	if r3.UID != r.UID {
		t.Errorf("lower-case bearer: uid %d", r3.UID)
	}
}

func TestTokenServerUpdates(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	const fxaUID = "0123456789abcdef0123456789abcdef"
	email := fxaUID + "@api.accounts.firefox.com"
	first := okResponse(t, e.get(fxaUID, 100, 50, csA))

	// Generation bump: updated in place, same uid.
	if r := okResponse(t, e.get(fxaUID, 120, 50, csA)); r.UID != first.UID {
		t.Fatalf("generation bump changed uid %d → %d", first.UID, r.UID)
	}
	if u, _ := e.db.GetUser(ctx, email); u.Generation != 120 || u.KeysChangedAt != 50 {
		t.Fatalf("after generation bump: %+v", u)
	}
	// keys_changed_at without a generation claim raises generation too.
	r := okResponse(t, e.get(fxaUID, 0, 130, csA))
	if u, _ := e.db.GetUser(ctx, email); r.UID != first.UID || u.Generation != 130 || u.KeysChangedAt != 130 {
		t.Fatalf("after keys_changed_at bump: uid %d, %+v", r.UID, u)
	}

	// Client-state change: new uid, same node; the old state is stale.
	second := okResponse(t, e.get(fxaUID, 200, 200, csB))
	if second.UID == first.UID || !strings.HasPrefix(second.APIEndpoint, defaultNode+"/1.5/") {
		t.Fatalf("client-state change: %+v (first uid %d)", second, first.UID)
	}
	p, _, err := tokenlib.Parse([]string{newSecret}, second.ID, time.Now())
	if err != nil || p.FxAKid != "0000000000200-"+base64.RawURLEncoding.EncodeToString(mustHex(csB)) {
		t.Fatalf("token after client-state change: %+v, %v", p, err)
	}
	old, err := e.db.UserByUID(ctx, first.UID)
	if err != nil || old.ReplacedAt == 0 {
		t.Fatalf("old record %+v, %v", old, err)
	}
	w := e.get(fxaUID, 300, 300, csA)
	if w.Code != 401 || decodeErr(t, w).Status != "invalid-client-state" {
		t.Fatalf("stale client state: %d %s", w.Code, w.Body)
	}
	if r := okResponse(t, e.get(fxaUID, 200, 200, csB)); r.UID != second.UID {
		t.Fatalf("after client-state change: uid %d, want %d", r.UID, second.UID)
	}

	// Retired: every later request fails with invalid-generation.
	if err := e.db.RetireUser(ctx, email); err != nil {
		t.Fatal(err)
	}
	for _, g := range []int64{0, 500, 1 << 62} {
		w := e.get(fxaUID, g, 200, csB)
		if w.Code != 401 || decodeErr(t, w).Status != "invalid-generation" {
			t.Fatalf("retired user, generation %d: %d %s", g, w.Code, w.Body)
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestTokenServerDuration(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.bearer(uidHex(1), 10)
	for _, tc := range []struct {
		q    string
		want int64
	}{{"", 3600}, {"?duration=60", 60}, {"?duration=3600", 3600}, {"?duration=3601", 3600},
		{"?duration=0", 3600}, {"?duration=-5", 3600}, {"?duration=abc", 3600}, {"?duration=1.5", 3600}} {
		w := e.do(request{path: "/1.0/sync/1.5" + tc.q, auth: tok, keyID: keyID(10, csA)})
		now := e.clock.Now().Unix()
		r := okResponse(t, w)
		p, _, err := tokenlib.Parse([]string{newSecret}, r.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r.Duration != tc.want || p.Expires < now+tc.want-1 || p.Expires > now+tc.want {
			t.Errorf("%q: duration %d expires in %d s, want %d", tc.q, r.Duration, p.Expires-now, tc.want)
		}
	}
}

// TestTokenServerErrors walks every error of spec §10 and every rule of
// §5.3. Rule cases start from an account whose current record has
// generation 200, keys_changed_at 150, client state B, and A as an old
// client state.
func TestTokenServerErrors(t *testing.T) {
	const known = "00000000000000000000000000000abc"
	type tc struct {
		name    string
		edit    func(*tokenserver.Config)
		setup   func(e *env)
		req     func(e *env) request
		code    int
		status  string
		loc     string
		errName string
		desc    string // checked when set
		check   func(t *testing.T, w *httptest.ResponseRecorder)
	}
	good := func(e *env) request {
		return request{auth: e.bearer(known, 200), keyID: keyID(150, csB)}
	}
	with := func(f func(e *env, r *request)) func(e *env) request {
		return func(e *env) request { r := good(e); f(e, &r); return r }
	}
	ruleReq := func(g, k int64, cs string) func(e *env) request {
		return func(e *env) request { return request{auth: e.bearer(known, g), keyID: keyID(k, cs)} }
	}
	retryAfter := func(want string) func(t *testing.T, w *httptest.ResponseRecorder) {
		return func(t *testing.T, w *httptest.ResponseRecorder) {
			if got := w.Header().Get("Retry-After"); got != want {
				t.Errorf("Retry-After %q, want %q", got, want)
			}
		}
	}
	cases := []tc{
		{name: "unknown application", req: with(func(e *env, r *request) { r.path = "/1.0/foo/1.5" }),
			code: 404, status: "error", loc: "url", errName: "application", desc: "Unsupported application",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				want := `{"status":"error","errors":[{"location":"url","name":"application","description":"Unsupported application"}]}`
				if w.Body.String() != want {
					t.Errorf("body %s, want %s", w.Body, want)
				}
			}},
		{name: "unknown version", req: with(func(e *env, r *request) { r.path = "/1.0/sync/1.1" }),
			code: 404, status: "error", loc: "url", errName: "1.1", desc: "Unsupported application version",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				want := `{"status":"error","errors":[{"location":"url","name":"1.1","description":"Unsupported application version"}]}`
				if w.Body.String() != want {
					t.Errorf("body %s, want %s", w.Body, want)
				}
			}},
		{name: "unknown path", req: with(func(e *env, r *request) { r.path = "/2.0/sync" }), code: 404, status: "error", loc: "url"},
		{name: "wrong method", req: with(func(e *env, r *request) { r.method = http.MethodPost }), code: 405, status: "error",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if w.Header().Get("Allow") != "GET" {
					t.Errorf("Allow %q", w.Header().Get("Allow"))
				}
			}},
		{name: "Accept without JSON", req: with(func(e *env, r *request) { r.accept = "text/html" }), code: 406, status: "error"},
		{name: "Accept JSON with q=0", req: with(func(e *env, r *request) { r.accept = "application/json;q=0, text/html" }), code: 406, status: "error"},
		{name: "no Authorization", req: with(func(e *env, r *request) { r.auth = "" }),
			code: 401, status: "error", loc: "body", desc: "Unauthorized"},
		{name: "Authorization without credential", req: with(func(e *env, r *request) { r.auth = "Bearer" }),
			code: 401, status: "error", loc: "body", desc: "Unauthorized"},
		{name: "BrowserID scheme", req: with(func(e *env, r *request) { r.auth = "BrowserID assertion" }),
			code: 401, status: "error", loc: "body", desc: "Unsupported"},
		{name: "Hawk scheme", req: with(func(e *env, r *request) { r.auth = `Hawk id="x"` }),
			code: 401, status: "error", loc: "body", desc: "Unsupported"},
		{name: "bad X-Client-State", req: with(func(e *env, r *request) { r.clientState = "not valid!" }),
			code: 400, status: "error", loc: "header", errName: "X-Client-State", desc: "Invalid client state value"},
		{name: "X-Client-State too long", req: with(func(e *env, r *request) { r.clientState = strings.Repeat("a", 33) }),
			code: 400, status: "error", loc: "header", errName: "X-Client-State"},
		{name: "missing X-KeyID", req: with(func(e *env, r *request) { r.keyID = "" }),
			code: 401, status: "invalid-key-id", loc: "header"},
		{name: "X-KeyID without dash", req: with(func(e *env, r *request) { r.keyID = "150" }),
			code: 401, status: "invalid-credentials", loc: "body"},
		{name: "X-KeyID non-integer time", req: with(func(e *env, r *request) { r.keyID = "abc-ASNFZ4mrze8BI0VniavN7w" }),
			code: 401, status: "invalid-credentials"},
		{name: "X-KeyID bad base64", req: with(func(e *env, r *request) { r.keyID = "150-!!!" }),
			code: 401, status: "invalid-credentials"},
		{name: "X-KeyID padded base64", req: with(func(e *env, r *request) { r.keyID = "150-ASNFZ4mrze8BI0VniavN7w==" }),
			code: 401, status: "invalid-credentials"},
		{name: "X-KeyID state too long", req: with(func(e *env, r *request) { r.keyID = "150-" + base64.RawURLEncoding.EncodeToString(make([]byte, 17)) }),
			code: 401, status: "invalid-credentials"},
		{name: "X-Client-State disagrees with X-KeyID", req: with(func(e *env, r *request) { r.clientState = csA }),
			code: 401, status: "invalid-client-state", loc: "body", desc: "Unauthorized",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				// syncstorage-rs's exact answer (its test_x_client_state_must_have_same_client_state_as_key_id).
				want := `{"status":"invalid-client-state","errors":[{"location":"body","name":"","description":"Unauthorized"}]}`
				if w.Body.String() != want {
					t.Errorf("body %s, want %s", w.Body, want)
				}
			}},
		{name: "token with a forged signature", req: with(func(e *env, r *request) {
			// Claims of one token under the signature of another.
			a := strings.Split(e.iss.Mint(issuer.Token{Sub: known}), ".")
			b := strings.Split(e.iss.Mint(issuer.Token{Sub: uidHex(7)}), ".")
			r.auth = "Bearer " + a[0] + "." + b[1] + "." + a[2]
		}),
			code: 401, status: "invalid-credentials", loc: "body", desc: "Unauthorized"},
		{name: "expired token", req: with(func(e *env, r *request) {
			r.auth = "Bearer " + e.iss.Mint(issuer.Token{Sub: known, IssuedAt: time.Now().Add(-2 * time.Hour), Exp: time.Now().Add(-time.Hour)})
		}), code: 401, status: "invalid-credentials"},
		{name: "token without oldsync scope", req: with(func(e *env, r *request) {
			r.auth = "Bearer " + e.iss.Mint(issuer.Token{Sub: known, Scope: "profile"})
		}), code: 401, status: "invalid-credentials"},
		{name: "opaque token rejected by FxA", req: with(func(e *env, r *request) { r.auth = "Bearer not-a-jwt" }),
			code: 401, status: "invalid-credentials"},
		{name: "FxA unreachable", setup: func(e *env) { e.fxa.Close() },
			req:  with(func(e *env, r *request) { r.auth = "Bearer opaque-token" }),
			code: 503, status: "error", loc: "body", desc: "Resource is not available", check: retryAfter("300")},
		{name: "new users disabled", edit: func(c *tokenserver.Config) { c.NewUsersDisabled = true },
			req: ruleReq(200, 150, csB), code: 401, status: "new-users-disabled"},
		{name: "no node", edit: func(c *tokenserver.Config) { c.DefaultNodeURL = "" },
			req: ruleReq(200, 150, csB), code: 503, status: "error", check: retryAfter("300")},
		{name: "database failure", setup: func(e *env) { e.db.Close() },
			req: ruleReq(200, 150, csB), code: 503, status: "error", check: retryAfter("300")},
		{name: "user's node down", setup: func(e *env) {
			e.established(known)
			n, _ := e.db.NodeByURL(context.Background(), defaultNode)
			e.db.SetNodeState(context.Background(), n.ID, weave.NodeDown, 120*time.Second, 0)
		}, req: ruleReq(200, 150, csB), code: 503, status: "error", check: retryAfter("120")},

		// §5.3, in order.
		{name: "rule 1: keys changed after generation", setup: func(e *env) { e.established(known) },
			req: ruleReq(250, 300, csB), code: 401, status: "invalid-keysChangedAt", loc: "body"},
		{name: "rule 2: empty client state", setup: func(e *env) { e.established(known) },
			req: func(e *env) request { return request{auth: e.bearer(known, 200), keyID: "150-"} }, code: 401,
			status: "invalid-client-state", loc: "header", errName: "X-Client-State",
			desc: "Unacceptable client-state value empty string"},
		{name: "rule 3: stale client state", setup: func(e *env) { e.established(known) },
			req: ruleReq(300, 300, csA), code: 401, status: "invalid-client-state", loc: "header", errName: "X-Client-State",
			desc: "Unacceptable client-state value stale value"},
		{name: "rule 4: new client state, same generation", setup: func(e *env) { e.established(known) },
			req: ruleReq(200, 150, csC), code: 401, status: "invalid-client-state",
			desc: "Unacceptable client-state value new value with no generation change"},
		{name: "rule 5: new client state, same keys_changed_at", setup: func(e *env) { e.established(known) },
			req: ruleReq(300, 150, csC), code: 401, status: "invalid-client-state",
			desc: "Unacceptable client-state value new value with no keys_changed_at change"},
		{name: "rule 6: older generation", setup: func(e *env) { e.established(known) },
			req: ruleReq(199, 150, csB), code: 401, status: "invalid-generation", loc: "body"},
		{name: "rule 7: older keys_changed_at", setup: func(e *env) { e.established(known) },
			req: ruleReq(200, 149, csB), code: 401, status: "invalid-keysChangedAt", loc: "body"},
		{name: "rule 7: keys_changed_at missing once seen", setup: func(e *env) { e.established(known) },
			req: ruleReq(200, 0, csB), code: 401, status: "invalid-keysChangedAt"},
		{name: "retired account", setup: func(e *env) {
			e.established(known)
			e.db.RetireUser(context.Background(), known+"@api.accounts.firefox.com")
		}, req: ruleReq(300, 150, csB), code: 401, status: "invalid-generation"},

		// And what passes.
		{name: "established account", setup: func(e *env) { e.established(known) }, req: ruleReq(200, 150, csB), code: 200},
		{name: "no generation claim", setup: func(e *env) { e.established(known) }, req: ruleReq(0, 150, csB), code: 200},
		{name: "new client state with newer generation and keys", setup: func(e *env) { e.established(known) },
			req: ruleReq(300, 300, csC), code: 200},
		{name: "user's node in backoff", setup: func(e *env) {
			e.established(known)
			n, _ := e.db.NodeByURL(context.Background(), defaultNode)
			e.db.SetNodeState(context.Background(), n.ID, weave.NodeBackoff, 0, 30*time.Second)
		}, req: ruleReq(200, 150, csB), code: 200, check: func(t *testing.T, w *httptest.ResponseRecorder) {
			if got := w.Header().Get("X-Backoff"); got != "30" {
				t.Errorf("X-Backoff %q, want 30", got)
			}
		}},
		{name: "opaque token verified by FxA", setup: func(e *env) {
			e.fxa.AddOpaque("opaque-ok", fxatest.VerifyResponse{User: known, Scope: []string{issuer.OldSyncScope}, Generation: 200})
		}, req: func(e *env) request { return request{auth: "Bearer opaque-ok", keyID: keyID(150, csB)} }, code: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.edit)
			if c.setup != nil {
				c.setup(e)
			}
			w := e.do(c.req(e))
			if w.Code != c.code {
				t.Fatalf("status %d, want %d; body %s", w.Code, c.code, w.Body)
			}
			if w.Header().Get("X-Timestamp") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", w.Header())
			}
			if c.code != 200 {
				r := decodeErr(t, w)
				if r.Status != c.status {
					t.Errorf("status %q, want %q", r.Status, c.status)
				}
				if c.loc != "" && r.Errors[0].Location != c.loc {
					t.Errorf("location %q, want %q", r.Errors[0].Location, c.loc)
				}
				if c.errName != "" && r.Errors[0].Name != c.errName {
					t.Errorf("name %q, want %q", r.Errors[0].Name, c.errName)
				}
				if c.desc != "" && r.Errors[0].Description != c.desc {
					t.Errorf("description %q, want %q", r.Errors[0].Description, c.desc)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if c.code == 503 && w.Header().Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
			if c.check != nil {
				c.check(t, w)
			}
		})
	}
}

// established gives an account the history the rule cases start from:
// client state A at generation 100, then B at generation 200 and
// keys_changed_at 150.
func (e *env) established(fxaUID string) {
	e.t.Helper()
	okResponse(e.t, e.get(fxaUID, 100, 50, csA))
	okResponse(e.t, e.get(fxaUID, 200, 150, csB))
}

func TestTokenServerNodes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(c *tokenserver.Config) { c.DefaultNodeURL = "" })
	for i, capacity := range []int64{100, 300} {
		if _, err := e.db.AddNode(ctx, weave.Node{URL: fmt.Sprintf("https://n%d.example.com", i), Capacity: capacity, Available: capacity}); err != nil {
			t.Fatal(err)
		}
	}
	draining, _ := e.db.AddNode(ctx, weave.Node{URL: "https://draining.example.com", Capacity: 1000, State: weave.NodeDraining})
	count := map[string]int{}
	endpoint := map[int]string{}
	for i := range 40 {
		r := okResponse(t, e.get(uidHex(i), 10, 10, csA))
		node := r.APIEndpoint[:strings.Index(r.APIEndpoint, "/1.5/")]
		count[node]++
		endpoint[i] = node
	}
	if count["https://n0.example.com"] != 10 || count["https://n1.example.com"] != 30 || count[draining.URL] != 0 {
		t.Fatalf("users per node %v, want 10 and 30 (by load ratio), none on the draining node", count)
	}

	// Draining: its users keep their node and uid.
	n0, _ := e.db.NodeByURL(ctx, "https://n0.example.com")
	if err := e.db.SetNodeState(ctx, n0.ID, weave.NodeDraining, 0, 0); err != nil {
		t.Fatal(err)
	}
	var onN0 int
	for i, n := range endpoint {
		if n == n0.URL {
			onN0 = i
			break
		}
	}
	before := okResponse(t, e.get(uidHex(onN0), 10, 10, csA))
	if !strings.HasPrefix(before.APIEndpoint, n0.URL+"/") {
		t.Fatalf("draining node's user moved: %s", before.APIEndpoint)
	}
	// A new user never lands there.
	if r := okResponse(t, e.get(uidHex(100), 10, 10, csA)); !strings.HasPrefix(r.APIEndpoint, "https://n1.example.com/") {
		t.Fatalf("new user on %s", r.APIEndpoint)
	}
	// Unassigned (migration done): a new uid on a live node.
	if _, err := e.db.UnassignNode(ctx, n0.ID); err != nil {
		t.Fatal(err)
	}
	after := okResponse(t, e.get(uidHex(onN0), 10, 10, csA))
	if after.UID == before.UID || !strings.HasPrefix(after.APIEndpoint, "https://n1.example.com/") {
		t.Fatalf("after unassign: %+v (before uid %d)", after, before.UID)
	}
	// Node removed: a new uid too.
	n1, _ := e.db.NodeByURL(ctx, "https://n1.example.com")
	if _, err := e.db.AddNode(ctx, weave.Node{URL: "https://n2.example.com", Capacity: 100}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.RemoveNode(ctx, n1.ID); err != nil {
		t.Fatal(err)
	}
	moved := okResponse(t, e.get(uidHex(onN0), 10, 10, csA))
	if moved.UID == after.UID || !strings.HasPrefix(moved.APIEndpoint, "https://n2.example.com/") {
		t.Fatalf("after node removal: %+v", moved)
	}
}

func TestTokenServerDerivedSecrets(t *testing.T) {
	e := newEnv(t, func(c *tokenserver.Config) { c.DerivedSecrets = true })
	r := okResponse(t, e.get(uidHex(1), 10, 10, csA))
	secrets, err := tokenserver.NodeSecrets([]string{oldSecret, newSecret}, defaultNode, true)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := tokenlib.Parse(secrets, r.ID, time.Now())
	if err != nil || key != r.Key {
		t.Fatalf("derived-secret token: %v (key match %v)", err, key == r.Key)
	}
	if _, _, err := tokenlib.Parse([]string{oldSecret, newSecret}, r.ID, time.Now()); err == nil {
		t.Fatal("derived-secret token verifies with the master secrets")
	}
	plain, _ := tokenserver.NodeSecrets([]string{oldSecret, newSecret}, defaultNode, false)
	if len(plain) != 2 || plain[1] != newSecret {
		t.Fatalf("NodeSecrets without derivation = %q", plain)
	}
}

// TestTokenServerConcurrentFirstRequests: simultaneous first requests of one
// account all get the same uid, and one live record remains.
func TestTokenServerConcurrentFirstRequests(t *testing.T) {
	e := newEnv(t, nil)
	const n = 30
	const fxaUID = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
	auths := make([]string, n)
	for i := range auths {
		auths[i] = e.bearer(fxaUID, int64(1000+i))
	}
	var wg sync.WaitGroup
	ws := make([]*httptest.ResponseRecorder, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws[i] = e.do(request{auth: auths[i], keyID: keyID(1000, csA)})
		}()
	}
	wg.Wait()
	uids := map[int64]int{}
	for _, w := range ws {
		// A request that raced behind a newer generation is rightly
		// refused as stale; every token issued is for the one uid.
		if w.Code == 401 && decodeErr(t, w).Status == "invalid-generation" {
			continue
		}
		uids[okResponse(t, w).UID]++
	}
	if len(uids) != 1 {
		t.Fatalf("uids issued: %v, want exactly one", uids)
	}
	var live int
	if err := e.db.DB().Read.QueryRow(`SELECT COUNT(*) FROM token_users WHERE replaced_at IS NULL`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 1 {
		t.Fatalf("%d live records, want 1", live)
	}
	u, err := e.db.GetUser(context.Background(), fxaUID+"@api.accounts.firefox.com")
	if err != nil || u.Generation != 1000+n-1 {
		t.Fatalf("record %+v, %v: want the highest generation %d", u, err, 1000+n-1)
	}
}

func TestTokenServerConcurrentUsers(t *testing.T) {
	e := newEnv(t, nil)
	const n = 50
	auths := make([]string, n)
	for i := range auths {
		auths[i] = e.bearer(uidHex(i), 10)
	}
	var wg sync.WaitGroup
	uids := make([]int64, n)
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := e.do(request{auth: auths[i], keyID: keyID(10, csA)})
			if w.Code != 200 {
				errs[i] = w.Body.String()
				return
			}
			var r tokenserver.Response
			json.Unmarshal(w.Body.Bytes(), &r)
			uids[i] = r.UID
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if errs[i] != "" {
			t.Fatalf("user %d: %s", i, errs[i])
		}
		if seen[uids[i]] {
			t.Fatalf("uid %d issued twice", uids[i])
		}
		seen[uids[i]] = true
	}
	n0, _ := e.db.NodeByURL(context.Background(), defaultNode)
	if n0.CurrentLoad != n {
		t.Fatalf("node load %d, want %d", n0.CurrentLoad, n)
	}
}

func TestTokenServerConfig(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	for _, c := range []tokenserver.Config{
		{Verifier: e.cfg.Verifier, Secrets: []string{"s"}},
		{DB: e.db, Secrets: []string{"s"}},
		{DB: e.db, Verifier: e.cfg.Verifier},
		{DB: e.db, Verifier: e.cfg.Verifier, Secrets: []string{""}},
	} {
		if err := tokenserver.New(c).Init(ctx); err == nil {
			t.Errorf("Init accepted %+v", c)
		}
	}
	// The default node is created once and left alone afterwards.
	n, err := e.db.NodeByURL(ctx, defaultNode)
	if err != nil || n.Capacity != 1000 {
		t.Fatalf("default node %+v, %v", n, err)
	}
	e.db.SetNodeCapacity(ctx, n.ID, 5)
	if err := tokenserver.New(e.cfg).Init(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.db.NodeByURL(ctx, defaultNode); n.Capacity != 5 {
		t.Fatalf("restart changed the operator's capacity: %+v", n)
	}
	// A server that was never Init-ed creates its node on first use.
	e2 := newEnv(t, func(c *tokenserver.Config) { c.DefaultNodeURL = "" })
	cfg := e2.cfg
	cfg.DefaultNodeURL = "https://lazy.example.com"
	srv := tokenserver.New(cfg)
	req := httptest.NewRequest("GET", "/1.0/sync/1.5", nil)
	req.Header.Set("Authorization", e2.bearer(uidHex(1), 1))
	req.Header.Set("X-KeyID", keyID(1, csA))
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if r := okResponse(t, w); !strings.HasPrefix(r.APIEndpoint, "https://lazy.example.com/1.5/") {
		t.Fatalf("lazy default node: %+v", r)
	}
}

// TestTokenServerVectorT1 reproduces spec §8.5 vector T1 through the
// payload builder.
func TestTokenServerVectorT1(t *testing.T) {
	p, err := tokenserver.NewPayload(42, "https://sync1.example.com", "a1b2c3d4e5f60718293a4b5c6d7e8f90",
		1700000000500, 1700000000000, "0123456789abcdef0123456789abcdef", "test-metrics-secret", 1700003600)
	if err != nil {
		t.Fatal(err)
	}
	p.Salt = "a1b2c3"
	if p.HashedFxAUID != "7627645994c5079c54b5788d364ad9be" || p.HashedDeviceID != "2f8850bcadb6292033bad8a5e5adad14" ||
		p.FxAKid != "1700000000000-ASNFZ4mrze8BI0VniavN7w" {
		t.Fatalf("payload %+v", p)
	}
	id, key, err := p.Sign("test-master-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	const wantID = "eyJub2RlIjoiaHR0cHM6Ly9zeW5jMS5leGFtcGxlLmNvbSIsImZ4YV9raWQiOiIxNzAwMDAwMDAwMDAwLUFTTkZaNG1yemU4QkkwVm5pYXZON3ciLCJmeGFfdWlkIjoiYTFiMmMzZDRlNWY2MDcxODI5M2E0YjVjNmQ3ZThmOTAiLCJoYXNoZWRfZGV2aWNlX2lkIjoiMmY4ODUwYmNhZGI2MjkyMDMzYmFkOGE1ZTVhZGFkMTQiLCJoYXNoZWRfZnhhX3VpZCI6Ijc2Mjc2NDU5OTRjNTA3OWM1NGI1Nzg4ZDM2NGFkOWJlIiwiZXhwaXJlcyI6MTcwMDAwMzYwMCwidWlkIjo0MiwidG9rZW5zZXJ2ZXJfb3JpZ2luIjoicnVzdCIsInNhbHQiOiJhMWIyYzMifQKGHx3xDV2wo-ot7vGBPL6RTgRk1qJPDUW9kISvPsB_"
	if id != wantID {
		t.Errorf("id\n%s\nwant\n%s", id, wantID)
	}
	if key != "3TyKUL9vwm_qxuzSUm1dD6ucJTKO8EBxB7unP_CiDqc=" {
		t.Errorf("key %s", key)
	}
	// fxa_kid falls back to the generation when keys_changed_at is unknown.
	p2, _ := tokenserver.NewPayload(1, "n", "u", 1234, 0, "0123456789abcdef0123456789abcdef", "m", 0)
	if p2.FxAKid != "0000000001234-ASNFZ4mrze8BI0VniavN7w" {
		t.Errorf("fxa_kid without keys_changed_at: %s", p2.FxAKid)
	}
}

// A failed request is logged with its cause under "err", the one key every
// package logs errors with.
func TestErrorLogKey(t *testing.T) {
	var logs strings.Builder
	e := newEnv(t, func(c *tokenserver.Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	e.fxa.Close()
	if w := e.do(request{auth: "Bearer opaque-token", keyID: keyID(150, csB)}); w.Code != 503 {
		t.Fatalf("status %d with FxA down, want 503", w.Code)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(logs.String()), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if s, _ := line["err"].(string); s == "" || line["error"] != nil {
		t.Errorf("log line without its cause under \"err\": %s", logs.String())
	}
}
