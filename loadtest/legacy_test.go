package loadtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/legacy/passwd"
	"github.com/weave-sync/weave/routes"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// startLegacyNode is startNode with the 1.1 front end too, as `weave serve
// --legacy` runs it: the token server, the 1.5 storage and Sync 1.1 on one
// node and one store.
func startLegacyNode(t *testing.T, jwksFile, secret string) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	public := "http://" + ts.Listener.Addr().String()
	store := openSQLiteStore(t)
	tsrv, db := startTokenServer(t, jwksFile, public)
	srv, err := weavehttp.New(weavehttp.Config{Store: store, PublicURL: public, Secrets: []string{e2eSecret}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := legacy.New(legacy.Config{Users: sqlstore.NewLegacyUserStore(db.DB()), Tokens: db, PublicURL: public,
		Signup: legacy.SignupCaptcha, WeaveSecret: secret, KDF: passwd.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	node := routes.NodeHandler(routes.Node{URL: public, API: srv, TokenServer: tsrv,
		Legacy: func(next http.Handler) http.Handler { return svc.Storage(public, store, nil, next) }})
	ts.Config.Handler = routes.Handler(routes.Process{PublicURL: public, Nodes: node, LegacyUsers: svc.UserAPI(node)})
	ts.Start()
	t.Cleanup(ts.Close)
	return public
}

// TestEndToEndLegacyMix runs half the users as Sync 1.1 clients next to
// 1.5 ones on one node: every record either kind acknowledged reads back,
// and the 1.1 requests have rows of their own.
func TestEndToEndLegacyMix(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test")
	}
	keyFile, jwksFile, err := Keygen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const secret = "loadtest-legacy-secret"
	public := startLegacyNode(t, jwksFile, secret)
	c := DefaultConfig()
	c.Mode = ModeTokenServer
	c.Target = public
	c.KeyFile = keyFile
	c.Users = 8
	c.Concurrency = 4
	// A session count, not a duration: users take turns in FIFO order, so
	// 16 sessions give each of the 8 users two however slow the machine.
	c.Duration = 0
	c.Sessions = 16
	c.Seed = 3
	c.Verify = true
	c.LegacyShare = 0.5
	c.LegacySecret = secret
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCleanRun(t, rep)
	rows := map[string]int64{}
	for _, k := range rep.Requests {
		rows[k.Kind] = k.Count
	}
	// Four 1.1 users: one sign-up and one node lookup each; four 1.5
	// users: one token each.
	if rows[KindLegacyUser.String()] != 8 || rows[KindToken.String()] != 4 {
		t.Errorf("legacy_user %d (want 8), token %d (want 4)", rows[KindLegacyUser.String()], rows[KindToken.String()])
	}
	for _, k := range []Kind{KindLegacyInfo, KindLegacyGet, KindLegacyPost, KindInfoCollections} {
		if rows[k.String()] == 0 {
			t.Errorf("no %s requests: %v", k, rows)
		}
	}

	// A second run finds the 1.1 accounts made by the first and signs in.
	c.Duration, c.Sessions = 0, 4
	rep, err = Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Errors != 0 {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Fatalf("second run:\n%s", b.String())
	}
}

func TestIsLegacy(t *testing.T) {
	n := 0
	for i := range 1000 {
		if isLegacy(i, 0.25) {
			n++
		}
	}
	if n != 250 || isLegacy(0, 0) || !isLegacy(7, 1) {
		t.Fatalf("isLegacy: %d of 1000 at 0.25", n)
	}
}
