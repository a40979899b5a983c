package main

import (
	"fmt"
	"strconv"

	"github.com/weave-sync/weave/memcache"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) cacheCommand() *cli.Command {
	db := &sqlstore.Config{}
	cf := &memcache.Config{}
	var to, users, publicURL string
	c := cli.New("cache", "warm --to primary|mirror [flags]",
		"Fill a memcached pool from the database, to cut over to a new cache without a cold-cache storm.\n"+
			"Run serve with --memcache OLD --memcache-mirror NEW, then `weave cache warm --to mirror`, then make NEW the --memcache.")
	db.RegisterFlags(c)
	cf.RegisterFlags(c)
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
		if !cf.On() {
			return fmt.Errorf("--memcache is required (and --memcache-mirror to warm the mirror)")
		}
		dbs, err := db.OpenPrepared(a.ctx, false)
		if err != nil {
			return err
		}
		store := sqlstore.NewStore(dbs.Storage, sqlstore.StoreOptions{})
		mc, err := cf.Open(publicURL, store)
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
		return mc.WarmAndReport(a.ctx, pool, uids, a.stdout, a.stderr)
	}
	return c
}
