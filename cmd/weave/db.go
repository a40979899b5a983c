package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) dbCommand() *cli.Command {
	f := &dbFlags{}
	var batch int
	var seed sqlstore.SeedOptions
	var seedCollections string
	c := cli.New("db", "migrate|status|purge|seed|backup FILE|restore FILE [flags]", `Manage the databases: apply schema migrations, show schema versions, purge expired records, back up and restore.
  weave db seed           write synthetic Firefox-like records for benchmarks (--seed-*); refuses a
                          database that holds records unless --seed-append
  weave db backup FILE    consistent copy of the SQLite database (--database-url, default the
                          data dir's weave.db) taken while weave serves; FILE must not exist
  weave db restore FILE   put a backup in place of the database; stop weave serve first
MySQL/MariaDB and PostgreSQL are backed up with their own tools: see docs/operations.md.`)
	f.register(c)
	c.Int(&batch, "purge-batch", 1000, "rows purged per transaction by `weave db purge`").Min(1)
	c.Int(&seed.Users, "seed-users", 1000, "`weave db seed`: users to create (uids from --seed-first-uid)").Min(1)
	c.Int64(&seed.FirstUID, "seed-first-uid", 1, "`weave db seed`: first uid").Min(1)
	c.Int(&seed.RecordsPerUser, "seed-records-per-user", 1000, "`weave db seed`: records per user, spread over --seed-collections").Min(0)
	c.String(&seedCollections, "seed-collections", "history", "`weave db seed`: comma-separated collections")
	c.Bool(&seed.Append, "seed-append", false, "`weave db seed`: allow a database that already holds records (the uids must be new)")
	c.Run = func(args []string) error {
		if len(args) == 2 && (args[0] == "backup" || args[0] == "restore") {
			return a.dbBackupRestore(f, args[0], args[1])
		}
		if len(args) != 1 {
			return fmt.Errorf("want one of migrate, status, purge, seed, backup FILE, restore FILE (see `weave db --help`)")
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
		case "seed":
			if err := dbs.prepare(a.ctx, true, nil); err != nil {
				return err
			}
			seed.Collections = strings.Split(seedCollections, ",")
			start := time.Now()
			seed.Progress = func(n int64) {
				fmt.Fprintf(a.stderr, "\rseeded %d records (%.0f/s)", n, float64(n)/time.Since(start).Seconds())
			}
			n, err := sqlstore.NewStore(dbs.storage, sqlstore.StoreOptions{}).Seed(a.ctx, seed)
			fmt.Fprintf(a.stderr, "\n")
			if err != nil {
				return fmt.Errorf("seed stopped after %d records: %w", n, err)
			}
			fmt.Fprintf(a.stdout, "seeded %d records for %d users in %.1fs\n", n, seed.Users, time.Since(start).Seconds())
			return nil
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
		return fmt.Errorf("unknown db command %q: want migrate, status, purge, seed, backup FILE or restore FILE", args[0])
	}
	return c
}

// dbBackupRestore runs `weave db backup|restore FILE` on the storage
// database (which holds the token and accounts tables too unless
// --token-database-url names another; back that one up with its own
// --database-url).
func (a *app) dbBackupRestore(f *dbFlags, verb, file string) error {
	url, err := f.storageURL()
	if err != nil {
		return err
	}
	be, err := sqlstore.Lookup(url)
	if err != nil {
		return err
	}
	if be.BackupTool != "" {
		return fmt.Errorf("weave db %s works on SQLite; back up %s with %s (see docs/operations.md, \"Backups\")", verb, sqlstore.RedactURL(url), be.BackupTool)
	}
	if file == "" {
		return fmt.Errorf("weave db %s: want a file name", verb)
	}
	start := time.Now()
	switch verb {
	case "backup":
		if err := sqlite.Backup(a.ctx, url, file); err != nil {
			return err
		}
		st, err := os.Stat(file)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "backed up %s to %s (%d bytes, integrity ok, %.1fs)\n", url, file, st.Size(), time.Since(start).Seconds())
	case "restore":
		saved, err := sqlite.Restore(a.ctx, file, url)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "restored %s from %s (integrity ok, %.1fs)\n", url, file, time.Since(start).Seconds())
		if saved != "" {
			fmt.Fprintf(a.stdout, "the database it replaced is kept as %s: delete it once weave serves the restored data\n", saved)
		}
	}
	return nil
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
