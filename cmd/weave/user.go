package main

import (
	"context"

	"github.com/weave-sync/weave/fleet"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) userCommand() *cli.Command {
	var db fleetDB
	var f fleet.UserFlags
	c := cli.New("user", "show|migrate|delete ... [flags]", `Inspect, move and delete sync users.
  weave user show EMAIL|UID
  weave user migrate UID --to URL     (without --to: finish an interrupted move)
  weave user delete UID [--retire] --yes`)
	db.register(c)
	f.RegisterFlags(c)
	c.Run = func(args []string) error {
		if len(args) != 2 {
			return (&fleet.Admin{}).RunUser(a.ctx, args, &f) // its usage error, before a database is opened
		}
		return db.withAdmin(a, func(ctx context.Context, adm *fleet.Admin) error {
			return adm.RunUser(ctx, args, &f)
		})
	}
	return c
}
