package main

import (
	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) legacyUserCommand() *cli.Command {
	db := &sqlstore.Config{}
	adm := &legacy.Admin{Out: a.stdout}
	c := cli.New("legacy-user", "list | create ACCOUNT | reset-password ACCOUNT | delete ACCOUNT [flags]",
		"Manage the Sync 1.1 accounts of `weave serve --legacy` (Pale Moon, Basilisk). ACCOUNT is what the user types in the browser (an e-mail address or a plain name) or the 32-character username derived from it. The password is read from --password or, if empty, from the first line of standard input.")
	db.RegisterFlags(c)
	adm.RegisterFlags(c, a.stdin)
	c.Run = func(args []string) error {
		if len(args) == 0 {
			return adm.Run(a.ctx, args) // its usage error, before a database is opened
		}
		dbs, tokenDB, err := openTokenDatabase(a.ctx, db)
		if err != nil {
			return err
		}
		defer dbs.Close()
		adm.Tokens, adm.Users = tokenDB, sqlstore.NewLegacyUserStore(dbs.Tokens)
		adm.DeleteSyncData = (&fleetDB{db: *db}).deleter(tokenDB, nil).ReplaceAccount
		return adm.Run(a.ctx, args)
	}
	return c
}
