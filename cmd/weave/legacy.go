package main

import (
	"time"

	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) legacyUserCommand() *cli.Command {
	db := &sqlstore.Config{}
	var password string
	adm := &legacy.Admin{Out: a.stdout, Password: func() (string, error) { return cli.ReadPassword(a.stdin, password) }}
	c := cli.New("legacy-user", "list | create ACCOUNT | reset-password ACCOUNT | delete ACCOUNT [flags]",
		"Manage the Sync 1.1 accounts of `weave serve --legacy` (Pale Moon, Basilisk). ACCOUNT is what the user types in the browser (an e-mail address or a plain name) or the 32-character username derived from it. The password is read from --password or, if empty, from the first line of standard input.")
	db.RegisterFlags(c)
	c.String(&adm.PublicURL, "public-url", "http://127.0.0.1:8000", "the server's public URL (as given to serve), for reset links")
	c.Secret(&password, "password", "", "password for create and reset-password (prefer standard input or --password-file)")
	c.String(&adm.Email, "email", "", "create: the e-mail address to keep (default: ACCOUNT when it is one)")
	c.Bool(&adm.Link, "link", false, "reset-password: print a one-time link to the weave-password-reset page instead of setting a password")
	c.Duration(&adm.LinkTTL, "link-ttl", 24*time.Hour, "reset-password --link: how long the link works (1m to 30 days)").Min(time.Minute).Max(30 * 24 * time.Hour)
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
