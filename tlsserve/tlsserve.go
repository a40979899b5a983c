// Package tlsserve makes weave serve HTTPS itself: with a certificate and
// key from files (re-read when they change or on SIGHUP), or with
// certificates obtained and renewed over ACME (Let's Encrypt by default),
// plus the plain-HTTP listener that only redirects to HTTPS.
package tlsserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/internal/privfile"

	"github.com/weave-sync/weave/internal/cli"
)

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = autocert.DefaultACMEDirectory

// Config says how to serve HTTPS; the zero value serves plain HTTP. The
// names in errors are weave serve's flags.
type Config struct {
	CertFile, KeyFile string // --tls-cert, --tls-key
	ACMEDomains       string // --acme-domain, comma-separated
	ACMEEmail         string
	ACMEDirectory     string // "" is DefaultACMEDirectory
	ACMECAFile        string
	RedirectListen    string // --http-redirect-listen
	UserAgent         string // sent to the ACME server
}

// On reports whether HTTPS is configured.
func (f *Config) On() bool { return f.CertFile != "" || f.ACMEDomains != "" }

func (f *Config) domains() []string { return cli.List(f.ACMEDomains) }

// Check refuses inconsistent settings.
func (f *Config) Check() error {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.CertFile != "" && f.ACMEDomains != "" {
		return errors.New("--tls-cert and --acme-domain are alternatives: give one")
	}
	if f.ACMEDomains == "" && (f.ACMEEmail != "" || f.ACMECAFile != "" || f.ACMEDirectory != "" && f.ACMEDirectory != DefaultACMEDirectory) {
		return errors.New("--acme-email, --acme-directory-url and --acme-ca-file need --acme-domain")
	}
	for _, d := range f.domains() {
		if _, err := netip.ParseAddr(d); err == nil || strings.ContainsAny(d, "*/:") || strings.HasSuffix(d, ".") {
			return fmt.Errorf("--acme-domain %q: want DNS names such as sync.example.com (no addresses, ports or wildcards)", d)
		}
	}
	if f.ACMEDomains != "" {
		if f.ACMEDirectory == "" {
			f.ACMEDirectory = DefaultACMEDirectory
		}
		if u, err := url.Parse(f.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--acme-directory-url %q: want an https URL", f.ACMEDirectory)
		}
	}
	if f.RedirectListen != "" && !f.On() {
		return errors.New("--http-redirect-listen needs HTTPS: --tls-cert/--tls-key or --acme-domain")
	}
	return nil
}

// DefaultPublicURL is the URL clients reach weave at when none is
// configured: the first ACME domain, or the listen address (a loopback
// host when it listens on every interface), over https when HTTPS is on.
func (f *Config) DefaultPublicURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %v (want HOST:PORT)", listen, err)
	}
	if d := f.domains(); len(d) > 0 {
		host = d[0]
	} else if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if !f.On() {
		return "http://" + net.JoinHostPort(host, port), nil
	}
	if port == "443" {
		return "https://" + host, nil
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

// Serving is what a server needs for HTTPS.
type Serving struct {
	Config *tls.Config
	// Challenges wraps the plain-HTTP handler with the ACME HTTP-01
	// responder (identity without ACME).
	Challenges func(http.Handler) http.Handler
	// Stop ends the watching of certificate files.
	Stop func()
}

// Setup builds the TLS configuration; the certificate files are watched
// (SIGHUP, or a change seen at most a second late) until ctx ends. ACME
// keeps its account and certificates in dataDir/acme.
func (f *Config) Setup(ctx context.Context, dataDir string, log *slog.Logger) (*Serving, error) {
	if f.CertFile != "" {
		r := &certReloader{certFile: f.CertFile, keyFile: f.KeyFile, log: log}
		if err := r.load(); err != nil {
			return nil, err
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-hup:
					if err := r.load(); err != nil {
						log.Error("SIGHUP: keeping the current certificate", "err", err)
					} else {
						log.Info("SIGHUP: certificate reloaded", "file", f.CertFile)
					}
				case <-ctx.Done():
					return
				case <-done:
					return
				}
			}
		}()
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate, NextProtos: []string{"h2", "http/1.1"}}
		return &Serving{Config: cfg, Challenges: func(h http.Handler) http.Handler { return h }, Stop: func() {
			signal.Stop(hup)
			close(done)
		}}, nil
	}

	cacheDir := filepath.Join(dataDir, "acme")
	if err := privfile.MkdirAll(cacheDir); err != nil {
		return nil, fmt.Errorf("ACME cache %s: %w", cacheDir, err)
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	if f.ACMECAFile != "" {
		pem, err := os.ReadFile(f.ACMECAFile)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-ca-file %s: no PEM certificate in it", f.ACMECAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cacheDir),
		HostPolicy: autocert.HostWhitelist(f.domains()...),
		Email:      f.ACMEEmail,
		Client:     &acme.Client{DirectoryURL: f.ACMEDirectory, HTTPClient: hc, UserAgent: f.UserAgent},
	}
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	getCert := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := getCert(hello)
		if err != nil && hello.ServerName != "" {
			// Debug: scanners send any name, and net/http logs the
			// failed handshake already.
			log.Debug("no certificate for a TLS client", "server_name", hello.ServerName, "err", err)
		}
		return c, err
	}
	challenges := func(fallback http.Handler) http.Handler {
		h := m.HTTPHandler(fallback)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// autocert checks the Host header against the domains
			// verbatim: a port in it (a listener not on 80, behind a
			// port mapping) would fail the challenge.
			if host, _, err := net.SplitHostPort(r.Host); err == nil {
				r.Host = host
			}
			h.ServeHTTP(w, r)
		})
	}
	return &Serving{Config: cfg, Challenges: challenges, Stop: func() {}}, nil
}

// certReloader serves the certificate of two files and re-reads them when
// they change (as certbot's renewals replace them) or on SIGHUP; a broken
// new pair is logged and the old one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func (r *certReloader) fileStamp() (string, error) {
	var b strings.Builder
	for _, p := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return b.String(), nil
}

func (r *certReloader) load() error {
	stamp, err := r.fileStamp()
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	if fi, err := os.Stat(r.keyFile); err == nil && fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("--tls-key %s is writable by every user (mode %04o): chmod 600 it", r.keyFile, fi.Mode().Perm())
	} else if err == nil && fi.Mode().Perm()&0o044 != 0 {
		r.log.Warn("the TLS key is readable by other users; chmod 600 it", "file", r.keyFile, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	r.mu.Lock()
	r.cert, r.stamp, r.checked = &c, stamp, time.Now()
	r.mu.Unlock()
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	due := time.Since(r.checked) >= time.Second
	if due {
		r.checked = time.Now()
	}
	cert, old := r.cert, r.stamp
	r.mu.Unlock()
	if due {
		if stamp, err := r.fileStamp(); err == nil && stamp != old {
			if err := r.load(); err != nil {
				r.log.Error("certificate files changed but do not load; keeping the current certificate", "err", err)
				r.mu.Lock()
				r.stamp = stamp // do not retry until they change again
				r.mu.Unlock()
			} else {
				r.log.Info("certificate files changed: reloaded", "file", r.certFile)
				r.mu.Lock()
				cert = r.cert
				r.mu.Unlock()
			}
		}
	}
	return cert, nil
}

// RedirectToHTTPS answers every plain-HTTP request with a permanent
// redirect to the same path on the public URL's host. The host comes from
// the configuration, never from the request, so it cannot be turned into
// an open redirect.
func RedirectToHTTPS(publicURL string) http.Handler {
	u, _ := url.Parse(publicURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+u.Host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// ServeRedirects runs the plain-HTTP listener until the returned stop is
// called.
func ServeRedirects(addr string, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http-redirect-listen %s: %w", addr, err)
	}
	// Redirects are tiny: few connections per client are plenty.
	ln = weavehttp.LimitListener(ln, weavehttp.ConnLimits{PerClient: 16, Total: 1024})
	hs := weavehttp.NewHTTPServer(h, weavehttp.Timeouts{}, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	return weavehttp.ServeInBackground(hs, ln, log, "redirect listener"), nil
}
