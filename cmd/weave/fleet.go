package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tokenserver"

	"github.com/weave-sync/weave/internal/cli"
)

// fleetDB is how the node and user commands find the token database and
// the shards of nodes without their own database URL: as `weave serve`
// does (--token-database-url, else the storage database, else the data
// directory's weave.db).
type fleetDB struct {
	db     dbFlags
	settle time.Duration
}

func (f *fleetDB) register(c *cli.Command) {
	c.String(&f.db.dataDir, "data-dir", "./weave-data", "directory of the default SQLite database")
	c.Secret(&f.db.tokenURL, "token-database-url", "", "token server database (users and nodes) (default: as for weave serve: $WEAVE_DATABASE_URL, else weave.db in the data dir)")
	c.Int(&f.db.maxConns, "db-max-conns", 0, "connections per database pool (0: 2×CPUs, at least 4)").Min(0)
	c.Duration(&f.db.timeout, "db-timeout", 10*time.Second, "deadline of every database call").Min(time.Millisecond)
	c.Duration(&f.settle, "settle", 2*time.Second, "after marking a moved user, how long to wait for every serving process to see it before the old data goes (at least twice their --state-refresh)").Min(0)
	f.db.connMaxLifetime = 30 * time.Minute
}

// defaultStorageURL is the storage database `weave serve` uses by default,
// which is also its default token database.
func (f *fleetDB) defaultStorageURL() (string, error) {
	d := f.db
	d.databaseURL = os.Getenv("WEAVE_DATABASE_URL")
	return d.storageURL()
}

func (f *fleetDB) openTokenDB(ctx context.Context) (*sqlstore.TokenDB, error) {
	url := f.db.tokenURL
	if url == "" {
		var err error
		if url, err = f.defaultStorageURL(); err != nil {
			return nil, err
		}
	}
	be, err := backendFor(url)
	if err != nil {
		return nil, err
	}
	db, err := be.open(ctx, url, &f.db)
	if err != nil {
		return nil, fmt.Errorf("open token database %s: %w", be.redact(url), err)
	}
	ms, err := be.migrations(sqlstore.SetTokens)
	if err == nil {
		err = db.Migrate(ctx, sqlstore.SetTokens, ms, nil)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("token database %s: %w", be.redact(url), err)
	}
	return sqlstore.NewTokenDB(db, sqlstore.TokenDBOptions{}), nil
}

// openShardDB opens a node's shard database and brings its storage schema
// up to date (or, with migrate false, checks it).
func openShardDB(ctx context.Context, dsn string, f *dbFlags, migrate bool) (*sqlstore.DB, backend, error) {
	be, err := backendFor(dsn)
	if err != nil {
		return nil, be, err
	}
	open := func() (*sqlstore.DB, error) { return be.open(ctx, dsn, f) }
	db, err := sqlstore.OpenSet(ctx, open, be.migrations, sqlstore.SetStorage, migrate)
	if err != nil {
		return nil, be, fmt.Errorf("shard %s: %w", be.redact(dsn), err)
	}
	return db, be, nil
}

// shardURL is the database of a node, as recorded in the token database
// by `weave node add` or by the `weave serve` that serves the node.
func (f *fleetDB) shardURL(n weave.Node) (string, error) {
	if n.DatabaseURL == "" {
		return "", fmt.Errorf("node %s has no database URL recorded: start its `weave serve` once (it records its database) or re-add it with `weave node add URL --database-url DSN`", n.URL)
	}
	return n.DatabaseURL, nil
}

func (f *fleetDB) migrator(dir fleet.Directory) *fleet.Migrator {
	return &fleet.Migrator{
		Dir:    dir,
		Settle: f.settle,
		Open: func(ctx context.Context, n weave.Node) (fleet.Shard, error) {
			dsn, err := f.shardURL(n)
			if err != nil {
				return nil, err
			}
			db, _, err := openShardDB(ctx, dsn, &f.db, true)
			if err != nil {
				return nil, err
			}
			return sqlstore.NewStore(db, sqlstore.StoreOptions{}), nil
		},
	}
}

// parseSeconds reads "30", "30s" or "5m".
func parseSeconds(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--%s %q: want seconds, e.g. 30 or 5m", name, s)
	}
	return d.Round(time.Second), nil
}

// fleetServe is the multi-node part of `weave serve`: the node-state
// watcher and the extra nodes' servers.
type fleetServe struct {
	watcher *fleet.Watcher
	// wrapNode, when set, puts another front end (Sync 1.1) before
	// each extra node's server.
	wrapNode func(nodeURL string, store weave.Store, status legacy.NodeStatus, next http.Handler) http.Handler

	mu      sync.Mutex
	extra   []*weavehttp.Server
	served  map[string]bool // normalized URLs of the nodes served, own included
	closers []func() error
	closed  bool
}

// newFleetServe starts watching node states for the process's own node
// (publicURL, whose shard is store).
func newFleetServe(tokens *sqlstore.TokenDB, publicURL string, store *sqlstore.Store, refresh time.Duration, log *slog.Logger) *fleetServe {
	fs := &fleetServe{watcher: fleet.NewWatcher(tokens, refresh, log.With("component", "fleet"))}
	fs.watcher.Watch(publicURL, store)
	return fs
}

// handler opens the shards of the other nodes this process serves (nodes:
// "" for none, "all", or comma-separated URLs), builds their servers from
// base, and returns the routing handler. It runs the watcher until ctx ends.
func (fs *fleetServe) handler(ctx context.Context, nodes string, mainSrv http.Handler, base weavehttp.Config, masters []string,
	dbs *databases, f *serveFlags, tokens *sqlstore.TokenDB, log *slog.Logger) (http.Handler, error) {
	// Record this node's shard, so that operator tools (weave user
	// migrate, weave node drain) reach it.
	if own, err := tokens.NodeByURL(ctx, f.publicURL); err == nil {
		got, err := tokens.SetNodeDatabaseURL(ctx, own.ID, dbs.storageURL)
		if err != nil {
			return nil, fmt.Errorf("record the database of node %s: %w", own.URL, err)
		}
		if got != dbs.storageURL {
			log.Warn("fleet: the token database names another database for this node; operator tools will use that one",
				"node", own.URL, "recorded", dbs.storageBE.redact(got))
		}
	}
	rt := &fleet.Router{Fallback: mainSrv}
	fs.served = map[string]bool{fleet.NormalizeURL(f.publicURL): true}
	sc := shardConfig{base: base, masters: masters, dbs: dbs, f: f, log: log}
	if err := fs.addNodes(ctx, rt, nodes, sc, tokens); err != nil {
		fs.close()
		return nil, err
	}
	if err := fs.watcher.Refresh(ctx); err != nil {
		log.Warn("fleet: first read of node states failed", "err", err)
	}
	go fs.watcher.Run(ctx)
	if strings.TrimSpace(nodes) == "all" {
		// Nodes added later (weave node add) are served as they appear,
		// not only after a restart: the token server may hand them new
		// users at once.
		go fs.followNodes(ctx, rt, sc, f.stateRefresh)
		return rt, nil
	}
	if len(fs.extra) == 0 {
		return mainSrv, nil
	}
	return rt, nil
}

// shardConfig is what serving one more node needs.
type shardConfig struct {
	base    weavehttp.Config
	masters []string
	dbs     *databases
	f       *serveFlags
	log     *slog.Logger
}

// followNodes serves, under --nodes all, every node with a database that
// appears in the token database after the start, checking the node states
// the watcher keeps at each refresh. A node whose shard cannot be opened is
// retried, with its error logged when it changes.
func (fs *fleetServe) followNodes(ctx context.Context, rt *fleet.Router, sc shardConfig, refresh time.Duration) {
	if refresh <= 0 {
		refresh = fleet.DefaultRefresh
	}
	t := time.NewTicker(refresh)
	defer t.Stop()
	lastErr := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range fs.watcher.Nodes() {
			if n.DatabaseURL == "" || fs.isServed(n.URL) {
				continue
			}
			err := fs.addNode(ctx, rt, n, sc)
			switch {
			case err == nil:
				delete(lastErr, n.URL)
			case ctx.Err() != nil:
				return
			case lastErr[n.URL] != err.Error():
				lastErr[n.URL] = err.Error()
				sc.log.Error("fleet: cannot serve a new node; retrying", "node", n.URL, "err", err)
			}
		}
	}
}

func (fs *fleetServe) isServed(url string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.served[fleet.NormalizeURL(url)]
}

func (fs *fleetServe) addNodes(ctx context.Context, rt *fleet.Router, nodes string, sc shardConfig, tokens *sqlstore.TokenDB) error {
	nodes = strings.TrimSpace(nodes)
	if nodes == "" {
		return nil
	}
	all, err := tokens.Nodes(ctx)
	if err != nil {
		return err
	}
	var want []weave.Node
	if nodes == "all" {
		for _, n := range all {
			if n.DatabaseURL != "" {
				want = append(want, n)
			}
		}
	} else {
		for _, u := range cli.List(nodes) {
			n, err := tokens.NodeByURL(ctx, strings.TrimRight(u, "/"))
			if err != nil {
				return fmt.Errorf("--nodes: node %s: %w (add it with `weave node add`)", u, err)
			}
			want = append(want, n)
		}
	}
	for _, n := range want {
		if fs.isServed(n.URL) {
			continue // the process's own node
		}
		if err := fs.addNode(ctx, rt, n, sc); err != nil {
			return err
		}
	}
	return nil
}

// addNode opens node n's shard and routes its requests to a server of its
// own.
func (fs *fleetServe) addNode(ctx context.Context, rt *fleet.Router, n weave.Node, sc shardConfig) error {
	if n.DatabaseURL == "" {
		return fmt.Errorf("--nodes: node %s has no database URL (set one with `weave node add URL --database-url DSN`)", n.URL)
	}
	if n.DatabaseURL == sc.dbs.storageURL {
		return fmt.Errorf("--nodes: node %s uses this process's own storage database; give it its own shard", n.URL)
	}
	db, _, err := openShardDB(ctx, n.DatabaseURL, &sc.f.db, sc.f.migrate)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.URL, err)
	}
	store := sqlstore.NewStore(db, sqlstore.StoreOptions{BatchLifetime: sc.f.limits.BatchLifetime})
	secrets, err := tokenserver.NodeSecrets(sc.masters, n.URL, false)
	if err != nil {
		store.Close()
		return err
	}
	cfg := sc.base
	cfg.Store = store
	cfg.PublicURL = n.URL
	cfg.Secrets = secrets
	cfg.TokenServer = nil
	cfg.Node = fs.watcher.Status(n.URL)
	cfg.Logger = sc.base.Logger.With("node", n.URL)
	srv, err := weavehttp.New(cfg)
	if err != nil {
		store.Close()
		return fmt.Errorf("node %s: %w", n.URL, err)
	}
	var h http.Handler = srv
	if fs.wrapNode != nil {
		h = fs.wrapNode(n.URL, store, fs.watcher, srv)
	}
	fs.mu.Lock()
	if fs.closed {
		fs.mu.Unlock()
		store.Close()
		return context.Canceled
	}
	fs.closers = append(fs.closers, store.Close)
	fs.served[fleet.NormalizeURL(n.URL)] = true
	fs.extra = append(fs.extra, srv)
	fs.mu.Unlock()
	fs.watcher.Watch(n.URL, store)
	if err := rt.Add(n.URL, h); err != nil {
		return err
	}
	go purgeLoop(ctx, store, sc.f.purgeInterval, sc.log.With("node", n.URL))
	sc.log.Info("serving node", "url", n.URL, "state", n.State)
	return nil
}

// setReady switches the extra nodes' heartbeats along with the main one.
func (fs *fleetServe) setReady(ready bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, s := range fs.extra {
		s.SetReady(ready)
	}
}

func (fs *fleetServe) close() {
	fs.mu.Lock()
	closers := fs.closers
	fs.closers, fs.closed = nil, true
	fs.mu.Unlock()
	for _, c := range closers {
		c()
	}
}
