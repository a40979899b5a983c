package main

import (
	// The backends weave runs on register themselves with sqlstore.
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) dbCommand() *cli.Command {
	adm := &sqlstore.Admin{Backup: sqlite.BackupCommand, Out: a.stdout, Progress: a.stderr}
	c := cli.New("db", "migrate|status|purge|seed|backup FILE|restore FILE [flags]", `Manage the databases: apply schema migrations, show schema versions, purge expired records, back up and restore.
  weave db seed           write synthetic Firefox-like records for benchmarks (--seed-*); refuses a
                          database that holds records unless --seed-append
  weave db backup FILE    consistent copy of the SQLite database (--database-url, default the
                          data dir's weave.db) taken while weave serves; FILE must not exist
  weave db restore FILE   put a backup in place of the database; stop weave serve first
MySQL/MariaDB and PostgreSQL are backed up with their own tools: see docs/operations.md.`)
	adm.RegisterFlags(c)
	c.Run = func(args []string) error { return adm.Run(a.ctx, args) }
	return c
}
