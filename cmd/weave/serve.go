package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/fleet"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/memcache"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/routes"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tlsserve"
	"github.com/weave-sync/weave/tokenserver"

	"github.com/weave-sync/weave/internal/cli"
)

// serveFlags are the flags of `weave serve`: each package's own, and the
// few that wire them together.
type serveFlags struct {
	db             sqlstore.Config
	cache          memcache.Config
	admin          routes.AdminFlags
	tls            tlsserve.Config
	accounts       accounts.Flags
	push           push.Flags
	legacy         legacy.Flags
	tokens         tokenserver.Flags
	http           weavehttp.Config // limits, quota, Hawk and CORS of every node
	conn           weavehttp.ListenConfig
	listen         string
	publicURL      string
	migrate        bool
	trustedProxies string
	shutdownGrace  time.Duration
	log            cli.LogFlags
	fleet          fleet.ServeFlags
}

// Main is `weave serve`: ParseFlags reads its flags (and their WEAVE_*
// variables), Run builds the server and starts serving, Close shuts it down
// gracefully. The end-to-end tests run it in-process.
type Main struct {
	Stdout, Stderr io.Writer
	cmd            *cli.Command
	f              *serveFlags
	log            *slog.Logger
	srv            *weavehttp.Serving
	shutdown       func() error
	cleanup        []func()
}

// NewMain returns a `weave serve` writing its banner to stdout and its
// flag errors to stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	m := &Main{Stdout: stdout, Stderr: stderr, f: &serveFlags{}}
	m.cmd = serveFlagSet(m.f)
	return m
}

// ParseFlags reads the environment and then args.
func (m *Main) ParseFlags(args []string) error {
	m.cmd.Flags.SetOutput(m.Stderr)
	if err := m.cmd.Parse(args); err != nil {
		return err
	}
	for _, w := range m.cmd.Warnings() {
		fmt.Fprintf(m.Stderr, "weave serve: %s\n", w)
	}
	return nil
}

// Addr is the address the server listens on, once Run returned.
func (m *Main) Addr() net.Addr {
	if m.srv == nil {
		return nil
	}
	return m.srv.Addr()
}

func (m *Main) onClose(fn func()) { m.cleanup = append(m.cleanup, fn) }

// Close turns the heartbeats 503, waits --shutdown-grace, lets in-flight
// requests finish, and closes what Run opened. It is safe after a Run
// that failed.
func (m *Main) Close() error {
	var err error
	if m.shutdown != nil {
		err, m.shutdown = m.shutdown(), nil
	}
	for i := len(m.cleanup) - 1; i >= 0; i-- {
		m.cleanup[i]()
	}
	m.cleanup = nil
	return err
}

// serveUntil serves until ctx ends or the listener fails.
func (m *Main) serveUntil(ctx context.Context) error {
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	select {
	case err := <-m.srv.Done():
		m.shutdown = nil // the listener is gone already
		m.Close()
		return err
	case <-ctx.Done():
	}
	return m.Close()
}

func (a *app) serveCommand() *cli.Command {
	m := NewMain(a.stdout, a.stderr)
	m.cmd.Run = func([]string) error { return m.serveUntil(a.ctx) }
	return m.cmd
}

func serveFlagSet(f *serveFlags) *cli.Command {
	c := cli.New("serve", "[flags]", "Run a Firefox Sync server: the token server at /1.0/sync/1.5 and the storage API 1.5 at /1.5/UID.")
	c.String(&f.listen, "listen", "127.0.0.1:8000", "address to listen on")
	c.String(&f.publicURL, "public-url", "", "URL clients use to reach this server, e.g. https://sync.example.com/sync behind a proxy (default: http://LISTEN, or https://LISTEN or https://ACME-DOMAIN with TLS)")
	f.db.RegisterFlags(c)
	f.cache.RegisterFlags(c)
	f.admin.RegisterFlags(c)
	f.tls.RegisterFlags(c)
	f.accounts.RegisterFlags(c)
	f.push.RegisterFlags(c)
	f.legacy.RegisterFlags(c)
	f.tokens.RegisterFlags(c)
	f.http.RegisterFlags(c)
	f.conn.RegisterFlags(c)
	c.Bool(&f.migrate, "migrate", true, "apply database schema migrations on start (false: refuse to start unless the schema is current)")
	c.String(&f.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDRs whose X-Forwarded-Proto/Host/Port are trusted (only used without --public-url)")
	c.Duration(&f.shutdownGrace, "shutdown-grace", 2*time.Second, "on SIGTERM, how long heartbeats answer 503 before the listener closes, so load balancers drain").Min(0)
	f.log.RegisterFlags(c)
	f.fleet.RegisterFlags(c)
	return c
}

// Run builds the server from the flags and starts serving; it returns once
// the listener is open. Call Close even when it fails.
func (m *Main) Run(ctx context.Context) error {
	f := m.f
	log, err := f.log.Logger(os.Stderr)
	if err != nil {
		return err
	}
	m.log = log
	if err := f.admin.Check(); err != nil {
		return err
	}
	obs := metrics.New(metrics.Options{})
	if err := f.tls.Check(); err != nil {
		return err
	}
	if f.publicURL, err = f.tls.PublicURL(f.publicURL, f.listen); err != nil {
		return err
	}
	var tlsSrv *tlsserve.Serving
	if f.tls.On() {
		f.tls.UserAgent = "weave/" + version
		if tlsSrv, err = f.tls.Setup(ctx, f.db.DataDir, log); err != nil {
			return err
		}
		m.onClose(tlsSrv.Stop)
	}
	trusted, err := cli.Prefixes(f.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	secrets, err := f.tokens.Secrets(f.db.DataDir)
	if err != nil {
		return err
	}

	dbs, err := f.db.Open(ctx)
	if err != nil {
		return err
	}
	m.onClose(func() { dbs.Close() })
	if err := dbs.Prepare(ctx, f.migrate, func(set string, m sqlstore.Migration) {
		log.Info("applying migration", "set", set, "migration", m.Name)
	}); err != nil {
		return err
	}
	// A record the flags accept that the database would refuse: said once
	// here rather than only in each refused write's 413.
	mysql.WarnPacketLimit(ctx, dbs.Storage, f.http.Limits, log)
	if err := f.cache.Check(); err != nil {
		return err
	}
	f.cache.Observer = obs.CacheObserver()
	tokenDB := sqlstore.NewTokenDB(dbs.Tokens, sqlstore.TokenDBOptions{KeepOpen: true})
	var front func(n *fleet.Node) (fleet.NodeHandler, error) // set below, once it can be built
	nodes := newNodeSet(f, dbs, tokenDB, &front, log)
	// A deleted account's data goes at once; the nodes served here refuse
	// its uid at once too.
	deleter := (&fleetDB{db: f.db}).deleter(tokenDB, nodes)

	var acc *accounts.Service
	var verifier tokenserver.Verifier
	if f.accounts.Enabled {
		if acc, err = newBuiltinAccounts(ctx, f, dbs, trusted, deleter, log); err != nil {
			return err
		}
		verifier, err = acc.TokenVerifier(f.tokens.JWKSFile)
	} else {
		verifier, err = f.tokens.FxAVerifier()
	}
	if err != nil {
		return err
	}
	ts := tokenserver.New(tokenserver.Config{
		DB:                  tokenDB,
		Verifier:            verifier,
		Secrets:             secrets,
		TokenDuration:       f.tokens.TokenDuration,
		NewUsersDisabled:    !f.tokens.NewUsers,
		NodeType:            dbs.StorageBackend.Name,
		DefaultNodeURL:      f.publicURL,
		DefaultNodeCapacity: f.tokens.NodeCapacity,
		Logger:              log.With("component", "tokenserver"),
		Observer:            obs,
	})
	if err := ts.Init(ctx); err != nil {
		return fmt.Errorf("token server: %w", err)
	}
	var lg *legacy.Service
	if f.legacy.Enabled {
		cfg, err := f.legacy.Config()
		if err != nil {
			return err
		}
		// Its accounts live in the token database (migration tokens/0003).
		cfg.Users, cfg.Tokens, cfg.PublicURL = sqlstore.NewLegacyUserStore(tokenDB.DB()), tokenDB, f.publicURL
		cfg.QuotaBytes, cfg.NewUsersDisabled, cfg.DeleteSyncData = f.http.Limits.QuotaBytes, !f.tokens.NewUsers, deleter.ReplaceAccount
		cfg.Observer, cfg.Logger = obs.LegacyObserver(), log.With("component", "legacy")
		if lg, err = legacy.New(cfg); err != nil {
			return err
		}
	}
	// Every node's front end: the storage API 1.5 (the own node's also
	// serves the token server), behind the 1.1 front end when it is on.
	front = func(n *fleet.Node) (fleet.NodeHandler, error) {
		nodeSecrets, err := tokenserver.NodeSecrets(secrets, n.URL, false)
		if err != nil {
			return nil, err
		}
		cfg := f.http
		cfg.Store, cfg.PublicURL, cfg.Secrets, cfg.TrustedProxies, cfg.Node = n.Store, n.URL, nodeSecrets, trusted, n.Status
		cfg.Logger, cfg.Version, cfg.Commit, cfg.Observer = log, version, commit, obs.HTTPObserver()
		rn := routes.Node{URL: n.URL}
		if n.Own {
			rn.TokenServer = ts
		} else {
			cfg.Logger = log.With("node", n.URL)
		}
		if rn.API, err = weavehttp.New(cfg); err != nil {
			return nil, err
		}
		if lg != nil {
			rn.Legacy = func(next http.Handler) http.Handler { return lg.Storage(n.URL, n.Store, n.Status, next) }
		}
		return routes.NewNodeFront(rn), nil
	}
	fleetCtx, stopFleet := context.WithCancel(ctx)
	m.onClose(stopFleet)
	shard := sqlstore.NewStore(dbs.Storage, sqlstore.StoreOptions{BatchLifetime: f.http.Limits.BatchLifetime})
	handler, err := serveNodes(fleetCtx, f, nodes, dbs, shard, tokenDB, log)
	if err != nil {
		return err
	}
	m.onClose(func() { nodes.Close() })
	if f.fleet.ResumeMovesAfter > 0 {
		resumeMoves(fleetCtx, f, tokenDB, obs, m, log)
	}

	surfaces := routes.Process{PublicURL: f.publicURL, Nodes: handler, Metrics: obs, Admin: f.admin.Admin(fleetCtx, obs, false)}
	if acc != nil {
		surfaces.Accounts = acc.Handler()
		go fleet.Every(fleetCtx, f.fleet.PurgeInterval, func() { // expired tokens and codes
			if _, err := acc.Purge(fleetCtx); err != nil {
				log.Warn("purge of expired account tokens failed; will retry", "err", err)
			}
		})
		m.onClose(acc.Shutdown)
	}
	var ps *push.Service
	if f.push.Enabled {
		// Its messages live in the token database, which every process of
		// a fleet shares: that is how a message taken by one process
		// reaches a browser connected to another.
		if err := dbs.PrepareTokenSet(ctx, sqlstore.SetPush, f.migrate); err != nil {
			return err
		}
		if ps, err = f.push.New(sqlstore.NewPushStore(dbs.Tokens), f.publicURL, secrets, obs.PushObserver(), log.With("component", "push")); err != nil {
			return err
		}
		surfaces.Push = routes.Push{WebSocket: ps.Handler(), Routes: ps.Routes()}
		go ps.Run(fleetCtx)
	}
	if lg != nil {
		surfaces.LegacyUsers = lg.UserAPI(handler)
	}
	if err := watchDatabases(obs, dbs, tokenDB); err != nil {
		return err
	}
	stopMetrics, err := f.admin.ServeListener(fleetCtx, obs, &f.conn, log)
	if err != nil {
		return err
	}
	m.onClose(stopMetrics)

	ln, err := f.conn.Listen(f.listen, trusted, log)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another weave running? choose another --listen)", f.listen, err)
	}
	hs := f.conn.Server(routes.Handler(surfaces), log)
	fmt.Fprintf(m.Stdout, "weave %s listening on %s (public URL %s, database %s)\n", version, ln.Addr(), f.publicURL, sqlstore.RedactURL(dbs.StorageURL))
	if acc != nil {
		accounts.WriteFirefoxPrefs(m.Stdout, f.publicURL)
	} else {
		tokenserver.WriteFirefoxPrefs(m.Stdout, f.publicURL)
	}
	if ps != nil {
		ps.WriteFirefoxPrefs(m.Stdout)
	}
	if lg != nil {
		fmt.Fprintf(m.Stdout, "Sync 1.1 is on (--legacy-signup %s). Point Pale Moon or Basilisk at it: in the Sync setup choose a custom server and enter %s/\n", f.legacy.Signup, f.publicURL)
	}

	if tlsSrv != nil {
		if f.tls.RedirectListen != "" {
			stopRedirects, err := tlsserve.ServeRedirects(f.tls.RedirectListen, tlsSrv.Challenges(tlsserve.RedirectToHTTPS(f.publicURL)), log)
			if err != nil {
				ln.Close()
				return err
			}
			m.onClose(stopRedirects)
		}
		hs.TLSConfig = tlsSrv.Config
	}
	m.srv = weavehttp.Serve(hs, ln)
	m.shutdown = func() error {
		// Heartbeats turn 503 first so load balancers stop sending new
		// work; then in-flight requests finish before the databases close.
		log.Info("shutting down", "grace", f.shutdownGrace)
		nodes.SetReady(false)
		time.Sleep(f.shutdownGrace)
		if ps != nil {
			// Hijacked connections outlive hs.Shutdown: end them, so
			// browsers reconnect (to another process behind the load
			// balancer).
			ps.Close()
		}
		if err := m.srv.Shutdown(30 * time.Second); err != nil {
			return err
		}
		log.Info("stopped")
		return nil
	}
	return nil
}
