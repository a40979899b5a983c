package main

import (
	"fmt"
	"time"

	"github.com/weave-sync/weave/sqlstore"
)

func (a *app) dbCommand() *command {
	f := &dbFlags{}
	var batch int
	c := newCommand("db", "migrate|status|purge [flags]", "Manage the databases: apply schema migrations, show schema versions, purge expired records.")
	f.register(c)
	c.Int(&batch, "purge-batch", 1000, "rows purged per transaction by `weave db purge`").Min(1)
	c.run = func(args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("want one of migrate, status, purge (see `weave db --help`)")
		}
		dbs, err := openDatabases(a.ctx, f)
		if err != nil {
			return err
		}
		defer dbs.Close()
		switch args[0] {
		case "migrate":
			err := dbs.prepare(a.ctx, true, func(set string, m sqlstore.Migration) {
				fmt.Fprintf(a.stdout, "applying %s migration %s\n", set, m.Name)
			})
			if err != nil {
				return err
			}
			return a.printStatus(dbs)
		case "status":
			return a.printStatus(dbs)
		case "purge":
			if err := dbs.prepare(a.ctx, false, nil); err != nil {
				return err
			}
			store := sqlstore.NewStore(dbs.storage, sqlstore.StoreOptions{})
			start := time.Now()
			var total int64
			for {
				n, err := store.PurgeExpired(a.ctx, batch)
				total += n
				if err != nil {
					return fmt.Errorf("purge stopped after %d rows: %w (run it again to continue)", total, err)
				}
				fmt.Fprintf(a.stderr, "\rpurged %d rows (%.1fs)", total, time.Since(start).Seconds())
				if n < int64(batch) {
					break
				}
			}
			fmt.Fprintf(a.stderr, "\n")
			fmt.Fprintf(a.stdout, "purged %d expired records and batch rows\n", total)
			return nil
		}
		return fmt.Errorf("unknown db command %q: want migrate, status or purge", args[0])
	}
	return c
}

func (a *app) printStatus(dbs *databases) error {
	return dbs.eachSet(func(set string, db *sqlstore.DB, ms []sqlstore.Migration) error {
		st, err := db.Status(a.ctx, set, ms)
		if err != nil {
			return err
		}
		state := "up to date"
		switch {
		case st.Current > st.Latest:
			state = "NEWER than this weave: upgrade weave"
		case st.Pending():
			state = fmt.Sprintf("%d pending: run `weave db migrate`", st.Latest-st.Current)
		}
		fmt.Fprintf(a.stdout, "%-8s schema version %d of %d (%s)\n", set, st.Current, st.Latest, state)
		return nil
	})
}
