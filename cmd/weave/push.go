package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/weave-sync/weave/internal/cli"
	"github.com/weave-sync/weave/sqlstore"
)

// pushCommand is `weave push stats`: the push store's state, read from the
// token database (the printing is push.Stats').
func (a *app) pushCommand() *cli.Command {
	f := &fleetDB{}
	var asJSON bool
	c := cli.New("push", "stats [flags]", `Inspect the push service of `+"`weave serve --push`"+` (in the token database).
  weave push stats    UAIDs, channels, messages waiting by age and expired, connections recorded per process`)
	f.register(c)
	c.Bool(&asJSON, "json", false, "print as JSON")
	c.Run = func(args []string) error {
		if len(args) != 1 || args[0] != "stats" {
			return errors.New("want stats (see `weave push --help`)")
		}
		url, err := f.db.TokenDatabaseURL()
		if err != nil {
			return err
		}
		if _, err := sqlstore.Lookup(url); err != nil {
			return err
		}
		// Opened with the push schema checked, never migrated: a read-only
		// command must not create the push tables of a server without --push.
		db, err := sqlstore.OpenSet(a.ctx, url, f.db.Pool(), sqlstore.SetPush, false)
		if err != nil {
			return fmt.Errorf("push database %s: %w (has `weave serve --push` run on it?)", sqlstore.RedactURL(url), err)
		}
		defer db.Close()
		st, err := sqlstore.NewPushStore(db).Stats(a.ctx, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if asJSON {
			return st.WriteJSON(a.stdout)
		}
		return st.WriteText(a.stdout)
	}
	return c
}
