package main

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tokenserver"

	"github.com/weave-sync/weave/internal/cli"
)

// testScrypt, when its N is set, is the accounts' scrypt cost instead of
// onepw.DefaultScrypt. Only this package's tests set it (scrypt_test.go):
// no flag or setting reaches it, so a server always stretches at the
// default cost. Under -race on a loaded machine one default stretch took
// 30-60 s, past the test clients' 30 s timeout.
var testScrypt onepw.ScryptParams

// openAccounts migrates the accounts schema (it lives with the token
// database) and builds the service over it. A deleted account must never
// sync again, even with a token it still holds, and its data goes: the
// deleter retires its token records (under its FxA uid) and deletes them.
func openAccounts(ctx context.Context, dbs *sqlstore.Databases, migrate bool, deleter *fleet.Deleter, cfg accounts.Config) (*accounts.Service, error) {
	if err := dbs.PrepareTokenSet(ctx, sqlstore.SetAccounts, migrate); err != nil {
		return nil, err
	}
	if testScrypt.N != 0 && cfg.Scrypt.N == 0 {
		cfg.Scrypt = testScrypt
	}
	cfg.Store = sqlstore.NewAccountStore(dbs.Tokens)
	cfg.DeleteSyncData = func(ctx context.Context, uid string) error {
		return deleter.DeleteAccount(ctx, uid+"@"+tokenserver.DefaultEmailDomain)
	}
	return accounts.New(cfg)
}

func newBuiltinAccounts(ctx context.Context, f *serveFlags, dbs *sqlstore.Databases, trusted []netip.Prefix, deleter *fleet.Deleter, log *slog.Logger) (*accounts.Service, error) {
	cfg, err := f.accounts.Config()
	if err != nil {
		return nil, err
	}
	cfg.PublicURL, cfg.TrustedProxies, cfg.Logger = f.publicURL, trusted, log.With("component", "accounts")
	return openAccounts(ctx, dbs, f.migrate, deleter, cfg)
}

func (a *app) accountCommand() *cli.Command {
	db := &sqlstore.Config{}
	var cfg accounts.Config
	adm := &accounts.Admin{Out: a.stdout}
	c := cli.New("account", "create EMAIL | list | delete EMAIL | reset-password EMAIL | sessions EMAIL | sign-out EMAIL (--session ID | --all) [flags]",
		"Manage the built-in accounts of `weave serve --accounts`. The password is read from --password or, if empty, from the first line of standard input. `sessions` lists an account's sign-in sessions; `sign-out` ends one (--session, an id from `sessions`) or all of them with every OAuth token (--all).")
	db.RegisterFlags(c)
	adm.RegisterFlags(c, &cfg, a.stdin)
	c.Run = func(args []string) error {
		if len(args) == 0 {
			return (&accounts.Admin{}).Run(a.ctx, args) // its usage error, before a database is opened
		}
		dbs, tokenDB, err := openTokenDatabase(a.ctx, db)
		if err != nil {
			return err
		}
		defer dbs.Close()
		svc, err := openAccounts(a.ctx, dbs, true, (&fleetDB{db: *db}).deleter(tokenDB, nil), cfg)
		if err != nil {
			return err
		}
		defer svc.Shutdown()
		adm.Service = svc
		return adm.Run(a.ctx, args)
	}
	return c
}

// openTokenDatabase opens the databases of an account command, their
// schemas current, and the token database among them.
func openTokenDatabase(ctx context.Context, db *sqlstore.Config) (*sqlstore.Databases, *sqlstore.TokenDB, error) {
	dbs, err := db.OpenPrepared(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	return dbs, sqlstore.NewTokenDB(dbs.Tokens, sqlstore.TokenDBOptions{KeepOpen: true}), nil
}
