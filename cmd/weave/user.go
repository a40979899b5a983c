package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
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
			return a.userShow(ctx, f, tokens, args[1])
		case "migrate":
			uid, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("uid %q: want a number", args[1])
			}
			m := f.migrator(tokens)
			defer m.Close()
			res, err := m.MigrateUser(ctx, uid, strings.TrimRight(f.to, "/"))
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

func (a *app) lookupUser(ctx context.Context, tokens *sqlstore.TokenDB, who string) (weave.TokenUser, error) {
	if uid, err := strconv.ParseInt(who, 10, 64); err == nil {
		return tokens.UserByUID(ctx, uid)
	}
	return tokens.GetUser(ctx, who)
}

func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func (a *app) userShow(ctx context.Context, f *userFlags, tokens *sqlstore.TokenDB, who string) error {
	u, err := a.lookupUser(ctx, tokens, who)
	if errors.Is(err, weave.ErrNotFound) {
		return fmt.Errorf("no user %s in the token database (give a uid, or the account's email as <fxa uid>@<domain>)", who)
	}
	if err != nil {
		return fmt.Errorf("user %s: %w", who, err)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "uid\t%d\n", u.UID)
	fmt.Fprintf(tw, "email\t%s\n", u.Email)
	node := "(removed)"
	if u.Node != nil {
		node = fmt.Sprintf("%s (id %d, %s)", u.Node.URL, u.NodeID, u.Node.State)
	}
	fmt.Fprintf(tw, "node\t%s\n", node)
	status := "live"
	switch {
	case u.Retired():
		status = "retired (account deleted)"
	case u.ReplacedAt != 0:
		status = "replaced at " + msTime(u.ReplacedAt)
	}
	fmt.Fprintf(tw, "record\t%s\n", status)
	if !u.Retired() {
		fmt.Fprintf(tw, "generation\t%d\n", u.Generation)
	}
	fmt.Fprintf(tw, "client state\t%s\n", u.ClientState)
	fmt.Fprintf(tw, "keys changed at\t%s\n", msTime(u.KeysChangedAt))
	fmt.Fprintf(tw, "created\t%s\n", msTime(u.CreatedAt))
	if j, err := tokens.Migration(ctx, u.UID); err == nil {
		fmt.Fprintf(tw, "move\tunfinished, node %d → %d, last step %s at %s (run `weave user migrate %d`)\n", j.FromNode, j.ToNode, j.Step, msTime(j.UpdatedAt), u.UID)
	}
	if u.Node == nil {
		return tw.Flush()
	}
	m := f.migrator(tokens)
	defer m.Close()
	shard, err := m.Open(ctx, *u.Node)
	if err != nil {
		fmt.Fprintf(tw, "storage\tunavailable: %v\n", err)
		return tw.Flush()
	}
	defer shard.Close()
	if st, target, err := shard.MoveState(ctx, u.UID); err == nil && st != weave.MoveNone {
		fmt.Fprintf(tw, "move mark\t%s (→ %s)\n", st, target)
	}
	d, err := shard.ExportUser(ctx, u.UID)
	if err != nil {
		fmt.Fprintf(tw, "storage\tunavailable: %v\n", err)
		return tw.Flush()
	}
	if !d.Exists {
		fmt.Fprintf(tw, "storage\tempty\n")
		return tw.Flush()
	}
	var total, bytes int64
	for _, c := range d.Collections {
		total += int64(len(c.BSOs))
		for _, b := range c.BSOs {
			bytes += int64(len(b.Payload))
		}
	}
	fmt.Fprintf(tw, "storage\t%d records, %d payload bytes, %d collections, %d open batches, last modified %s\n",
		total, bytes, len(d.Collections), len(d.Batches), d.Modified.Time().UTC().Format(time.RFC3339))
	sort.Slice(d.Collections, func(i, j int) bool { return d.Collections[i].Name < d.Collections[j].Name })
	for _, c := range d.Collections {
		fmt.Fprintf(tw, "  %s\t%d records, modified %s\n", c.Name, len(c.BSOs), c.Modified)
	}
	return tw.Flush()
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
