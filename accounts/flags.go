package accounts

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// Flags are the `weave serve` flags that turn on and configure the
// built-in accounts service.
type Flags struct {
	Enabled         bool
	Signup          string // closed, captcha or open
	CaptchaOverride string
	SessionTTL      time.Duration
	SessionIdle     time.Duration
	RefreshTTL      time.Duration
	PushHosts       []string
}

// RegisterFlags registers --accounts and the --accounts-* flags.
func (f *Flags) RegisterFlags(c *cli.Command) {
	c.Bool(&f.Enabled, "accounts", false, "serve weave's own FxA-compatible accounts (sign-up, sign-in, OAuth and their web pages) so Firefox needs no Mozilla account; point identity.fxaccounts.autoconfig.uri at the public URL")
	c.String(&f.Signup, "accounts-signup", "closed", "who may create accounts: closed (operators only: `weave account create`), captcha (anyone who solves the sign-up page's image captcha) or open")
	c.Duration(&f.SessionTTL, "accounts-session-lifetime", 365*24*time.Hour, "a sign-in session ends this long after it began, used or not")
	c.Duration(&f.SessionIdle, "accounts-session-idle", 30*24*time.Hour, "a sign-in session unused this long ends")
	c.Duration(&f.RefreshTTL, "accounts-refresh-token-lifetime", 90*24*time.Hour, "OAuth refresh tokens (Firefox for Android/iOS, CLI clients) end this long after they were issued")
	RegisterPushHostsFlag(c, &f.PushHosts)
	c.Secret(&f.CaptchaOverride, "accounts-captcha-override", "", "with --accounts-signup captcha: a secret that, sent in the X-Captcha-Override header of account/create, skips the captcha (automated account setup; prefer --accounts-captcha-override-file)")
}

// RegisterPushHostsFlag registers --accounts-push-hosts (Config.PushHosts),
// a flag of `weave serve` and `weave account`.
func RegisterPushHostsFlag(c *cli.Command, p *[]string) {
	c.StringList(p, "accounts-push-hosts", "", "comma-separated push services the devices' push callbacks may point at, each [http(s)://]host[:port] (https and any port unless given; *.example.com for its subdomains); the accounts service posts Send Tab and device notices only there. Empty: the public URL's origin (weave's own push service) and Mozilla's ("+strings.Join(DefaultPushHosts, ", ")+")")
}

// Config checks the flags and returns the Config they ask for; the caller
// adds the store, URLs, deletion and logger.
func (f *Flags) Config() (Config, error) {
	switch f.Signup {
	case "closed", "open", "captcha":
	default:
		return Config{}, fmt.Errorf("--accounts-signup %q: want closed, captcha or open", f.Signup)
	}
	if f.CaptchaOverride != "" && f.Signup != "captcha" {
		return Config{}, fmt.Errorf("--accounts-captcha-override only applies with --accounts-signup captcha")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"accounts-session-lifetime", f.SessionTTL}, {"accounts-session-idle", f.SessionIdle}, {"accounts-refresh-token-lifetime", f.RefreshTTL}} {
		if d.v != 0 && d.v < time.Minute { // 0: the accounts service's default
			return Config{}, fmt.Errorf("--%s %s: want at least 1m", d.name, d.v)
		}
	}
	if f.CaptchaOverride != "" && len(f.CaptchaOverride) < 16 {
		return Config{}, fmt.Errorf("--accounts-captcha-override must be at least 16 characters")
	}
	return Config{
		SignupClosed:    f.Signup == "closed",
		SignupCaptcha:   f.Signup == "captcha",
		CaptchaOverride: f.CaptchaOverride,
		SessionTTL:      f.SessionTTL,
		SessionIdleTTL:  f.SessionIdle,
		RefreshTokenTTL: f.RefreshTTL,
		PushHosts:       f.PushHosts,
	}, nil
}

// Shutdown is Close with 15 seconds for the notices still in flight to go
// out (a password reset or deletion by `weave account` pushes to the
// devices, then exits).
func (s *Service) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// RegisterFlags registers the flags of `weave account`: the Admin's, and
// those of cfg, the Service it runs on. The password is --password or,
// when that is empty, the first line of stdin.
func (a *Admin) RegisterFlags(c *cli.Command, cfg *Config, stdin io.Reader) {
	a.Password = c.PasswordFlag(stdin)
	c.String(&cfg.PublicURL, "public-url", "http://127.0.0.1:8000", "the server's public URL (as given to serve)")
	c.String(&a.Session, "session", "", "sign-out: the id of the session to end (see `weave account sessions`)")
	c.Bool(&a.All, "all", false, "sign-out: end every session and OAuth token of the account")
	RegisterPushHostsFlag(c, &cfg.PushHosts)
}
