package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

type userFlags struct {
	fleetDB
	to     string
	retire bool
	yes    bool
}

func (a *app) userCommand() *cli.Command {
	f := &userFlags{}
	c := cli.New("user", "show|migrate|delete ... [flags]", `Inspect, move and delete sync users.
  weave user show EMAIL|UID
  weave user migrate UID --to URL     (without --to: finish an interrupted move)
  weave user delete UID [--retire] --yes`)
	f.register(c)
	c.String(&f.to, "to", "", "user migrate: URL of the node that takes the user")
	c.Bool(&f.retire, "retire", false, "user delete: also retire the account for good (it never gets a token again); without it the next sync starts afresh under a new uid")
	c.Bool(&f.yes, "yes", false, "user delete: confirm the deletion")
	c.Run = func(args []string) error {
		if len(args) != 2 {
			return errors.New("want show EMAIL|UID, migrate UID --to URL or delete UID (see `weave user --help`)")
		}
		return f.withAdmin(a, func(ctx context.Context, _ *sqlstore.TokenDB, adm *fleet.Admin) error {
			switch args[0] {
			case "show":
				return adm.Migrator.ShowUser(ctx, a.stdout, args[1])
			case "migrate":
				return adm.MigrateUser(ctx, args[1], f.to)
			case "delete":
				return adm.DeleteUser(ctx, args[1], f.retire, f.yes)
			}
			return fmt.Errorf("unknown user command %q: want show, migrate or delete", args[0])
		})
	}
	return c
}
