package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/memcache"
	"github.com/weave-sync/weave/sqlstore"

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
	be, err := sqlstore.Lookup(url)
	if err != nil {
		return nil, err
	}
	db, err := be.Open(ctx, url, f.db.pool())
	if err != nil {
		return nil, fmt.Errorf("open token database %s: %w", sqlstore.RedactURL(url), err)
	}
	ms, err := be.MigrationsOf(sqlstore.SetTokens)
	if err == nil {
		err = db.Migrate(ctx, sqlstore.SetTokens, ms, nil)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("token database %s: %w", sqlstore.RedactURL(url), err)
	}
	return sqlstore.NewTokenDB(db, sqlstore.TokenDBOptions{}), nil
}

// openShardDB opens a node's shard database and brings its storage schema
// up to date (or, with migrate false, checks it).
func openShardDB(ctx context.Context, dsn string, f *dbFlags, migrate bool) (*sqlstore.DB, *sqlstore.Backend, error) {
	be, err := sqlstore.Lookup(dsn)
	if err != nil {
		return nil, nil, err
	}
	db, err := sqlstore.OpenSet(ctx, dsn, f.pool(), sqlstore.SetStorage, migrate)
	if err != nil {
		return nil, nil, fmt.Errorf("shard %s: %w", sqlstore.RedactURL(dsn), err)
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

// withAdmin runs do with the token database and a fleet.Admin over it,
// as the node and user commands do, and closes both after.
func (f *fleetDB) withAdmin(a *app, do func(ctx context.Context, tokens *sqlstore.TokenDB, adm *fleet.Admin) error) error {
	ctx := a.ctx
	tokens, err := f.openTokenDB(ctx)
	if err != nil {
		return err
	}
	defer tokens.Close()
	adm := &fleet.Admin{Migrator: f.migrator(tokens), Out: a.stdout, Progress: a.stderr}
	defer adm.Migrator.Close()
	return do(ctx, tokens, adm)
}

// deleter is the user deletion protocol over the token database; nodes,
// when set, are the ones this process serves.
func (f *fleetDB) deleter(tokens *sqlstore.TokenDB, nodes *fleet.NodeSet) *fleet.Deleter {
	return &fleet.Deleter{Migrator: func() *fleet.Migrator { return f.migrator(tokens) }, Nodes: nodes}
}

// fleetServe is the node wiring of `weave serve`: the node-state watcher
// and the set of nodes served, each built by fleet.NodeSet from a shard
// opened here, the cache of cacheFlags, and front (the storage API and the
// 1.1 front end, set by serve once they can be built).
type fleetServe struct {
	watcher *fleet.Watcher
	router  *fleet.Router
	set     *fleet.NodeSet
	front   func(n *fleet.Node) (fleet.NodeHandler, error)
}

func newFleetServe(f *serveFlags, dbs *databases, tokens *sqlstore.TokenDB, obs memcache.Observer, log *slog.Logger) *fleetServe {
	fs := &fleetServe{watcher: fleet.NewWatcher(tokens, f.stateRefresh, log.With("component", "fleet")), router: &fleet.Router{}}
	cfg := fleet.NodeSetConfig{
		OpenShard: func(ctx context.Context, n weave.Node) (fleet.Shard, error) {
			if n.DatabaseURL == dbs.storageURL {
				return nil, fmt.Errorf("--nodes: node %s uses this process's own storage database; give it its own shard", n.URL)
			}
			db, _, err := openShardDB(ctx, n.DatabaseURL, &f.db, f.migrate)
			if err != nil {
				return nil, err
			}
			return sqlstore.NewStore(db, sqlstore.StoreOptions{BatchLifetime: f.limits.BatchLifetime}), nil
		},
		Handler:    func(n *fleet.Node) (fleet.NodeHandler, error) { return fs.front(n) },
		Watcher:    fs.watcher,
		Router:     fs.router,
		PurgeEvery: f.purgeInterval,
		Log:        log,
	}
	if f.cache.servers != "" {
		cfg.Cache = func(nodeURL string, store weave.Store) (fleet.Cache, error) {
			return f.cache.open(nodeURL, store, obs)
		}
	}
	fs.set = fleet.NewNodeSet(cfg)
	return fs
}

// serve builds the process's own node over shard and the other nodes it
// serves (nodes: "" for none, "all", or comma-separated URLs), and returns
// the routing handler. It runs the watcher until ctx ends.
func (fs *fleetServe) serve(ctx context.Context, f *serveFlags, dbs *databases, shard fleet.Shard, tokens *sqlstore.TokenDB, log *slog.Logger) (http.Handler, error) {
	// Record this node's shard, so that operator tools (weave user
	// migrate, weave node drain) reach it.
	if own, err := tokens.NodeByURL(ctx, f.publicURL); err == nil {
		got, err := tokens.SetNodeDatabaseURL(ctx, own.ID, dbs.storageURL)
		if err != nil {
			return nil, fmt.Errorf("record the database of node %s: %w", own.URL, err)
		}
		if got != dbs.storageURL {
			log.Warn("fleet: the token database names another database for this node; operator tools will use that one",
				"node", own.URL, "recorded", sqlstore.RedactURL(got))
		}
	}
	own, err := fs.set.ServeOwn(ctx, f.publicURL, shard)
	if err != nil {
		return nil, err
	}
	follow, err := fs.set.AddNodes(ctx, tokens, f.nodes)
	if err != nil {
		fs.set.Close()
		return nil, err
	}
	if err := fs.watcher.Refresh(ctx); err != nil {
		log.Warn("fleet: first read of node states failed", "err", err)
	}
	go fs.watcher.Run(ctx)
	if follow {
		// Nodes added later (weave node add) are served as they appear,
		// not only after a restart: the token server may hand them new
		// users at once.
		go fs.set.Follow(ctx, f.stateRefresh)
		return fs.router, nil
	}
	if strings.TrimSpace(f.nodes) == "" {
		return own.Handler(), nil
	}
	return fs.router, nil
}
