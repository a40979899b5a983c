package tokenserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/fxa"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tokenlib"
	"github.com/weave-sync/weave/tokenserver"
)

// stubVerifier accepts "<fxa uid>.<generation>" as a verified OAuth token,
// so that the fuzzer reaches the header and key-rotation rules behind
// verification without signing JWTs.
type stubVerifier struct{}

func (stubVerifier) Verify(_ context.Context, token string) (fxa.Claims, error) {
	uid, gen, ok := strings.Cut(token, ".")
	g, err := strconv.ParseInt(gen, 10, 64)
	if !ok || err != nil || uid == "" || len(uid) > 64 || strings.ContainsAny(uid, "@. \t") {
		return fxa.Claims{}, fxa.ErrInvalidToken
	}
	return fxa.Claims{FxAUID: uid, Generation: g, Scopes: []string{fxa.OldSyncScope}}, nil
}

// FuzzTokenRequest sends requests with arbitrary Authorization, X-KeyID,
// X-Client-State and Accept headers to a token server on SQLite. Users
// persist across inputs, so client-state and generation changes of one
// user meet the rotation rules. Every answer is Cornice-shaped JSON, never
// a 5xx; a token is issued only for a bearer the verifier accepted, and it
// carries the client state X-KeyID named.
func FuzzTokenRequest(f *testing.F) {
	db, err := sqlstore.OpenTokenDB(context.Background(), "sqlite://"+filepath.Join(f.TempDir(), "tokens.db"), sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	srv := tokenserver.New(tokenserver.Config{
		DB: db, Verifier: stubVerifier{}, Secrets: []string{oldSecret, newSecret}, MetricsSecret: metricsSecret,
		NodeType: "sqlite", DefaultNodeURL: defaultNode, DefaultNodeCapacity: 1 << 30,
	})
	if err := srv.Init(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer u1.1", "1700000000000-"+base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef")), "", "application/json", false)
	f.Add("Bearer u1.2", "1700000000001-AAECAwQFBgcICQoLDA0ODw", "000102030405060708090a0b0c0d0e0f", "*/*", true)
	f.Add("bearer  u2.0 ", "0-", "", "", true)
	f.Add("BrowserID x", "1-AA", "00", "text/html", false)
	f.Add("Bearer u1.1", "-5-AA", "ZZ", "application/json;q=0", true)
	f.Add("", "99999999999999999999-AA", "", "", false)
	f.Fuzz(func(t *testing.T, authz, keyID, clientState, accept string, sendCS bool) {
		r := httptest.NewRequest(http.MethodGet, "/1.0/sync/1.5", nil)
		for name, v := range map[string]string{"Authorization": authz, "X-KeyID": keyID, "Accept": accept} {
			if v != "" {
				r.Header.Set(name, v)
			}
		}
		if sendCS {
			r.Header.Set("X-Client-State", clientState)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if w.Code != http.StatusOK {
			var e struct {
				Status string
				Errors []struct{ Location, Name, Description string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Status == "" || len(e.Errors) != 1 {
				t.Fatalf("status %d, body %q is not a Cornice error", w.Code, w.Body)
			}
			return
		}
		var resp tokenserver.Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("200 with body %q: %v", w.Body, err)
		}
		scheme, cred, _ := strings.Cut(authz, " ")
		if !strings.EqualFold(scheme, "bearer") {
			t.Fatalf("token issued for Authorization %q", authz)
		}
		p, _, err := tokenlib.Parse([]string{oldSecret, newSecret}, resp.ID, time.Now())
		if err != nil || p.UID != resp.UID || p.Node != defaultNode {
			t.Fatalf("issued token %q: %+v, %v", resp.ID, p, err)
		}
		if want, _, _ := strings.Cut(strings.TrimSpace(cred), "."); p.FxAUID != want {
			t.Fatalf("token for %q issued to bearer %q", p.FxAUID, cred)
		}
		_, sentCS, ok1 := strings.Cut(keyID, "-")
		_, gotCS, ok2 := strings.Cut(p.FxAKid, "-")
		a, err1 := base64.RawURLEncoding.DecodeString(sentCS)
		b, err2 := base64.RawURLEncoding.DecodeString(gotCS)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("X-KeyID %q, token fxa_kid %q", keyID, p.FxAKid)
		}
	})
}
