package main

import (
	"fmt"

	"github.com/weave-sync/weave/memcache"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) cacheCommand() *cli.Command {
	db := &sqlstore.Config{}
	w := &memcache.WarmCommand{}
	c := cli.New("cache", "warm --to primary|mirror [flags]",
		"Fill a memcached pool from the database, to cut over to a new cache without a cold-cache storm.\n"+
			"Run serve with --memcache OLD --memcache-mirror NEW, then `weave cache warm --to mirror`, then make NEW the --memcache.")
	db.RegisterFlags(c)
	w.RegisterFlags(c)
	c.Run = func(args []string) error {
		if len(args) != 1 || args[0] != "warm" {
			return fmt.Errorf("want `weave cache warm --to primary|mirror` (see `weave cache --help`)")
		}
		pool, err := w.Pool()
		if err != nil {
			return err
		}
		dbs, err := db.OpenPrepared(a.ctx, false)
		if err != nil {
			return err
		}
		return w.Run(a.ctx, pool, sqlstore.NewStore(dbs.Storage, sqlstore.StoreOptions{}), a.stdout, a.stderr)
	}
	return c
}
