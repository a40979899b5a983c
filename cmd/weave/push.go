package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weave-sync/weave/internal/cli"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/sqlstore"
)

// pushFlags turn on weave's push service. It is a flag of its own rather
// than part of --accounts: it adds a database schema and long-lived
// connections (count them in --max-conns), and Firefox only uses it once
// dom.push.serverURL points here, which it does not by default; built-in
// accounts work without it (devices then use Mozilla's push service).
type pushFlags struct {
	enabled      bool
	maxChannels  int
	maxStored    int
	pollInterval time.Duration
}

func (f *pushFlags) register(c *cli.Command) {
	c.Bool(&f.enabled, "push", false, "serve a push service (Mozilla's autopush protocol: Firefox's WebSocket at the public URL, Web Push endpoints at /wpush/) with messages kept in the token database; point Firefox's dom.push.serverURL at it (printed on start). Each connected browser holds one connection: raise --max-conns to match")
	c.Int(&f.maxChannels, "push-max-channels", 500, "most push subscriptions one browser may hold (one for Firefox Accounts plus one per site allowed to push)").Min(1)
	c.Int(&f.maxStored, "push-max-stored", 1000, "most push messages kept for one browser while it is away; senders get 429 beyond it").Min(1)
	c.Duration(&f.pollInterval, "push-poll-interval", 100*time.Millisecond, "how often each process looks in the database for messages another process took for browsers connected here (the longest extra delay of such a message)").Min(time.Millisecond)
}

// builtinPush is the push service as wired into serve.
type builtinPush struct{ svc *push.Service }

// newBuiltinPush migrates the push schema (it lives with the token
// database, which every process of a fleet shares: that is how a message
// taken by one process reaches a browser connected to another) and builds
// the service.
func newBuiltinPush(ctx context.Context, f *pushFlags, dbs *databases, migrate bool, publicURL string, secrets []string, m *metrics.Metrics, log *slog.Logger) (*builtinPush, error) {
	ms, err := dbs.tokensBE.MigrationsOf(sqlstore.SetPush)
	if err != nil {
		return nil, err
	}
	if err := dbs.tokens.Prepare(ctx, sqlstore.SetPush, ms, migrate, nil); err != nil {
		return nil, fmt.Errorf("push database: %w", err)
	}
	keys, err := push.EndpointKeys(secrets)
	if err != nil {
		return nil, err
	}
	svc, err := push.New(push.Config{
		Store:        sqlstore.NewPushStore(dbs.tokens),
		PublicURL:    publicURL,
		EndpointKeys: keys,
		MaxChannels:  f.maxChannels,
		MaxStored:    f.maxStored,
		PollInterval: f.pollInterval,
		Observer:     m.PushObserver(),
		Logger:       log.With("component", "push"),
	})
	if err != nil {
		return nil, err
	}
	return &builtinPush{svc: svc}, nil
}

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
		url := f.db.tokenURL
		if url == "" {
			var err error
			if url, err = f.defaultStorageURL(); err != nil {
				return err
			}
		}
		if _, err := sqlstore.Lookup(url); err != nil {
			return err
		}
		// Opened with the push schema checked, never migrated: a read-only
		// command must not create the push tables of a server without --push.
		db, err := sqlstore.OpenSet(a.ctx, url, f.db.pool(), sqlstore.SetPush, false)
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
