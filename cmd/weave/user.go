package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/weave-sync/weave"
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
		ctx := a.ctx
		tokens, err := f.openTokenDB(ctx)
		if err != nil {
			return err
		}
		defer tokens.Close()
		switch args[0] {
		case "show":
			m := f.migrator(tokens)
			defer m.Close()
			return m.ShowUser(ctx, a.stdout, args[1])
		case "migrate":
			uid, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("uid %q: want a number", args[1])
			}
			m := f.migrator(tokens)
			defer m.Close()
			res, err := m.MigrateUser(ctx, uid, weave.CleanNodeURL(f.to))
			if err != nil {
				return fmt.Errorf("%w (run the same command again to finish the move)", err)
			}
			if res.From == res.To {
				fmt.Fprintf(a.stdout, "uid %d is already on %s\n", uid, res.To)
				return nil
			}
			verb := "moved"
			if res.Resumed {
				verb = "finished moving"
			}
			fmt.Fprintf(a.stdout, "%s uid %d from %s to %s: %d records, writes held for %s\n", verb, uid, res.From, res.To, res.Records, res.Locked.Round(time.Millisecond))
			return nil
		case "delete":
			uid, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("uid %q: want a number", args[1])
			}
			if !f.yes {
				return errors.New("this deletes all of the user's sync data: add --yes to confirm")
			}
			return a.userDelete(ctx, f, tokens, uid)
		}
		return fmt.Errorf("unknown user command %q: want show, migrate or delete", args[0])
	}
	return c
}

func (a *app) userDelete(ctx context.Context, f *userFlags, tokens *sqlstore.TokenDB, uid int64) error {
	u, err := tokens.UserByUID(ctx, uid)
	if err != nil {
		return fmt.Errorf("uid %d: %w", uid, err)
	}
	// The data goes and a "deleted" mark stays on the node: clients
	// holding a token for the old uid get 401 and, with a new token, a new
	// uid.
	m := f.migrator(tokens)
	defer m.Close()
	if err := m.DeleteUser(ctx, u); err != nil {
		return err
	}
	if f.retire {
		if err := tokens.RetireUser(ctx, u.Email); err != nil {
			return err
		}
	} else if err := tokens.ReplaceUserRecords(ctx, u.Email); err != nil {
		return err
	}
	if err := tokens.DeleteUser(ctx, uid); err != nil && !errors.Is(err, weave.ErrNotFound) {
		return err
	}
	how := "its next sync starts afresh under a new uid"
	if f.retire {
		how = "the account is retired"
	}
	fmt.Fprintf(a.stdout, "deleted uid %d (%s): data removed from %s, %s\n", uid, u.Email, u.NodeURL(), how)
	return nil
}
