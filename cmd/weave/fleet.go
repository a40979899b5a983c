package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

// fleetDB is how the node, user, push and import commands find the token
// database and the nodes' shards: as `weave serve` does.
type fleetDB struct {
	db        sqlstore.Config
	settle    time.Duration
	heartbeat time.Duration
}

func (f *fleetDB) register(c *cli.Command) {
	f.db.RegisterTokenFlags(c)
	c.Duration(&f.settle, "settle", 2*time.Second, "after marking a moved user, how long to wait for every serving process to see it before the old data goes (at least twice their --state-refresh)").Min(0)
	c.Duration(&f.heartbeat, "heartbeat", fleet.DefaultHeartbeat, "how often a running move renews its journal row, which tells the serving processes it is alive (keep it well below their --resume-moves-after)").Min(10 * time.Millisecond)
}

func (f *fleetDB) migrator(dir fleet.Directory) *fleet.Migrator {
	return &fleet.Migrator{
		Dir:       dir,
		Settle:    f.settle,
		Heartbeat: f.heartbeat,
		Open: func(ctx context.Context, n weave.Node) (fleet.Shard, error) {
			dsn, err := fleet.ShardURL(n)
			if err != nil {
				return nil, err
			}
			db, _, err := f.db.OpenShard(ctx, dsn, true)
			if err != nil {
				return nil, err
			}
			return sqlstore.NewStore(db, sqlstore.StoreOptions{}), nil
		},
	}
}

// withAdmin runs do with a fleet.Admin over the token database,
// as the node and user commands do, and closes both after.
func (f *fleetDB) withAdmin(a *app, do func(ctx context.Context, adm *fleet.Admin) error) error {
	tokens, err := f.db.OpenTokenDB(a.ctx)
	if err != nil {
		return err
	}
	defer tokens.Close()
	adm := &fleet.Admin{Migrator: f.migrator(tokens), Out: a.stdout, Progress: a.stderr}
	defer adm.Migrator.Close()
	return do(a.ctx, adm)
}

// deleter is the user deletion protocol over the token database; nodes,
// when set, are the ones this process serves.
func (f *fleetDB) deleter(tokens *sqlstore.TokenDB, nodes *fleet.NodeSet) *fleet.Deleter {
	return &fleet.Deleter{Migrator: func() *fleet.Migrator { return f.migrator(tokens) }, Nodes: nodes}
}

// newNodeSet is the node builder of `weave serve`: shards opened here, the
// cache of --memcache, and front (the storage API and the 1.1 front end,
// set by serve once they can be built).
func newNodeSet(f *serveFlags, dbs *sqlstore.Databases, tokens *sqlstore.TokenDB, front *func(*fleet.Node) (fleet.NodeHandler, error), log *slog.Logger) *fleet.NodeSet {
	cfg := fleet.NodeSetConfig{
		OpenShard: func(ctx context.Context, n weave.Node) (fleet.Shard, error) {
			if n.DatabaseURL == dbs.StorageURL {
				return nil, fmt.Errorf("--nodes: node %s uses this process's own storage database; give it its own shard", n.URL)
			}
			db, _, err := f.db.OpenShard(ctx, n.DatabaseURL, f.migrate)
			if err != nil {
				return nil, err
			}
			return sqlstore.NewStore(db, sqlstore.StoreOptions{BatchLifetime: f.http.Limits.BatchLifetime}), nil
		},
		Handler:    func(n *fleet.Node) (fleet.NodeHandler, error) { return (*front)(n) },
		Watcher:    fleet.NewWatcher(tokens, f.fleet.StateRefresh, log.With("component", "fleet")),
		Router:     &fleet.Router{},
		PurgeEvery: f.fleet.PurgeInterval,
		Log:        log,
	}
	if f.cache.On() {
		cfg.Cache = func(nodeURL string, store weave.Store) (fleet.Cache, error) { return f.cache.Open(nodeURL, store) }
	}
	return fleet.NewNodeSet(cfg)
}

// serveNodes records the own node's shard, so that operator tools (weave
// user migrate, weave node drain) reach it, and serves the nodes.
func serveNodes(ctx context.Context, f *serveFlags, set *fleet.NodeSet, dbs *sqlstore.Databases, shard fleet.Shard, tokens *sqlstore.TokenDB, log *slog.Logger) (http.Handler, error) {
	if own, err := tokens.NodeByURL(ctx, f.publicURL); err == nil {
		got, err := tokens.SetNodeDatabaseURL(ctx, own.ID, dbs.StorageURL)
		if err != nil {
			return nil, fmt.Errorf("record the database of node %s: %w", own.URL, err)
		}
		if got != dbs.StorageURL {
			log.Warn("fleet: the token database names another database for this node; operator tools will use that one",
				"node", own.URL, "recorded", sqlstore.RedactURL(got))
		}
	}
	return set.Serve(ctx, tokens, f.publicURL, shard, f.fleet.Nodes, f.fleet.StateRefresh)
}

// resumeMoves runs the fleet.Resumer of `weave serve` until ctx ends: it
// finishes the user moves whose mover died.
func resumeMoves(ctx context.Context, f *serveFlags, tokens *sqlstore.TokenDB, obs *metrics.Metrics, m *Main, log *slog.Logger) {
	// The settle of `weave user migrate`, or longer when this fleet
	// refreshes more slowly.
	mig := (&fleetDB{db: f.db, settle: max(2*time.Second, 2*f.fleet.StateRefresh)}).migrator(tokens)
	mig.Heartbeat = min(fleet.DefaultHeartbeat, f.fleet.ResumeMovesAfter/4)
	r := &fleet.Resumer{
		Migrator: mig,
		After:    f.fleet.ResumeMovesAfter,
		Log:      log.With("component", "fleet"),
		OnResume: func(_ fleet.Result, err error) { obs.MoveResumed(err == nil) },
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	// A move in progress stops (the journal keeps it for another process)
	// before its shards close.
	m.onClose(func() {
		cancel()
		<-done
		mig.Close()
	})
}
