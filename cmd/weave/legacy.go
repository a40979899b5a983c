package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

// legacyFlags turn on the 2011 protocol (User API 1.0 + Storage API 1.1)
// for Pale Moon, Basilisk and other UXP browsers.
type legacyFlags struct {
	enabled         bool
	signup          string
	weaveSecret     string
	captchaOverride string
	alert           string
}

func (f *legacyFlags) register(c *cli.Command) {
	c.Bool(&f.enabled, "legacy", false, "also serve Sync 1.1 and User API 1.0 for Pale Moon and Basilisk (services.sync.serverURL = the public URL + \"/\"), on the same storage, nodes and states as 1.5; see docs/legacy.md")
	c.String(&f.signup, "legacy-signup", "closed", "who may create 1.1 accounts: closed (operators only: `weave legacy-user create`), captcha (the setup wizard shows weave's image captcha) or open")
	c.Secret(&f.weaveSecret, "legacy-weave-secret", "", "a secret that, sent as X-Weave-Secret (the client's services.sync.admin-secret pref), creates a 1.1 account without the captcha (prefer --legacy-weave-secret-file)")
	c.String(&f.alert, "legacy-alert", "", `a notice for every 1.1 client, as JSON {"code":"soft-eol","message":"…","url":"…"}: soft-eol shows the message, hard-eol also stops their syncing`)
	c.Secret(&f.captchaOverride, "legacy-captcha-override", "", "a secret that, sent as X-Captcha-Override, creates a 1.1 account without the captcha (prefer --legacy-captcha-override-file)")
}

func (f *legacyFlags) check() (legacy.SignupMode, error) {
	mode, err := legacy.ParseSignupMode(f.signup)
	if err != nil {
		return "", fmt.Errorf("--legacy-signup %q: want closed, captcha or open", f.signup)
	}
	for name, v := range map[string]string{"--legacy-weave-secret": f.weaveSecret, "--legacy-captcha-override": f.captchaOverride} {
		if v != "" && len(v) < 16 {
			return "", fmt.Errorf("%s must be at least 16 characters", name)
		}
	}
	return mode, nil
}

// servedLegacy is the 1.1 front end as wired into serve.
type servedLegacy struct{ svc *legacy.Service }

// newLegacy builds the 1.1 front end; nil when --legacy is off. Its
// accounts live in the token database (migration tokens/0003).
func newLegacy(f *legacyFlags, tokenDB *sqlstore.TokenDB, publicURL string, quota int64, newUsers bool, deleter *fleet.Deleter, m *metrics.Metrics, log *slog.Logger) (*servedLegacy, error) {
	if !f.enabled {
		return nil, nil
	}
	mode, err := f.check()
	if err != nil {
		return nil, err
	}
	var alert *legacy.Alert
	if f.alert != "" {
		if alert, err = legacy.ParseAlert(f.alert); err != nil {
			return nil, fmt.Errorf("--legacy-alert: %v", err)
		}
	}
	svc, err := legacy.New(legacy.Config{
		Alert:            alert,
		Users:            sqlstore.NewLegacyUserStore(tokenDB.DB()),
		Tokens:           tokenDB,
		PublicURL:        publicURL,
		Signup:           mode,
		WeaveSecret:      f.weaveSecret,
		CaptchaOverride:  f.captchaOverride,
		QuotaBytes:       quota,
		NewUsersDisabled: !newUsers,
		DeleteSyncData:   deleter.ReplaceAccount,
		Observer:         m.LegacyObserver(),
		Logger:           log.With("component", "legacy"),
	})
	if err != nil {
		return nil, err
	}
	return &servedLegacy{svc: svc}, nil
}

func (a *app) legacyUserCommand() *cli.Command {
	db := &dbFlags{}
	var publicURL, password, email string
	var link bool
	var linkTTL time.Duration
	c := cli.New("legacy-user", "list | create ACCOUNT | reset-password ACCOUNT | delete ACCOUNT [flags]",
		"Manage the Sync 1.1 accounts of `weave serve --legacy` (Pale Moon, Basilisk). ACCOUNT is what the user types in the browser (an e-mail address or a plain name) or the 32-character username derived from it. The password is read from --password or, if empty, from the first line of standard input.")
	db.register(c)
	c.String(&publicURL, "public-url", "http://127.0.0.1:8000", "the server's public URL (as given to serve), for reset links")
	c.Secret(&password, "password", "", "password for create and reset-password (prefer standard input or --password-file)")
	c.String(&email, "email", "", "create: the e-mail address to keep (default: ACCOUNT when it is one)")
	c.Bool(&link, "link", false, "reset-password: print a one-time link to the weave-password-reset page instead of setting a password")
	c.Duration(&linkTTL, "link-ttl", 24*time.Hour, "reset-password --link: how long the link works (1m to 30 days)").Min(time.Minute).Max(30 * 24 * time.Hour)
	c.Run = func(args []string) error {
		adm := &legacy.Admin{Out: a.stdout, PublicURL: publicURL, Email: email, Link: link, LinkTTL: linkTTL,
			Password: func() (string, error) { return a.readPassword(password) }}
		if len(args) == 0 {
			return adm.Run(a.ctx, args) // its usage error, before a database is opened
		}
		dbs, tokenDB, err := openTokenDatabase(a.ctx, db)
		if err != nil {
			return err
		}
		defer dbs.Close()
		adm.Tokens, adm.Users = tokenDB, sqlstore.NewLegacyUserStore(dbs.tokens)
		adm.DeleteSyncData = (&fleetDB{db: *db}).deleter(tokenDB, nil).ReplaceAccount
		return adm.Run(a.ctx, args)
	}
	return c
}
