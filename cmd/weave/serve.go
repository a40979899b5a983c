package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/fxa"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/routes"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tlsserve"
	"github.com/weave-sync/weave/tokenserver"

	"github.com/weave-sync/weave/internal/cli"
)

type serveFlags struct {
	db             dbFlags
	cache          cacheFlags
	observe        observeFlags
	tls            tlsserve.Config
	accounts       accountsFlags
	push           pushFlags   // push.go
	legacy         legacyFlags // legacy.go
	conn           listenFlags
	listen         string
	publicURL      string
	masterSecret   string
	jwksFile       string
	oauthURL       string
	migrate        bool
	newUsers       bool
	nodeCapacity   int64
	tokenDuration  time.Duration
	trustedProxies string
	hawkSkew       time.Duration
	corsOrigins    string
	quotaBytes     int64
	limits         weave.Limits
	purgeInterval  time.Duration
	shutdownGrace  time.Duration
	logFormat      string
	logLevel       string
	nodes          string        // fleet.go
	stateRefresh   time.Duration // fleet.go
}

// Main is `weave serve`: ParseFlags reads its flags (and their WEAVE_*
// variables), Run builds the server and starts serving, Close shuts it down
// gracefully. The end-to-end tests run it in-process.
type Main struct {
	Stdout, Stderr io.Writer
	cmd            *cli.Command
	f              *serveFlags
	log            *slog.Logger
	addr           net.Addr
	errc           chan error // the listener's end
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
func (m *Main) Addr() net.Addr { return m.addr }

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
	case err := <-m.errc:
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
	f.db.register(c)
	f.cache.register(c)
	f.observe.register(c)
	registerTLS(c, &f.tls)
	f.accounts.register(c)
	f.push.register(c)
	f.legacy.register(c)
	f.conn.register(c)
	c.Secret(&f.masterSecret, "master-secret", "", "secret that signs tokens; several, comma-separated, newest last, for rotation (default: generated on first start, kept in DATA_DIR/master-secret)")
	c.String(&f.jwksFile, "fxa-jwks-file", "", "JWKS document of trusted FxA signing keys (default: fetch them from the FxA OAuth server)")
	c.String(&f.oauthURL, "fxa-oauth-url", "https://oauth.accounts.firefox.com", "FxA OAuth server: its /v1/jwks keys and /v1/verify fallback")
	c.Bool(&f.migrate, "migrate", true, "apply database schema migrations on start (false: refuse to start unless the schema is current)")
	c.Bool(&f.newUsers, "new-users", true, "let the token server assign new users")
	c.Int64(&f.nodeCapacity, "node-capacity", 100000, "users this node takes").Min(0)
	c.Duration(&f.tokenDuration, "token-duration", time.Hour, "lifetime of the tokens the token server issues").Min(time.Second)
	c.String(&f.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDRs whose X-Forwarded-Proto/Host/Port are trusted (only used without --public-url)")
	c.Duration(&f.hawkSkew, "hawk-skew", 60*time.Second, "accepted clock difference of Hawk-signed requests (1s to 1h; it also bounds how long nonces are remembered against replay)").Min(time.Second).Max(time.Hour)
	c.String(&f.corsOrigins, "cors-origins", "", "comma-separated origins (scheme://host[:port], or *) whose web pages may call the storage and token APIs (CORS; default: none)")
	c.Int64(&f.quotaBytes, "quota-bytes", 0, "per-user storage quota in bytes (0: none)").Min(0)
	def := weave.DefaultLimits()
	c.Int64(&f.limits.MaxRequestBytes, "max-request-bytes", def.MaxRequestBytes, "largest request body accepted").Min(1)
	c.Int64(&f.limits.MaxPostRecords, "max-post-records", def.MaxPostRecords, "most records in one POST").Min(1)
	c.Int64(&f.limits.MaxPostBytes, "max-post-bytes", def.MaxPostBytes, "most payload bytes in one POST").Min(1)
	c.Int64(&f.limits.MaxTotalRecords, "max-total-records", def.MaxTotalRecords, "most records in one batch").Min(1)
	c.Int64(&f.limits.MaxTotalBytes, "max-total-bytes", def.MaxTotalBytes, "most payload bytes in one batch").Min(1)
	c.Int64(&f.limits.MaxRecordPayloadBytes, "max-record-payload-bytes", def.MaxRecordPayloadBytes, "largest payload of one record").Min(1)
	c.Duration(&f.limits.BatchLifetime, "batch-lifetime", def.BatchLifetime, "how long an uncommitted batch upload stays usable").Min(time.Second)
	c.Duration(&f.purgeInterval, "purge-interval", 15*time.Minute, "how often expired records and batches are purged (0: never; see `weave db purge`)").Min(0)
	c.Duration(&f.shutdownGrace, "shutdown-grace", 2*time.Second, "on SIGTERM, how long heartbeats answer 503 before the listener closes, so load balancers drain").Min(0)
	c.String(&f.logFormat, "log-format", "text", "log format: text or json")
	c.String(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	c.String(&f.nodes, "nodes", "", "other storage nodes this process serves besides its own: \"all\" (every node of the token database with a database URL) or comma-separated node URLs; requests are routed by Host and path prefix (see weave node --help)")
	c.Duration(&f.stateRefresh, "state-refresh", time.Second, "how often node states and user move marks are re-read from the databases").Min(10 * time.Millisecond)
	return c
}

func registerTLS(c *cli.Command, f *tlsserve.Config) {
	c.String(&f.CertFile, "tls-cert", "", "serve HTTPS with this PEM certificate chain (with --tls-key); re-read on SIGHUP and when the files change")
	c.String(&f.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	c.String(&f.ACMEDomains, "acme-domain", "", "serve HTTPS with certificates obtained automatically over ACME for these comma-separated domains (TLS-ALPN-01 on --listen, which must be reachable on port 443, or HTTP-01 on --http-redirect-listen at port 80); account and certificates are kept in DATA_DIR/acme")
	c.String(&f.ACMEEmail, "acme-email", "", "contact address given to the ACME CA (expiry notices)")
	c.String(&f.ACMEDirectory, "acme-directory-url", tlsserve.DefaultACMEDirectory, "ACME directory of the CA (e.g. Let's Encrypt staging, or a private CA)")
	c.String(&f.ACMECAFile, "acme-ca-file", "", "PEM certificates to trust, besides the system's, when talking to the ACME server (a private CA, or Pebble in tests)")
	c.String(&f.RedirectListen, "http-redirect-listen", "", "also listen on this address (e.g. :80) with plain HTTP that only redirects to the HTTPS public URL (and answers ACME HTTP-01 challenges with --acme-domain)")
}

// Run builds the server from the flags and starts serving; it returns once
// the listener is open. Call Close even when it fails.
func (m *Main) Run(ctx context.Context) error {
	f := m.f
	log, err := cli.Logger(f.logFormat, f.logLevel, os.Stderr)
	if err != nil {
		return err
	}
	m.log = log
	obs, err := newObservability(&f.observe, log)
	if err != nil {
		return err
	}
	if err := f.tls.Check(); err != nil {
		return err
	}
	if f.publicURL == "" {
		if f.publicURL, err = f.tls.DefaultPublicURL(f.listen); err != nil {
			return err
		}
	}
	f.publicURL = weave.CleanNodeURL(f.publicURL)
	if u, err := url.Parse(f.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--public-url %q: want an http(s) URL such as https://sync.example.com", f.publicURL)
	} else if f.tls.On() && u.Scheme != "https" {
		return fmt.Errorf("--public-url %q: weave serves HTTPS itself here (--tls-cert or --acme-domain), so clients reach it over https", f.publicURL)
	}
	var tlsSrv *tlsserve.Serving
	if f.tls.On() {
		f.tls.UserAgent = "weave/" + version
		if tlsSrv, err = f.tls.Setup(ctx, f.db.dataDir, log); err != nil {
			return err
		}
		m.onClose(tlsSrv.Stop)
	}
	trusted, err := cli.Prefixes(f.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	secretText, err := tokenserver.MasterSecret(f.masterSecret, f.db.dataDir)
	if err != nil {
		return err
	}
	secrets := cli.List(secretText)

	dbs, err := openDatabases(ctx, &f.db)
	if err != nil {
		return err
	}
	m.onClose(func() { dbs.Close() })
	if err := dbs.prepare(ctx, f.migrate, func(set string, m sqlstore.Migration) {
		log.Info("applying migration", "set", set, "migration", m.Name)
	}); err != nil {
		return err
	}
	if err := f.cache.check(); err != nil {
		return err
	}
	tokenDB := sqlstore.NewTokenDB(dbs.tokens, sqlstore.TokenDBOptions{KeepOpen: true})
	fs := newFleetServe(f, dbs, tokenDB, obs.m.CacheObserver(), log)
	// A deleted account's data goes at once; the nodes served here refuse
	// its uid at once too.
	deleter := (&fleetDB{db: f.db}).deleter(tokenDB, fs.set)

	var acc *accounts.Service
	var verifier tokenserver.Verifier
	if f.accounts.enabled {
		if acc, err = newBuiltinAccounts(ctx, &f.accounts, dbs, f.migrate, f.publicURL, trusted, deleter, log); err != nil {
			return err
		}
		verifier, err = acc.TokenVerifier(f.jwksFile)
	} else {
		verifier, err = newFxAVerifier(f.jwksFile, f.oauthURL)
	}
	if err != nil {
		return err
	}
	ts := tokenserver.New(tokenserver.Config{
		DB:                  tokenDB,
		Verifier:            verifier,
		Secrets:             secrets,
		TokenDuration:       f.tokenDuration,
		NewUsersDisabled:    !f.newUsers,
		NodeType:            dbs.storageBE.Name,
		DefaultNodeURL:      f.publicURL,
		DefaultNodeCapacity: f.nodeCapacity,
		Logger:              log.With("component", "tokenserver"),
		Observer:            obs.m,
	})
	if err := ts.Init(ctx); err != nil {
		return fmt.Errorf("token server: %w", err)
	}
	limits := f.limits
	limits.QuotaBytes = f.quotaBytes
	lg, err := newLegacy(&f.legacy, tokenDB, f.publicURL, f.quotaBytes, f.newUsers, deleter, obs.m, log)
	if err != nil {
		return err
	}
	// Every node's front end: the storage API 1.5 (the own node's also
	// serves the token server), behind the 1.1 front end when it is on.
	fs.front = func(n *fleet.Node) (fleet.NodeHandler, error) {
		nodeSecrets, err := tokenserver.NodeSecrets(secrets, n.URL, false)
		if err != nil {
			return nil, err
		}
		cfg := weavehttp.Config{
			Store:          n.Store,
			Limits:         limits,
			PublicURL:      n.URL,
			Secrets:        nodeSecrets,
			TrustedProxies: trusted,
			Hawk:           weavehttp.HawkConfig{Skew: f.hawkSkew},
			Logger:         log,
			Version:        version,
			Commit:         commit,
			Node:           n.Status,
			Observer:       obs.m.HTTPObserver(),
			CORSOrigins:    strings.Split(f.corsOrigins, ","),
		}
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
			rn.Legacy = func(next http.Handler) http.Handler { return lg.svc.Storage(n.URL, n.Store, n.Status, next) }
		}
		return nodeFront{Handler: routes.NodeHandler(rn), Server: rn.API}, nil
	}
	fleetCtx, stopFleet := context.WithCancel(ctx)
	m.onClose(stopFleet)
	shard := sqlstore.NewStore(dbs.storage, sqlstore.StoreOptions{BatchLifetime: f.limits.BatchLifetime})
	handler, err := fs.serve(fleetCtx, f, dbs, shard, tokenDB, log)
	if err != nil {
		return err
	}
	m.onClose(func() { fs.set.Close() })

	surfaces := routes.Process{PublicURL: f.publicURL, Nodes: handler, Metrics: obs.m, Admin: obs.admin(fleetCtx, false)}
	if acc != nil {
		surfaces.Accounts = acc.Handler()
		go fleet.Every(fleetCtx, f.purgeInterval, func() { // expired tokens and codes
			if _, err := acc.Purge(fleetCtx); err != nil {
				log.Warn("purge of expired account tokens failed; will retry", "err", err)
			}
		})
		m.onClose(func() { closeAccounts(acc) })
	}
	var ps *builtinPush
	if f.push.enabled {
		if ps, err = newBuiltinPush(ctx, &f.push, dbs, f.migrate, f.publicURL, secrets, obs.m, log); err != nil {
			return err
		}
		surfaces.Push = routes.Push{WebSocket: ps.svc.Handler(), Routes: ps.svc.Routes()}
		go ps.svc.Run(fleetCtx)
	}
	if lg != nil {
		surfaces.LegacyUsers = lg.svc.UserAPI(handler)
	}
	if err := obs.watch(dbs, tokenDB.Nodes); err != nil {
		return err
	}
	stopMetrics, err := obs.serveMetrics(fleetCtx, &f.conn)
	if err != nil {
		return err
	}
	m.onClose(stopMetrics)

	ln, err := f.conn.listen(f.listen, trusted, log)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another weave running? choose another --listen)", f.listen, err)
	}
	hs := f.conn.server(routes.Handler(surfaces), log)
	fmt.Fprintf(m.Stdout, "weave %s listening on %s (public URL %s, database %s)\n", version, ln.Addr(), f.publicURL, sqlstore.RedactURL(dbs.storageURL))
	if acc != nil {
		accounts.WriteFirefoxPrefs(m.Stdout, f.publicURL)
	} else {
		tokenserver.WriteFirefoxPrefs(m.Stdout, f.publicURL)
	}
	if ps != nil {
		ps.svc.WriteFirefoxPrefs(m.Stdout)
	}
	if lg != nil {
		fmt.Fprintf(m.Stdout, "Sync 1.1 is on (--legacy-signup %s). Point Pale Moon or Basilisk at it: in the Sync setup choose a custom server and enter %s/\n", f.legacy.signup, f.publicURL)
	}

	m.addr, m.errc = ln.Addr(), make(chan error, 1)
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
		go func() { m.errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { m.errc <- hs.Serve(ln) }()
	}
	m.shutdown = func() error {
		// Heartbeats turn 503 first so load balancers stop sending new
		// work; then in-flight requests finish before the databases close.
		log.Info("shutting down", "grace", f.shutdownGrace)
		fs.set.SetReady(false)
		time.Sleep(f.shutdownGrace)
		if ps != nil {
			// Hijacked connections outlive hs.Shutdown: end them, so
			// browsers reconnect (to another process behind the load
			// balancer).
			ps.svc.Close()
		}
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := hs.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		if err := <-m.errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		log.Info("stopped")
		return nil
	}
	return nil
}

func newFxAVerifier(jwksFile, oauthURL string) (*fxa.Verifier, error) {
	opts := fxa.Options{ServerURL: oauthURL}
	if jwksFile != "" {
		keys, err := fxa.LoadJWKSFile(jwksFile)
		if err != nil {
			return nil, fmt.Errorf("--fxa-jwks-file: %w", err)
		}
		opts.Keys = keys
	}
	v, err := fxa.NewVerifier(opts)
	if err != nil {
		return nil, fmt.Errorf("FxA verifier: %w", err)
	}
	return v, nil
}

// nodeFront is a node's storage API behind its 1.1 front end.
type nodeFront struct {
	http.Handler
	*weavehttp.Server
}

func (f nodeFront) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.Handler.ServeHTTP(w, r) }
