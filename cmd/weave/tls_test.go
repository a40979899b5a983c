package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/testkit"
)

// certAuthority is a test CA that issues server certificates.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCertAuthority(t *testing.T) *certAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weave TLS test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key for 127.0.0.1 and localhost, with
// serial as its serial number (to tell certificates apart).
func (ca *certAuthority) issue(t *testing.T, serial int64, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte) {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func (ca *certAuthority) client(serverName string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return poolClient(pool, serverName)
}

func poolClient(pool *x509.CertPool, serverName string) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: serverName},
		DisableKeepAlives: true, // every request a new handshake
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// runServe runs `weave serve` in-process until the test ends and returns
// its stdout and a channel with its exit status.
func runServe(t *testing.T, args ...string) (*syncBuffer, chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--shutdown-grace", "0s", "--log-level", "warn", "--fxa-oauth-url", "http://127.0.0.1:1"}, args...), out, errb)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("weave serve did not stop")
		}
		if t.Failed() {
			t.Logf("weave serve stderr:\n%s", errb.String())
		}
	})
	return out, done
}

// waitGet polls url with c until it answers 200.
func waitGet(t *testing.T, c *http.Client, url string, done chan int, within time.Duration) *http.Response {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return resp
			}
		}
		select {
		case code := <-done:
			t.Fatalf("weave serve exited with %d", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no 200 within %v: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func servedSerial(t *testing.T, c *http.Client, url string) int64 {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// TestServeTLSFiles: with --tls-cert/--tls-key weave serves HTTPS, its
// public URL defaults to https, the certificate is reloaded when the files
// change and on SIGHUP, and --http-redirect-listen redirects every plain
// request to the same path on the public URL's host (never the Host
// header's).
func TestServeTLSFiles(t *testing.T) {
	ca := newCertAuthority(t)
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k := ca.issue(t, 1001, key)
	writeFile(t, certFile, c1, 0o644)
	writeFile(t, keyFile, k, 0o600)
	addr, plain := testkit.FreeAddr(t), testkit.FreeAddr(t)
	out, done := runServe(t, "--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--http-redirect-listen", plain)
	hc := ca.client("")
	base := "https://" + addr
	waitGet(t, hc, base+"/__heartbeat__", done, 30*time.Second)
	if want := "(public URL " + base + ","; !strings.Contains(out.String(), want) {
		t.Errorf("stdout %q does not name the https public URL %s", out.String(), base)
	}
	if got := servedSerial(t, hc, base+"/__lbheartbeat__"); got != 1001 {
		t.Fatalf("serial %d, want 1001", got)
	}
	h2 := ca.client("")
	h2.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	if resp := waitGet(t, h2, base+"/__lbheartbeat__", done, 5*time.Second); resp.ProtoMajor != 2 {
		t.Errorf("a client offering HTTP/2 got %s", resp.Proto)
	}

	// Renewed files are picked up without a restart.
	c2, _ := ca.issue(t, 1002, key)
	writeFile(t, certFile, c2, 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for servedSerial(t, hc, base+"/__lbheartbeat__") != 1002 {
		if time.Now().After(deadline) {
			t.Fatal("changed certificate file not served within 5 s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SIGHUP reloads even when the change cannot be seen in the files'
	// times and sizes (a copy that kept them).
	fi, _ := os.Stat(certFile)
	var c3 []byte
	for range 50 { // ECDSA signatures vary in length
		if c3, _ = ca.issue(t, 1003, key); len(c3) == len(c2) {
			break
		}
	}
	if len(c3) != len(c2) {
		t.Skip("could not make a certificate of the same size to hide the change")
	}
	writeFile(t, certFile, c3, 0o644)
	if err := os.Chtimes(certFile, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the change check: nothing seen
	if got := servedSerial(t, hc, base+"/__lbheartbeat__"); got != 1002 {
		t.Fatalf("serial %d before SIGHUP, want 1002 (the hidden change was noticed?)", got)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for servedSerial(t, hc, base+"/__lbheartbeat__") != 1003 {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded on SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The plain listener only redirects, to the configured host.
	req, _ := http.NewRequest("POST", "http://"+plain+"/1.5/42/storage/bookmarks?batch=true&commit=false", strings.NewReader("{}"))
	req.Host = "evil.example"
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := base + "/1.5/42/storage/bookmarks?batch=true&commit=false"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("plain request: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// TestServeTLSRefusals: TLS flag mistakes stop serve at start.
func TestServeTLSRefusals(t *testing.T) {
	ca := newCertAuthority(t)
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, k := ca.issue(t, 1, key)
	certFile, keyFile, openKey := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "open-key.pem")
	writeFile(t, certFile, c, 0o644)
	writeFile(t, keyFile, k, 0o600)
	writeFile(t, openKey, k, 0o666)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", certFile}, "go together"},
		{[]string{"--tls-cert", certFile, "--tls-key", keyFile, "--acme-domain", "sync.example.com"}, "alternatives"},
		{[]string{"--tls-cert", certFile, "--tls-key", openKey}, "writable by every user"},
		{[]string{"--tls-cert", keyFile, "--tls-key", keyFile}, "--tls-cert/--tls-key"},
		{[]string{"--http-redirect-listen", "127.0.0.1:0"}, "needs HTTPS"},
		{[]string{"--acme-domain", "127.0.0.1"}, "want DNS names"},
		{[]string{"--acme-domain", "*.example.com"}, "want DNS names"},
		{[]string{"--acme-email", "ops@example.com"}, "need --acme-domain"},
		{[]string{"--acme-domain", "sync.example.com", "--acme-directory-url", "http://127.0.0.1:1/dir"}, "want an https URL"},
		{[]string{"--tls-cert", certFile, "--tls-key", keyFile, "--public-url", "http://sync.example.com"}, "over https"},
	} {
		var o, e syncBuffer
		args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}, tc.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, args, &o, &e)
		cancel()
		if code == 0 || !strings.Contains(e.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", tc.args, code, e.String(), tc.want)
		}
	}
}

// pebbleTool finds one of letsencrypt's Pebble programs (.ci/run installs
// them with go install).
func pebbleTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	msg := name + " not installed: go install github.com/letsencrypt/pebble/v2/cmd/" + name + "@v2.10.3"
	if os.Getenv("WEAVE_REQUIRE_BACKENDS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startTool runs a program until the test ends, its output kept for a
// failure's log.
func startTool(t *testing.T, path string, env []string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(path), out.String())
		}
	})
	return out
}

func portOf(a string) int {
	_, p, _ := net.SplitHostPort(a)
	var n int
	fmt.Sscan(p, &n)
	return n
}

// TestServeACMEPebble: with --acme-domain weave obtains its certificate
// from a real ACME server, letsencrypt's Pebble, on 127.0.0.1, which
// validates the domain for real (no PEBBLE_VA_ALWAYS_VALID):
// pebble-challtestsrv is its DNS server and answers 127.0.0.1 for every
// name, and Pebble's validation ports are weave's HTTPS and plain
// listeners. autocert tries TLS-ALPN-01 first; with Pebble's TLS port
// pointed at a closed port that fails and autocert falls back to HTTP-01
// on the --http-redirect-listen listener, so both challenges are tested.
// The account key and certificate are kept private in DATA_DIR/acme.
func TestServeACMEPebble(t *testing.T) {
	pebble, challsrv := pebbleTool(t, "pebble"), pebbleTool(t, "pebble-challtestsrv")
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) { testACME(t, pebble, challsrv, challenge) })
	}
}

func testACME(t *testing.T, pebble, challsrv, challenge string) {
	const domain = "sync.weave.test"
	ca := newCertAuthority(t) // for Pebble's own HTTPS listener
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, k := ca.issue(t, 7, key)
	writeFile(t, filepath.Join(dir, "pebble-cert.pem"), c, 0o600)
	writeFile(t, filepath.Join(dir, "pebble-key.pem"), k, 0o600)
	writeFile(t, filepath.Join(dir, "ca.pem"), ca.pem, 0o600)

	dnsAddr := testkit.FreeAddr(t) // challtestsrv serves DNS on UDP and TCP
	startTool(t, challsrv, nil, "-dnsserver", dnsAddr, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-management", testkit.FreeAddr(t), "-http01", "", "-https01", "", "-doh", "", "-tlsalpn01", "")

	acmeAddr, mgmtAddr, tlsAddr, plainAddr := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	tlsPort := portOf(tlsAddr)
	if challenge == "http-01" {
		tlsPort = portOf(testkit.FreeAddr(t)) // nothing listens: TLS-ALPN-01 fails
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  acmeAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    filepath.Join(dir, "pebble-cert.pem"),
		"privateKey":                     filepath.Join(dir, "pebble-key.pem"),
		"httpPort":                       portOf(plainAddr),
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
	}}
	b, _ := json.Marshal(cfg)
	writeFile(t, filepath.Join(dir, "pebble.json"), b, 0o600)
	// No random validation delays, no injected bad nonces, no reuse of
	// an earlier authorization: the test is about weave's side.
	plog := startTool(t, pebble, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"-config", filepath.Join(dir, "pebble.json"), "-dnsserver", dnsAddr)
	pc := ca.client("")
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := pc.Get("https://" + acmeAddr + "/dir")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	data := filepath.Join(dir, "data")
	out, done := runServe(t, "--listen", tlsAddr, "--data-dir", data,
		"--acme-domain", domain, "--acme-directory-url", "https://"+acmeAddr+"/dir",
		"--acme-ca-file", filepath.Join(dir, "ca.pem"), "--acme-email", "ops@example.org",
		"--http-redirect-listen", plainAddr)

	// Pebble's issuing root, to verify what weave serves.
	resp, err := pc.Get("https://" + mgmtAddr + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: %q", rootPEM)
	}
	hc := poolClient(roots, domain)
	hc.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); host == domain {
			addr = tlsAddr // what the DNS would say
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	base := "https://" + domain + ":" + fmt.Sprint(portOf(tlsAddr))
	// The first handshake makes weave obtain the certificate.
	start := time.Now()
	got := waitGet(t, hc, base+"/__heartbeat__", done, 90*time.Second)
	leaf := got.TLS.PeerCertificates[0]
	t.Logf("certificate from pebble after %v: %v, issuer %q", time.Since(start).Round(time.Millisecond), leaf.DNSNames, leaf.Issuer.CommonName)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != domain {
		t.Fatalf("served certificate names %v", leaf.DNSNames)
	}
	// Pebble logs its HTTP-01 requests (not its TLS-ALPN-01 ones).
	log := plog.String()
	if !strings.Contains(log, "set VALID by completed challenge") {
		t.Errorf("pebble's log shows no valid challenge")
	}
	if httpTried := strings.Contains(log, "Attempting to validate w/ HTTP"); httpTried != (challenge == "http-01") {
		t.Errorf("pebble tried HTTP-01: %v, want %v", httpTried, challenge == "http-01")
	}
	if want := "(public URL " + base + ","; !strings.Contains(out.String(), want) {
		t.Errorf("stdout %q does not name the public URL %s", out.String(), base)
	}

	// The ACME cache: directory 0700, every file 0600.
	var files int
	filepath.WalkDir(filepath.Join(data, "acme"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if files < 2 { // the account key and the certificate
		t.Errorf("ACME cache holds %d files, want the account key and the certificate", files)
	}

	// The plain listener redirects everything else.
	resp, err = hc.Get("http://" + plainAddr + "/__heartbeat__")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != base+"/__heartbeat__" {
		t.Fatalf("plain listener: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
