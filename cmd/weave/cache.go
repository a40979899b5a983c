package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/memcache"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

// cacheFlags are the memcached settings of serve and cache warm.
type cacheFlags struct {
	servers, mirror string
	timeout         time.Duration
}

func (f *cacheFlags) register(c *cli.Command) {
	c.String(&f.servers, "memcache", "", "memcached servers HOST:PORT[,HOST:PORT…] caching collection timestamps, usage and meta/global + crypto/keys (default: no cache)")
	c.String(&f.mirror, "memcache-mirror", "", "second pool every write and invalidation also goes to, for moving to a new cache (reads stay on --memcache)")
	c.Duration(&f.timeout, "memcache-timeout", 150*time.Millisecond, "deadline of one memcached round trip; past it the database answers").Min(time.Millisecond)
}

// check refuses a mirror without a primary pool.
func (f *cacheFlags) check() error {
	if f.servers == "" && f.mirror != "" {
		return fmt.Errorf("--memcache-mirror needs --memcache")
	}
	return nil
}

// open puts the cache decorator over the store of the node at nodeURL.
// Each node has keys of its own (cachePrefix), the same in every process
// serving it, so that a write through any of them invalidates them all.
func (f *cacheFlags) open(nodeURL string, inner weave.Store, obs memcache.Observer) (*memcache.Store, error) {
	return memcache.New(inner, memcache.Config{
		Servers:       cli.List(f.servers),
		MirrorServers: cli.List(f.mirror),
		Prefix:        cachePrefix(nodeURL),
		Timeout:       f.timeout,
		Observer:      obs,
	})
}

// cachePrefix starts the memcached keys of the node at nodeURL: the default
// prefix and a digest of the node's normalised URL. A user keeps its uid when
// moved, so nodes sharing a memcached must not share keys: a process that
// has not yet seen a move could otherwise fill the new node's keys from the
// old node's data.
func cachePrefix(nodeURL string) string {
	sum := sha256.Sum256([]byte(weave.NodeURLKey(nodeURL)))
	return memcache.DefaultPrefix + base64.RawURLEncoding.EncodeToString(sum[:9]) + ":"
}

func (a *app) cacheCommand() *cli.Command {
	db := &dbFlags{}
	cf := &cacheFlags{}
	var to, users, publicURL string
	c := cli.New("cache", "warm --to primary|mirror [flags]",
		"Fill a memcached pool from the database, to cut over to a new cache without a cold-cache storm.\n"+
			"Run serve with --memcache OLD --memcache-mirror NEW, then `weave cache warm --to mirror`, then make NEW the --memcache.")
	db.register(c)
	cf.register(c)
	c.String(&to, "to", "mirror", "pool to fill: primary or mirror")
	c.String(&users, "users", "", "comma-separated uids to warm (default: every user in the storage database)")
	c.String(&publicURL, "public-url", "http://127.0.0.1:8000", "public URL of the node whose database this is, as `weave serve` has it (each node has cache keys of its own)")
	c.Run = func(args []string) error {
		if len(args) != 1 || args[0] != "warm" {
			return fmt.Errorf("want `weave cache warm --to primary|mirror` (see `weave cache --help`)")
		}
		pool, err := memcache.ParsePool(to)
		if err != nil {
			return err
		}
		if cf.servers == "" {
			return fmt.Errorf("--memcache is required (and --memcache-mirror to warm the mirror)")
		}
		dbs, err := openDatabases(a.ctx, db)
		if err != nil {
			return err
		}
		if err := dbs.prepare(a.ctx, false, nil); err != nil {
			dbs.Close()
			return err
		}
		store := sqlstore.NewStore(dbs.storage, sqlstore.StoreOptions{})
		if err := cf.check(); err != nil {
			store.Close()
			return err
		}
		mc, err := cf.open(publicURL, store, nil)
		if err != nil {
			store.Close()
			return err
		}
		defer mc.Close()
		var uids []int64
		if users != "" {
			for _, u := range cli.List(users) {
				uid, err := strconv.ParseInt(u, 10, 64)
				if err != nil || uid < 0 {
					return fmt.Errorf("--users: %q is not a uid", u)
				}
				uids = append(uids, uid)
			}
		} else if uids, err = store.UserIDs(a.ctx); err != nil {
			return err
		}
		start := time.Now()
		stats, err := mc.Warm(a.ctx, pool, slices.Values(uids), len(uids), func(done, total int) {
			fmt.Fprintf(a.stderr, "\rwarming %s: %d/%d users (%.0fs)", pool, done, total, time.Since(start).Seconds())
		})
		fmt.Fprintln(a.stderr)
		if err != nil {
			return fmt.Errorf("warm stopped: %w (running it again is safe)", err)
		}
		fmt.Fprintf(a.stdout, "warmed %s pool: %d users, %d filled, %d skipped in %s\n", pool, stats.Users, stats.Filled, stats.Skipped, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return c
}
