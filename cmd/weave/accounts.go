package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

// accountsFlags turn on weave's built-in accounts service.
type accountsFlags struct {
	enabled         bool
	signup          string
	captchaOverride string
	sessionTTL      time.Duration
	sessionIdle     time.Duration
	refreshTTL      time.Duration
	pushHosts       string
}

func (f *accountsFlags) register(c *cli.Command) {
	c.Bool(&f.enabled, "accounts", false, "serve weave's own FxA-compatible accounts (sign-up, sign-in, OAuth and their web pages) so Firefox needs no Mozilla account; point identity.fxaccounts.autoconfig.uri at the public URL")
	c.String(&f.signup, "accounts-signup", "closed", "who may create accounts: closed (operators only: `weave account create`), captcha (anyone who solves the sign-up page's image captcha) or open")
	c.Duration(&f.sessionTTL, "accounts-session-lifetime", 365*24*time.Hour, "a sign-in session ends this long after it began, used or not")
	c.Duration(&f.sessionIdle, "accounts-session-idle", 30*24*time.Hour, "a sign-in session unused this long ends")
	c.Duration(&f.refreshTTL, "accounts-refresh-token-lifetime", 90*24*time.Hour, "OAuth refresh tokens (Firefox for Android/iOS, CLI clients) end this long after they were issued")
	registerPushHosts(c, &f.pushHosts)
	c.Secret(&f.captchaOverride, "accounts-captcha-override", "", "with --accounts-signup captcha: a secret that, sent in the X-Captcha-Override header of account/create, skips the captcha (automated account setup; prefer --accounts-captcha-override-file)")
}

func registerPushHosts(c *cli.Command, p *string) {
	c.String(p, "accounts-push-hosts", "", "comma-separated push services the devices' push callbacks may point at, each [http(s)://]host[:port] (https and any port unless given; *.example.com for its subdomains); the accounts service posts Send Tab and device notices only there. Empty: the public URL's origin (weave's own push service) and Mozilla's ("+strings.Join(accounts.DefaultPushHosts, ", ")+")")
}

// closeAccounts lets the notices still in flight go out (a password reset
// or deletion by `weave account` pushes to the devices, then exits).
func closeAccounts(svc *accounts.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = svc.Close(ctx)
}

// fxaEmailDomain is what the token server appends to an FxA uid; weave's own
// accounts retire their token records under it too.
const fxaEmailDomain = "api.accounts.firefox.com"

func (f *accountsFlags) check() error {
	switch f.signup {
	case "closed", "open", "captcha":
	default:
		return fmt.Errorf("--accounts-signup %q: want closed, captcha or open", f.signup)
	}
	if f.captchaOverride != "" && f.signup != "captcha" {
		return fmt.Errorf("--accounts-captcha-override only applies with --accounts-signup captcha")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"accounts-session-lifetime", f.sessionTTL}, {"accounts-session-idle", f.sessionIdle}, {"accounts-refresh-token-lifetime", f.refreshTTL}} {
		if d.v != 0 && d.v < time.Minute { // 0: the accounts service's default
			return fmt.Errorf("--%s %s: want at least 1m", d.name, d.v)
		}
	}
	if f.captchaOverride != "" && len(f.captchaOverride) < 16 {
		return fmt.Errorf("--accounts-captcha-override must be at least 16 characters")
	}
	return nil
}

// openAccounts migrates the accounts schema (it lives with the token
// database) and builds the service.
func openAccounts(ctx context.Context, dbs *databases, migrate bool, cfg accounts.Config) (*accounts.Service, error) {
	ms, err := dbs.tokensBE.MigrationsOf(sqlstore.SetAccounts)
	if err != nil {
		return nil, err
	}
	if err := dbs.tokens.Prepare(ctx, sqlstore.SetAccounts, ms, migrate, nil); err != nil {
		return nil, fmt.Errorf("accounts database: %w", err)
	}
	cfg.Store = sqlstore.NewAccountStore(dbs.tokens)
	return accounts.New(cfg)
}

func newBuiltinAccounts(ctx context.Context, f *accountsFlags, dbs *databases, migrate bool, publicURL string,
	trusted []netip.Prefix, deleter *fleet.Deleter, log *slog.Logger) (*accounts.Service, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return openAccounts(ctx, dbs, migrate, accounts.Config{
		PublicURL:       publicURL,
		TrustedProxies:  trusted,
		SignupClosed:    f.signup == "closed",
		SignupCaptcha:   f.signup == "captcha",
		CaptchaOverride: f.captchaOverride,
		// A deleted account must never sync again, even with a token it
		// still holds, and its data goes.
		DeleteSyncData:  deleteSyncData(deleter),
		SessionTTL:      f.sessionTTL,
		SessionIdleTTL:  f.sessionIdle,
		RefreshTokenTTL: f.refreshTTL,
		PushHosts:       cli.List(f.pushHosts),
		Logger:          log.With("component", "accounts"),
	})
}

// deleteSyncData deletes the Sync data of a built-in account (its FxA
// uid) and retires its token records.
func deleteSyncData(d *fleet.Deleter) func(ctx context.Context, uid string) error {
	return func(ctx context.Context, uid string) error { return d.DeleteAccount(ctx, uid+"@"+fxaEmailDomain) }
}

func (a *app) accountCommand() *cli.Command {
	db := &dbFlags{}
	var publicURL, password, session, hosts string
	var all bool
	c := cli.New("account", "create EMAIL | list | delete EMAIL | reset-password EMAIL | sessions EMAIL | sign-out EMAIL (--session ID | --all) [flags]",
		"Manage the built-in accounts of `weave serve --accounts`. The password is read from --password or, if empty, from the first line of standard input. `sessions` lists an account's sign-in sessions; `sign-out` ends one (--session, an id from `sessions`) or all of them with every OAuth token (--all).")
	db.register(c)
	c.String(&publicURL, "public-url", "http://127.0.0.1:8000", "the server's public URL (as given to serve)")
	c.Secret(&password, "password", "", "password for create and reset-password (prefer standard input or --password-file)")
	c.String(&session, "session", "", "sign-out: the id of the session to end (see `weave account sessions`)")
	c.Bool(&all, "all", false, "sign-out: end every session and OAuth token of the account")
	registerPushHosts(c, &hosts)
	c.Run = func(args []string) error {
		if len(args) == 0 {
			return (&accounts.Admin{}).Run(a.ctx, args) // its usage error, before a database is opened
		}
		dbs, tokenDB, err := openTokenDatabase(a.ctx, db)
		if err != nil {
			return err
		}
		defer dbs.Close()
		svc, err := openAccounts(a.ctx, dbs, true, accounts.Config{
			PublicURL:      publicURL,
			DeleteSyncData: deleteSyncData((&fleetDB{db: *db}).deleter(tokenDB, nil)),
			PushHosts:      cli.List(hosts),
		})
		if err != nil {
			return err
		}
		defer closeAccounts(svc)
		adm := &accounts.Admin{Service: svc, Out: a.stdout, Session: session, All: all,
			Password: func() (string, error) { return a.readPassword(password) }}
		return adm.Run(a.ctx, args)
	}
	return c
}

// openTokenDatabase opens the databases of an account command, their
// schemas current, and the token database among them.
func openTokenDatabase(ctx context.Context, db *dbFlags) (*databases, *sqlstore.TokenDB, error) {
	dbs, err := openDatabases(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	if err := dbs.prepare(ctx, true, nil); err != nil {
		dbs.Close()
		return nil, nil, err
	}
	return dbs, sqlstore.NewTokenDB(dbs.tokens, sqlstore.TokenDBOptions{KeepOpen: true}), nil
}

// readPassword is the password of an account command: the flag's value, or
// the first line of standard input.
func (a *app) readPassword(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password: give --password or one line on standard input (%v)", err)
	}
	return line, nil
}
