package accounts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/hawk"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// fuzzPaths are the API routes (and two that do not exist); fuzz inputs
// pick one by index.
var fuzzPaths = []string{
	"/v1/account/create", "/v1/captcha", "/v1/account/login", "/v1/account/keys", "/v1/account/status",
	"/v1/account/destroy", "/v1/account/profile", "/v1/password/change/start", "/v1/password/change/finish",
	"/v1/session/status", "/v1/recovery_email/status", "/v1/account/device", "/v1/account/devices",
	"/v1/account/device/destroy", "/v1/account/attached_clients", "/v1/account/device/commands",
	"/v1/account/devices/notify", "/v1/account/scoped-key-data", "/v1/oauth/authorization", "/v1/authorization",
	"/v1/oauth/token", "/v1/token", "/v1/oauth/destroy", "/v1/destroy", "/v1/jwks", "/v1/verify", "/v1/profile",
	"/.well-known/fxa-client-configuration", "/.well-known/openid-configuration", "/v1/client/5882386c6d801776",
	"/v1/client/%zz", "/v1/nope", "/v1/account/devices/invoke_command", "/v1/account/attached_client/destroy",
}

// FuzzAPI sends arbitrary requests — route, method, query, Content-Type,
// Authorization and JSON body — to two accounts services on SQLite, one
// with open sign-up and one behind the captcha. With sign set, the request
// is Hawk-signed with a live session, so the fuzzer reaches the body
// parsers behind authentication (session destroy is left out so the
// session lives). Every answer is an FxA error object or a 200, never a
// 5xx, and sign-up behind the captcha never succeeds.
func FuzzAPI(f *testing.F) {
	ctx := context.Background()
	type svc struct {
		h    http.Handler
		base string
		cred fxaclient.HawkCred
	}
	var svcs [2]svc
	for i, captcha := range []bool{false, true} {
		dir := f.TempDir()
		db, err := sqlite.Open(ctx, "sqlite://"+filepath.Join(dir, "accounts.db"), sqlstore.PoolOptions{})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { db.Close() })
		ms, err := sqlite.Migrations(sqlstore.SetAccounts)
		if err != nil {
			f.Fatal(err)
		}
		if err := db.Migrate(ctx, sqlstore.SetAccounts, ms, nil); err != nil {
			f.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(nil)
		base := "http://" + srv.Listener.Addr().String()
		s, err := accounts.New(accounts.Config{
			Store: sqlstore.NewAccountStore(db), PublicURL: base,
			Clients: append([]accounts.Client{testClient}, accounts.DefaultClients...),
			Scrypt:  onepw.ScryptParams{N: 1 << 4, R: 8, P: 1},
			// Limits high enough that the fuzzer is not throttled into
			// exploring only 429s.
			Limits:        accounts.Limits{PerIP: 1 << 30, SignupsPerIP: 1 << 30, EmailFailures: 1 << 30},
			SignupCaptcha: captcha,
		})
		if err != nil {
			f.Fatal(err)
		}
		srv.Config.Handler = s.Handler()
		srv.Start()
		f.Cleanup(srv.Close)
		svcs[i] = svc{h: s.Handler(), base: base}
		if !captcha {
			sess, err := fxaclient.New(base).SignUp(ctx, "fuzz@example.com", "fuzz password")
			if err != nil {
				f.Fatal(err)
			}
			svcs[i].cred = *sess.Cred()
		}
	}
	good := strings.Repeat("ab", 32)
	f.Add(uint8(0), uint8(1), "", "application/json", "", []byte(`{"email":"a@b.c","authPW":"`+good+`"}`), false, false)
	f.Add(uint8(0), uint8(1), "keys=true", "application/json", "", []byte(`{"email":"x@y.z","authPW":"`+good+`","captchaId":"0123456789abcdef0123456789abcdef","captchaAnswer":"ACE FH"}`), true, false)
	f.Add(uint8(2), uint8(1), "keys=true", "application/json", "", []byte(`{"email":"fuzz@example.com","authPW":"`+good+`","reason":"signin"}`), false, false)
	f.Add(uint8(11), uint8(1), "", "application/json", "", []byte(`{"name":"phone","type":"mobile","pushCallback":"https://updates.push.services.mozilla.com/x","pushPublicKey":"","availableCommands":{"a":"b"}}`), false, true)
	f.Add(uint8(18), uint8(1), "", "application/json", "", []byte(`{"client_id":"5882386c6d801776","state":"s","scope":"profile https://identity.mozilla.com/apps/oldsync","access_type":"offline","response_type":"code","code_challenge":"`+strings.Repeat("A", 43)+`","code_challenge_method":"S256","keys_jwe":"a..b.c.d"}`), false, true)
	f.Add(uint8(20), uint8(1), "", "application/x-www-form-urlencoded", "", []byte(`grant_type=refresh_token&client_id=5882386c6d801776&refresh_token=`+good+`&scope=profile`), false, false)
	f.Add(uint8(20), uint8(1), "", "application/json", "", []byte(`{"grant_type":"fxa-credentials","client_id":"0123456789abcdef","scope":"https://identity.mozilla.com/apps/oldsync","access_type":"offline"}`), false, true)
	f.Add(uint8(17), uint8(1), "", "application/json", "", []byte(`{"client_id":"5882386c6d801776","scope":"https://identity.mozilla.com/apps/oldsync"}`), false, true)
	f.Add(uint8(26), uint8(0), "", "", "Bearer eyJ.eyJ.x", []byte(nil), false, false)
	f.Add(uint8(9), uint8(0), "", "", `Hawk id="`+good+`", ts="1", nonce="x", mac="y"`, []byte(nil), false, false)
	f.Add(uint8(12), uint8(0), "", "", "Bearer fxs_"+good, []byte(nil), false, false)
	f.Add(uint8(25), uint8(1), "", "text/plain", "", []byte(`{"token":"x"}`), false, false)
	f.Fuzz(func(t *testing.T, route, method uint8, query, ctype, authz string, body []byte, captcha, sign bool) {
		path := fuzzPaths[int(route)%len(fuzzPaths)]
		s := svcs[0]
		if captcha {
			s = svcs[1]
		}
		m := [...]string{"GET", "POST", "PUT", "DELETE"}[method%4]
		u := s.base + path
		if query != "" {
			u += "?" + query
		}
		var r *http.Request
		func() {
			defer func() {
				if recover() != nil {
					r = nil // not a URL a client could send
				}
			}()
			r = httptest.NewRequest(m, u, bytes.NewReader(body))
		}()
		if r == nil {
			return
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if sign && !captcha && !strings.Contains(path, "destroy") {
			ct := ""
			if m == http.MethodPost {
				ct = ctype
			}
			a, err := hawk.Sign(s.cred.Key, s.cred.ID, m, u, ct, body, time.Now(), "")
			if err != nil {
				return
			}
			authz = a
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", m, u, w.Code, w.Body)
		}
		if captcha && path == "/v1/account/create" && w.Code == http.StatusOK {
			t.Fatalf("sign-up without a solved captcha: %s", w.Body)
		}
		if w.Code == http.StatusOK {
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("200 with body %q", w.Body)
			}
			return
		}
		var e struct {
			Code  *int
			Errno *int
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == nil || *e.Code != w.Code || e.Errno == nil {
			t.Fatalf("%s %s: %d with body %q", m, u, w.Code, w.Body)
		}
	})
}
