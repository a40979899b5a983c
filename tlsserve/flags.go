package tlsserve

import (
	"fmt"
	"net/url"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/cli"
)

// RegisterFlags registers the HTTPS flags of `weave serve`.
func (c *Config) RegisterFlags(cmd *cli.Command) {
	cmd.String(&c.CertFile, "tls-cert", "", "serve HTTPS with this PEM certificate chain (with --tls-key); re-read on SIGHUP and when the files change")
	cmd.String(&c.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	cmd.String(&c.ACMEDomains, "acme-domain", "", "serve HTTPS with certificates obtained automatically over ACME for these comma-separated domains (TLS-ALPN-01 on --listen, which must be reachable on port 443, or HTTP-01 on --http-redirect-listen at port 80); account and certificates are kept in DATA_DIR/acme")
	cmd.String(&c.ACMEEmail, "acme-email", "", "contact address given to the ACME CA (expiry notices)")
	cmd.String(&c.ACMEDirectory, "acme-directory-url", DefaultACMEDirectory, "ACME directory of the CA (e.g. Let's Encrypt staging, or a private CA)")
	cmd.String(&c.ACMECAFile, "acme-ca-file", "", "PEM certificates to trust, besides the system's, when talking to the ACME server (a private CA, or Pebble in tests)")
	cmd.String(&c.RedirectListen, "http-redirect-listen", "", "also listen on this address (e.g. :80) with plain HTTP that only redirects to the HTTPS public URL (and answers ACME HTTP-01 challenges with --acme-domain)")
}

// PublicURL is the URL clients reach weave at: given (--public-url),
// cleaned, or else DefaultPublicURL. It must be an http(s) URL, and https
// when weave serves HTTPS itself.
func (c *Config) PublicURL(given, listen string) (string, error) {
	if given == "" {
		var err error
		if given, err = c.DefaultPublicURL(listen); err != nil {
			return "", err
		}
	}
	given = weave.CleanNodeURL(given)
	if u, err := url.Parse(given); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--public-url %q: want an http(s) URL such as https://sync.example.com", given)
	} else if c.On() && u.Scheme != "https" {
		return "", fmt.Errorf("--public-url %q: weave serves HTTPS itself here (--tls-cert or --acme-domain), so clients reach it over https", given)
	}
	return given, nil
}
