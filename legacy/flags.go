package legacy

import (
	"fmt"
	"io"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// Flags are the `weave serve` flags that turn on and configure the 2011
// protocol (User API 1.0 + Storage API 1.1) for Pale Moon, Basilisk and
// other UXP browsers.
type Flags struct {
	Enabled         bool
	Signup          string
	WeaveSecret     string
	CaptchaOverride string
	Alert           string
}

// RegisterFlags registers --legacy and the --legacy-* flags.
func (f *Flags) RegisterFlags(c *cli.Command) {
	c.Bool(&f.Enabled, "legacy", false, "also serve Sync 1.1 and User API 1.0 for Pale Moon and Basilisk (services.sync.serverURL = the public URL + \"/\"), on the same storage, nodes and states as 1.5; see docs/legacy.md")
	c.String(&f.Signup, "legacy-signup", "closed", "who may create 1.1 accounts: closed (operators only: `weave legacy-user create`), captcha (the setup wizard shows weave's image captcha) or open")
	c.Secret(&f.WeaveSecret, "legacy-weave-secret", "", "a secret that, sent as X-Weave-Secret (the client's services.sync.admin-secret pref), creates a 1.1 account without the captcha (prefer --legacy-weave-secret-file)")
	c.String(&f.Alert, "legacy-alert", "", `a notice for every 1.1 client, as JSON {"code":"soft-eol","message":"…","url":"…"}: soft-eol shows the message, hard-eol also stops their syncing`)
	c.Secret(&f.CaptchaOverride, "legacy-captcha-override", "", "a secret that, sent as X-Captcha-Override, creates a 1.1 account without the captcha (prefer --legacy-captcha-override-file)")
}

// Config checks the flags and returns the Config they ask for; the caller
// adds the stores, URL, quota, deletion, observer and logger.
func (f *Flags) Config() (Config, error) {
	mode, err := ParseSignupMode(f.Signup)
	if err != nil {
		return Config{}, fmt.Errorf("--legacy-signup %q: want closed, captcha or open", f.Signup)
	}
	for name, v := range map[string]string{"--legacy-weave-secret": f.WeaveSecret, "--legacy-captcha-override": f.CaptchaOverride} {
		if v != "" && len(v) < 16 {
			return Config{}, fmt.Errorf("%s must be at least 16 characters", name)
		}
	}
	cfg := Config{Signup: mode, WeaveSecret: f.WeaveSecret, CaptchaOverride: f.CaptchaOverride}
	if f.Alert != "" {
		if cfg.Alert, err = ParseAlert(f.Alert); err != nil {
			return Config{}, fmt.Errorf("--legacy-alert: %v", err)
		}
	}
	return cfg, nil
}

// RegisterFlags registers the flags of `weave legacy-user`. The password
// is --password or, when that is empty, the first line of stdin.
func (a *Admin) RegisterFlags(c *cli.Command, stdin io.Reader) {
	a.Password = c.PasswordFlag(stdin)
	c.String(&a.PublicURL, "public-url", "http://127.0.0.1:8000", "the server's public URL (as given to serve), for reset links")
	c.String(&a.Email, "email", "", "create: the e-mail address to keep (default: ACCOUNT when it is one)")
	c.Bool(&a.Link, "link", false, "reset-password: print a one-time link to the weave-password-reset page instead of setting a password")
	c.Duration(&a.LinkTTL, "link-ttl", 24*time.Hour, "reset-password --link: how long the link works (1m to 30 days)").Min(time.Minute).Max(30 * 24 * time.Hour)
}
