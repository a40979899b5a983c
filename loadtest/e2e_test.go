package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fxa"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/routes"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tokenlib"
	"github.com/weave-sync/weave/tokenserver"
)

const e2eSecret = "loadtest-e2e-node-secret"

// openSQLiteStore opens a fresh SQLite store in a temporary directory.
func openSQLiteStore(t *testing.T) weave.Store {
	t.Helper()
	st, err := sqlstore.OpenStore(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "storage.db"), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startNode serves a real weave storage node on 127.0.0.1 and returns its
// public URL. With a JWKS file it also serves the token server (as one
// `weave serve` process does), trusting those keys and assigning every user
// to this node.
func startNode(t *testing.T, jwksFile string) string {
	t.Helper()
	return startNodeWith(t, jwksFile, func(string) []string { return []string{e2eSecret} })
}

// startNodeWith is startNode with the node's secrets computed from its
// public URL.
func startNodeWith(t *testing.T, jwksFile string, secrets func(public string) []string) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	public := "http://" + ts.Listener.Addr().String()
	cfg := weavehttp.Config{
		Store:     openSQLiteStore(t),
		PublicURL: public,
		Secrets:   secrets(public),
	}
	var tokens http.Handler // the token server, with a JWKS file
	if jwksFile != "" {
		tokens, _ = startTokenServer(t, jwksFile, public)
	}
	srv, err := weavehttp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = routes.NodeHandler(routes.Node{URL: public, API: srv, TokenServer: tokens})
	ts.Start()
	t.Cleanup(ts.Close)
	return public
}

// e2eConfig is a short verified run of 6 users against target.
func e2eConfig(mode Mode, target string, seed int64) Config {
	c := DefaultConfig()
	c.Mode = mode
	c.Target = target
	c.Users = 6
	c.Concurrency = 3
	// A session count, not a duration: users take turns in FIFO order, so
	// 12 sessions give each of the 6 users two however slow the machine
	// (2 s at load 25 ran 3 sessions, and TestEndToEndTokenServer saw 3
	// token requests of 6).
	c.Duration = 0
	c.Sessions = 12
	c.Seed = seed
	c.Verify = true
	return c
}

// runClean runs c and checks that the run was clean (checkCleanRun).
func runClean(t *testing.T, c Config) *Report {
	t.Helper()
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCleanRun(t, rep)
	return rep
}

// startTokenServer is a token server trusting the keys of jwksFile, on a
// new SQLite token database, assigning users to the node at public.
func startTokenServer(t *testing.T, jwksFile, public string) (*tokenserver.Server, *sqlstore.TokenDB) {
	t.Helper()
	ctx := context.Background()
	keys, err := fxa.LoadJWKSFile(jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := fxa.NewVerifier(fxa.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.OpenTokenDB(ctx, dbtest.SQLite(t), sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tsrv := tokenserver.New(tokenserver.Config{DB: db, Verifier: verifier, Secrets: []string{e2eSecret}, DefaultNodeURL: public})
	if err := tsrv.Init(ctx); err != nil {
		t.Fatal(err)
	}
	return tsrv, db
}

func checkCleanRun(t *testing.T, rep *Report) {
	t.Helper()
	var b strings.Builder
	rep.WriteTable(&b)
	t.Log("\n" + b.String())
	if rep.Total.Errors != 0 || rep.Sessions.Failed != 0 {
		t.Errorf("%d request errors, %d failed sessions", rep.Total.Errors, rep.Sessions.Failed)
	}
	if rep.Sessions.Completed == 0 || rep.Total.Count == 0 {
		t.Errorf("nothing ran: %+v", rep.Sessions)
	}
	v := rep.Verify
	if v == nil || !v.OK() || v.Expected == 0 || v.Found != v.Expected {
		t.Errorf("verify: %+v", v)
	}
}

func TestEndToEndDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test")
	}
	public := startNode(t, "")
	c := e2eConfig(ModeDirect, public, 1)
	c.MasterSecret = e2eSecret
	runClean(t, c)
}

func TestEndToEndTokenServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test")
	}
	keyFile, jwksFile, err := Keygen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	public := startNode(t, jwksFile)
	c := e2eConfig(ModeTokenServer, public, 2)
	c.KeyFile = keyFile
	rep := runClean(t, c)
	var tokens int64
	for _, k := range rep.Requests {
		if k.Kind == KindToken.String() {
			tokens = k.Count
		}
	}
	if tokens != int64(c.Users) {
		t.Errorf("%d token requests, want one per user (%d)", tokens, c.Users)
	}
}

// The secret options of direct mode: a rotation list (the newest signs) and
// mozsvc derived node secrets.
func TestEndToEndDirectSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test")
	}
	run := func(t *testing.T, public, secret string, derived bool) {
		c := DefaultConfig()
		c.Mode, c.Target, c.MasterSecret, c.DerivedSecret = ModeDirect, public, secret, derived
		c.Users, c.Concurrency, c.Duration, c.Sessions = 2, 2, 0, 20
		rep, err := Run(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Sessions.Completed != 20 {
			var b strings.Builder
			rep.WriteTable(&b)
			t.Fatal(b.String())
		}
	}
	t.Run("rotation", func(t *testing.T) {
		public := startNodeWith(t, "", func(string) []string { return []string{"older-secret", e2eSecret} })
		run(t, public, "older-secret, "+e2eSecret, false)
	})
	t.Run("derived", func(t *testing.T) {
		master := "0123456789abcdef0123456789abcdef"
		public := startNodeWith(t, "", func(public string) []string {
			s, err := tokenlib.DerivedNodeSecret(master, public)
			if err != nil {
				t.Fatal(err)
			}
			return []string{s}
		})
		run(t, public, master, true)
	})
}

// The closed-loop mode in direct mode against a real weave node, with the
// read-mostly mix and this process (which serves the node) as the server
// whose CPU is measured.
func TestEndToEndClosedLoopDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test")
	}
	public := startNode(t, "")
	for _, m := range MixNames() {
		c := DefaultConfig()
		c.Mode, c.Target, c.MasterSecret = ModeDirect, public, e2eSecret
		c.Users, c.Concurrency, c.Duration, c.Sessions = 6, 3, 0, 40
		c.ClosedLoop, c.Mix, c.ServerPID, c.Seed = true, m, os.Getpid(), 3
		rep, err := Run(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Sessions.Completed != 40 || rep.Sessions.PerSecond <= 0 || rep.Mix != m {
			var b strings.Builder
			rep.WriteTable(&b)
			t.Fatal(b.String())
		}
		if cpu := rep.ServerCPU; cpu == nil || cpu.CPUSeconds <= 0 || cpu.PerThousandSessions <= 0 {
			t.Errorf("%s: server CPU %+v", m, cpu)
		}
	}
}
