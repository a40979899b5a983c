package main

import (
	"fmt"

	// The backends weave runs on register themselves with sqlstore.
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) dbCommand() *cli.Command {
	db := &sqlstore.Config{}
	var batch int
	var seed sqlstore.SeedFlags
	c := cli.New("db", "migrate|status|purge|seed|backup FILE|restore FILE [flags]", `Manage the databases: apply schema migrations, show schema versions, purge expired records, back up and restore.
  weave db seed           write synthetic Firefox-like records for benchmarks (--seed-*); refuses a
                          database that holds records unless --seed-append
  weave db backup FILE    consistent copy of the SQLite database (--database-url, default the
                          data dir's weave.db) taken while weave serves; FILE must not exist
  weave db restore FILE   put a backup in place of the database; stop weave serve first
MySQL/MariaDB and PostgreSQL are backed up with their own tools: see docs/operations.md.`)
	db.RegisterFlags(c)
	c.Int(&batch, "purge-batch", 1000, "rows purged per transaction by `weave db purge`").Min(1)
	seed.RegisterFlags(c)
	c.Run = func(args []string) error {
		if len(args) == 2 && (args[0] == "backup" || args[0] == "restore") {
			// The storage database, which holds the token and accounts
			// tables too unless --token-database-url names another.
			url, err := db.StorageURL()
			if err != nil {
				return err
			}
			return sqlite.BackupCommand(a.ctx, a.stdout, args[0], url, args[1])
		}
		if len(args) != 1 {
			return fmt.Errorf("want one of migrate, status, purge, seed, backup FILE, restore FILE (see `weave db --help`)")
		}
		dbs, err := db.Open(a.ctx)
		if err != nil {
			return err
		}
		defer dbs.Close()
		switch args[0] {
		case "migrate":
			err := dbs.Prepare(a.ctx, true, func(set string, m sqlstore.Migration) {
				fmt.Fprintf(a.stdout, "applying %s migration %s\n", set, m.Name)
			})
			if err != nil {
				return err
			}
			return dbs.WriteStatus(a.ctx, a.stdout)
		case "status":
			return dbs.WriteStatus(a.ctx, a.stdout)
		case "seed":
			if err := dbs.Prepare(a.ctx, true, nil); err != nil {
				return err
			}
			return sqlstore.NewStore(dbs.Storage, sqlstore.StoreOptions{}).SeedAndReport(a.ctx, &seed, a.stdout, a.stderr)
		case "purge":
			if err := dbs.Prepare(a.ctx, false, nil); err != nil {
				return err
			}
			total, err := sqlstore.NewStore(dbs.Storage, sqlstore.StoreOptions{}).PurgeAllExpired(a.ctx, batch, a.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "purged %d expired records and batch rows\n", total)
			return nil
		}
		return fmt.Errorf("unknown db command %q: want migrate, status, purge, seed, backup FILE or restore FILE", args[0])
	}
	return c
}
