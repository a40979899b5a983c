package main

import (
	"context"

	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/internal/cli"
	"github.com/weave-sync/weave/sqlstore"
)

func (a *app) nodeCommand() *cli.Command {
	var db fleetDB
	f := fleet.NodeFlags{Redact: sqlstore.RedactURL, Health: db.db.ShardHealth}
	f.CheckShard = func(ctx context.Context, dsn string) (string, error) {
		sdb, be, err := db.db.OpenShard(ctx, dsn, true)
		if err != nil {
			return "", err
		}
		sdb.Close()
		return be.Name + " shard " + sqlstore.RedactURL(dsn), nil
	}
	c := cli.New("node", "add|list|set-state|drain ... [flags]", `Manage the storage nodes of the fleet (in the token database).
  weave node add URL --database-url DSN [--capacity N]
  weave node list
  weave node set-state URL up|backoff|draining|down [--retry-after S] [--backoff S]
  weave node drain URL [--to URL,...] [--parallel N]`)
	db.register(c)
	f.RegisterFlags(c)
	c.Run = func(args []string) error {
		if len(args) == 0 {
			return (&fleet.Admin{}).RunNode(a.ctx, args, &f) // its usage error, before a database is opened
		}
		return db.withAdmin(a, func(ctx context.Context, adm *fleet.Admin) error {
			return adm.RunNode(ctx, args, &f)
		})
	}
	return c
}
