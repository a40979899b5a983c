package push

import (
	"log/slog"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// Flags are the `weave serve` flags that turn on and configure the push
// service. It is a flag of its own rather than part of --accounts: it adds
// a database schema and long-lived connections (count them in
// --max-conns), and Firefox only uses it once dom.push.serverURL points
// here, which it does not by default; built-in accounts work without it
// (devices then use Mozilla's push service).
type Flags struct {
	Enabled bool
	Config  // MaxChannels, MaxStored, PollInterval
}

// RegisterFlags registers --push and the --push-* flags.
func (f *Flags) RegisterFlags(c *cli.Command) {
	c.Bool(&f.Enabled, "push", false, "serve a push service (Mozilla's autopush protocol: Firefox's WebSocket at the public URL, Web Push endpoints at /wpush/) with messages kept in the token database; point Firefox's dom.push.serverURL at it (printed on start). Each connected browser holds one connection: raise --max-conns to match")
	c.Int(&f.MaxChannels, "push-max-channels", 500, "most push subscriptions one browser may hold (one for Firefox Accounts plus one per site allowed to push)").Min(1)
	c.Int(&f.MaxStored, "push-max-stored", 1000, "most push messages kept for one browser while it is away; senders get 429 beyond it").Min(1)
	c.Duration(&f.PollInterval, "push-poll-interval", 100*time.Millisecond, "how often each process looks in the database for messages another process took for browsers connected here (the longest extra delay of such a message)").Min(time.Millisecond)
}

// New builds the service the flags configure, its endpoint keys derived
// from the master secrets (see EndpointKeys).
func (f *Flags) New(store Store, publicURL string, secrets []string, obs Observer, log *slog.Logger) (*Service, error) {
	keys, err := EndpointKeys(secrets)
	if err != nil {
		return nil, err
	}
	cfg := f.Config
	cfg.Store, cfg.PublicURL, cfg.EndpointKeys, cfg.Observer, cfg.Logger = store, publicURL, keys, obs, log
	return New(cfg)
}
