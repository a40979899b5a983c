package main

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

// tlsFlags make serve speak HTTPS itself: with a certificate and key from
// files, or with certificates obtained and renewed from an ACME CA (Let's
// Encrypt by default).
type tlsFlags struct {
	certFile, keyFile string
	acmeDomains       string
	acmeEmail         string
	acmeDirectory     string
	acmeCAFile        string
	redirectListen    string
}

func (f *tlsFlags) register(c *cli.Command) {
	c.String(&f.certFile, "tls-cert", "", "serve HTTPS with this PEM certificate chain (with --tls-key); re-read on SIGHUP and when the files change")
	c.String(&f.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	c.String(&f.acmeDomains, "acme-domain", "", "serve HTTPS with certificates obtained automatically over ACME for these comma-separated domains (TLS-ALPN-01 on --listen, which must be reachable on port 443, or HTTP-01 on --http-redirect-listen at port 80); account and certificates are kept in DATA_DIR/acme")
	c.String(&f.acmeEmail, "acme-email", "", "contact address given to the ACME CA (expiry notices)")
	c.String(&f.acmeDirectory, "acme-directory-url", autocert.DefaultACMEDirectory, "ACME directory of the CA (e.g. Let's Encrypt staging, or a private CA)")
	c.String(&f.acmeCAFile, "acme-ca-file", "", "PEM certificates to trust, besides the system's, when talking to the ACME server (a private CA, or Pebble in tests)")
	c.String(&f.redirectListen, "http-redirect-listen", "", "also listen on this address (e.g. :80) with plain HTTP that only redirects to the HTTPS public URL (and answers ACME HTTP-01 challenges with --acme-domain)")
}

func (f *tlsFlags) on() bool { return f.certFile != "" || f.acmeDomains != "" }

func (f *tlsFlags) domains() []string { return cli.List(f.acmeDomains) }

func (f *tlsFlags) check() error {
	if (f.certFile == "") != (f.keyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.certFile != "" && f.acmeDomains != "" {
		return errors.New("--tls-cert and --acme-domain are alternatives: give one")
	}
	if f.acmeDomains == "" && (f.acmeEmail != "" || f.acmeCAFile != "" || f.acmeDirectory != autocert.DefaultACMEDirectory) {
		return errors.New("--acme-email, --acme-directory-url and --acme-ca-file need --acme-domain")
	}
	for _, d := range f.domains() {
		if _, err := netip.ParseAddr(d); err == nil || strings.ContainsAny(d, "*/:") || strings.HasSuffix(d, ".") {
			return fmt.Errorf("--acme-domain %q: want DNS names such as sync.example.com (no addresses, ports or wildcards)", d)
		}
	}
	if f.acmeDomains != "" {
		if u, err := url.Parse(f.acmeDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--acme-directory-url %q: want an https URL", f.acmeDirectory)
		}
	}
	if f.redirectListen != "" && !f.on() {
		return errors.New("--http-redirect-listen needs HTTPS: --tls-cert/--tls-key or --acme-domain")
	}
	return nil
}

// defaultPublicURL is the URL clients reach a TLS-serving weave at: the
// first ACME domain, or the listen address, over https.
func (f *tlsFlags) defaultPublicURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %v (want HOST:PORT)", listen, err)
	}
	if d := f.domains(); len(d) > 0 {
		host = d[0]
	} else if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if port == "443" {
		return "https://" + host, nil
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

// tlsServing is what serve needs for HTTPS.
type tlsServing struct {
	config *tls.Config
	// challenges wraps the plain-HTTP handler with the ACME HTTP-01
	// responder (identity without ACME).
	challenges func(http.Handler) http.Handler
	stop       func()
}

// setup builds the TLS configuration; the certificate files are watched
// (SIGHUP, or a change seen at most a second late) until ctx ends.
func (f *tlsFlags) setup(ctx context.Context, dataDir string, log *slog.Logger) (*tlsServing, error) {
	if f.certFile != "" {
		r := &certReloader{certFile: f.certFile, keyFile: f.keyFile, log: log}
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
						log.Info("SIGHUP: certificate reloaded", "file", f.certFile)
					}
				case <-ctx.Done():
					return
				case <-done:
					return
				}
			}
		}()
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate, NextProtos: []string{"h2", "http/1.1"}}
		return &tlsServing{config: cfg, challenges: func(h http.Handler) http.Handler { return h }, stop: func() {
			signal.Stop(hup)
			close(done)
		}}, nil
	}

	cacheDir := filepath.Join(dataDir, "acme")
	if err := privfile.MkdirAll(cacheDir); err != nil {
		return nil, fmt.Errorf("ACME cache %s: %w", cacheDir, err)
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	if f.acmeCAFile != "" {
		pem, err := os.ReadFile(f.acmeCAFile)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-ca-file %s: no PEM certificate in it", f.acmeCAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cacheDir),
		HostPolicy: autocert.HostWhitelist(f.domains()...),
		Email:      f.acmeEmail,
		Client:     &acme.Client{DirectoryURL: f.acmeDirectory, HTTPClient: hc, UserAgent: "weave/" + version},
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
	return &tlsServing{config: cfg, challenges: challenges, stop: func() {}}, nil
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

// redirectToHTTPS answers every plain-HTTP request with a permanent
// redirect to the same path on the public URL's host. The host comes from
// the configuration, never from the request, so it cannot be turned into
// an open redirect.
func redirectToHTTPS(publicURL string) http.Handler {
	u, _ := url.Parse(publicURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+u.Host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// serveRedirects runs the plain-HTTP listener until the returned stop is
// called.
func serveRedirects(addr string, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http-redirect-listen %s: %w", addr, err)
	}
	// Redirects are tiny: few connections per client are plenty.
	ln = weavehttp.LimitListener(ln, weavehttp.ConnLimits{PerClient: 16, Total: 1024})
	hs := weavehttp.NewHTTPServer(h, weavehttp.Timeouts{}, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("redirect listener stopped", "err", err)
		}
	}()
	return func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(c)
	}, nil
}
