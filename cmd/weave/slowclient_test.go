package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/hawk"
	"github.com/weave-sync/weave/internal/testkit"
)

// Short bounds so the real `weave serve` can be shown cutting slow clients
// off within a test's patience; slack is what a loaded CI machine may add.
var slowFlags = []string{"--header-timeout", "1s", "--body-timeout", "300ms", "--write-timeout", "300ms",
	"--idle-timeout", "300ms", "--min-transfer-rate", "32768"}

const slowSlack = 2500 * time.Millisecond

func dialLocal(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serverClosesWithin discards what c receives until the server closes it.
func serverClosesWithin(c net.Conn, within time.Duration) error {
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("still open after %v", within)
	}
	return nil
}

// hostOf is the host:port of a base URL.
func hostOf(t *testing.T, base string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// signedHead is the head of a Hawk-signed storage request announcing a body
// of length bytes, as the token's holder would send it.
func (c *syncClient) signedHead(method, path string, length int) string {
	c.t.Helper()
	u := c.token.APIEndpoint + path
	auth, err := hawk.Sign(c.token.Key, c.token.ID, method, u, "", nil, time.Now(), "")
	if err != nil {
		c.t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		method, pu.RequestURI(), pu.Host, auth, length)
}

// expectAllClosed opens n connections per request kind at once (from
// distinct loopback addresses when locals says so), sends each its slow
// request and checks that the server closes every one within the bound.
func expectAllClosed(t *testing.T, addr string, n int, kinds map[string]func(i int) string, locals bool) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	k := 0
	for name, send := range kinds {
		k++
		for i := range n {
			local := ""
			if locals {
				local = fmt.Sprintf("127.0.%d.%d", 10+k, 10+i)
			}
			c := dialLocal(t, local, addr)
			if _, err := io.WriteString(c, send(i)); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := serverClosesWithin(c, time.Second+slowSlack); err != nil {
					mu.Lock()
					t.Errorf("%s: %v", name, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
}

// Finding 3 of issue 12 against the real server: slow and stalled clients
// are cut off on the storage, token, accounts and metrics listeners; a
// slow upload that keeps moving succeeds.
func TestServeCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	metricsAddr := testkit.FreeAddr(t)
	srv := startServer(t, "", append(slowFlags, "--metrics-listen", metricsAddr)...)
	addr := hostOf(t, srv.base)
	c := srv.client(t, "5a0c1c2d3e4f50617283940a1b2c3d4e")
	stalled := "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
	expectAllClosed(t, addr, 10, map[string]func(int) string{
		"storage upload stalled after one byte": func(int) string { return c.signedHead("POST", "/storage/bookmarks", 100) + "[" },
		"token request with a stalled body": func(int) string {
			return "GET /1.0/sync/1.5 HTTP/1.1\r\nHost: " + addr + "\r\n" + stalled
		},
		"headers never finished": func(int) string { return "GET /__heartbeat__ HTTP/1.1\r\nHost: x\r\nX-Slow: " },
	}, false)
	expectAllClosed(t, metricsAddr, 5, map[string]func(int) string{
		"metrics request with a stalled body": func(int) string { return "GET /metrics HTTP/1.1\r\nHost: x\r\n" + stalled },
	}, false)

	// A 200 KB upload at ≈ 100 KB/s, always moving, on a server with a
	// pause bound of a second (so that a loaded machine starving this
	// sender for a moment is not a stall): about two allowances long.
	steady := startServer(t, "", "--body-timeout", "1s", "--min-transfer-rate", "32768")
	c = steady.client(t, "5a0c1c2d3e4f50617283940a1b2c3d4f")
	addr = hostOf(t, steady.base)
	recs := make([]map[string]any, 100)
	for i := range recs {
		recs[i] = map[string]any{"id": fmt.Sprintf("slow%03d", i), "payload": strings.Repeat("s", 2000)}
	}
	body, _ := json.Marshal(recs)
	conn, start := testkit.SteadyUpload(t, body, func(int) (net.Conn, string) {
		return dialLocal(t, "", addr), c.signedHead("POST", "/storage/history", len(body))
	})
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		t.Fatalf("steady upload over %v: %q", time.Since(start), line)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("steady upload took only %v: not slow enough to show anything", took)
	}
	var ids []string
	c.must(200, "GET", "/storage/history", nil).json(t, &ids)
	if len(ids) != 100 {
		t.Fatalf("%d records after the steady upload, want 100", len(ids))
	}
}

// The accounts routes are bounded like the rest.
func TestServeCutsOffSlowAccountsClients(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", append(slowFlags, "--accounts", "--accounts-signup", "open")...)
	addr := hostOf(t, srv.base)
	// Each from its own address, so the per-client cap is not what closes
	// them.
	expectAllClosed(t, addr, 10, map[string]func(int) string{
		"account login with a stalled body": func(int) string {
			return "POST /v1/account/login HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
		},
		"oauth token with a stalled body": func(int) string {
			return "POST /v1/oauth/token HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
		},
	}, true)
}

// --max-conns-per-client refuses a client's extra connections while
// another address still gets in.
func TestServeCapsConnectionsPerClient(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", "--max-conns-per-client", "3", "--header-timeout", "20s")
	addr := hostOf(t, srv.base)
	answered := func(c net.Conn) bool {
		io.WriteString(c, "GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.HasPrefix(line, "HTTP/1.1 200 ")
	}
	// Three half-sent requests hold 127.0.0.2's places.
	for range 3 {
		io.WriteString(dialLocal(t, "127.0.0.2", addr), "GET /__lbheartbeat__ HTTP/1.1\r\n")
	}
	if answered(dialLocal(t, "127.0.0.2", addr)) {
		t.Fatal("a fourth connection from 127.0.0.2 was served over --max-conns-per-client 3")
	}
	if !answered(dialLocal(t, "127.0.0.3", addr)) {
		t.Fatal("127.0.0.3 was refused while 127.0.0.2 held its three connections")
	}
}
