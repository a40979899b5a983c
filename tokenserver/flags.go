package tokenserver

import (
	"fmt"
	"time"

	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/internal/cli"
)

// DefaultEmailDomain is what the token server appends to an FxA uid to make
// a user's email (Config.EmailDomain); weave's own accounts retire their
// token records under it too.
const DefaultEmailDomain = "api.accounts.firefox.com"

// Flags are the token server's flags of `weave serve`.
type Flags struct {
	MasterSecret  string // comma-separated, newest last ("": DATA_DIR/master-secret)
	JWKSFile      string
	OAuthURL      string
	NewUsers      bool
	NodeCapacity  int64
	TokenDuration time.Duration
}

// RegisterFlags registers the token server's flags.
func (f *Flags) RegisterFlags(c *cli.Command) {
	c.Secret(&f.MasterSecret, "master-secret", "", "secret that signs tokens; several, comma-separated, newest last, for rotation (default: generated on first start, kept in DATA_DIR/master-secret)")
	c.String(&f.JWKSFile, "fxa-jwks-file", "", "JWKS document of trusted FxA signing keys (default: fetch them from the FxA OAuth server)")
	c.String(&f.OAuthURL, "fxa-oauth-url", "https://oauth.accounts.firefox.com", "FxA OAuth server: its /v1/jwks keys and /v1/verify fallback")
	c.Bool(&f.NewUsers, "new-users", true, "let the token server assign new users")
	c.Int64(&f.NodeCapacity, "node-capacity", 100000, "users this node takes").Min(0)
	c.Duration(&f.TokenDuration, "token-duration", time.Hour, "lifetime of the tokens the token server issues").Min(time.Second)
}

// Secrets are the master secrets, newest last: the flag's, or the data
// directory's (see MasterSecret).
func (f *Flags) Secrets(dataDir string) ([]string, error) {
	s, err := MasterSecret(f.MasterSecret, dataDir)
	if err != nil {
		return nil, err
	}
	return cli.List(s), nil
}

// FxAVerifier verifies the OAuth tokens of Mozilla's accounts: with the
// keys of --fxa-jwks-file, else those --fxa-oauth-url publishes.
func (f *Flags) FxAVerifier() (*fxa.Verifier, error) {
	opts := fxa.Options{ServerURL: f.OAuthURL}
	if f.JWKSFile != "" {
		keys, err := fxa.LoadJWKSFile(f.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("--fxa-jwks-file: %w", err)
		}
		opts.Keys = keys
	}
	v, err := fxa.NewVerifier(opts)
	if err != nil {
		return nil, fmt.Errorf("FxA verifier: %w", err)
	}
	return v, nil
}
