package memcache_test

import (
	"context"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/memcache"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/storagetest"
)

// runConformance runs the Store conformance suite against the cache over
// one SQLite database, with cfg's pools.
func runConformance(t *testing.T, cfg memcache.Config) {
	dbPath := tempDB(t)
	cfg.Prefix = randomPrefix()
	obs := newObserver()
	cfg.Observer = obs
	s := newCache(t, openSQLite(t, dbPath), cfg)
	// Runs after the suite's parallel subtests: show that the cache took
	// part (the suite reads timestamps and hot records after writes).
	t.Cleanup(func() {
		t.Logf("primary lookups: %d hits, %d misses, %d bypassed", obs.get("primary", memcache.Hit),
			obs.get("primary", memcache.Miss), obs.get("primary", memcache.Bypass))
		if len(cfg.Servers) > 0 && obs.errors("primary") == 0 && obs.get("primary", memcache.Hit) == 0 {
			t.Error("the suite never hit the cache")
		}
	})
	storagetest.Run(t, func(*testing.T) weave.Store { return s },
		storagetest.WithBatchLifetime(func(t *testing.T, lifetime time.Duration) weave.Store {
			inner, err := sqlstore.OpenStore(context.Background(), "sqlite://"+dbPath, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{BatchLifetime: lifetime})
			if err != nil {
				t.Fatal(err)
			}
			// Same pools and prefix: the same data, cache included.
			return newCache(t, inner, cfg)
		}))
}

func TestConformance(t *testing.T) {
	mc := startMemcached(t)
	runConformance(t, memcache.Config{Servers: []string{mc.Addr()}})
}

func TestConformanceWithMirror(t *testing.T) {
	mc, mirror := startMemcached(t), startMemcached(t)
	runConformance(t, memcache.Config{Servers: []string{mc.Addr()}, MirrorServers: []string{mirror.Addr()}})
}

// TestConformanceCacheDown: with nothing listening on the pool's port,
// the store behaves exactly as the database does.
func TestConformanceCacheDown(t *testing.T) {
	runConformance(t, memcache.Config{Servers: []string{"127.0.0.1:" + itoa(freePort(t))}})
}
