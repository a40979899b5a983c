package http

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/testkit"
)

// Short bounds keep these real-socket tests fast; slack is what a loaded
// CI machine (race detector, two cores) may add before a deadline is acted
// on. A connection that outlives bound+slack was not cut off.
var testTimeouts = Timeouts{
	// A second for headers: a loaded machine may starve the test between
	// connecting and sending, and that must not pass for a slow client.
	Header:  time.Second,
	Body:    300 * time.Millisecond,
	Write:   300 * time.Millisecond,
	Idle:    300 * time.Millisecond,
	MinRate: 32 << 10,
}

const slack = 2500 * time.Millisecond

// serveHardened serves h with NewHTTPServer(t) on a fresh 127.0.0.1 port;
// wrap, when set, wraps the listener.
func serveHardened(tb testing.TB, h http.Handler, t Timeouts, wrap func(net.Listener) net.Listener) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	hs := NewHTTPServer(h, t, nil)
	go hs.Serve(ln)
	tb.Cleanup(func() { hs.Close() })
	return addr
}

// dialFrom connects to addr from the loopback address local (any of
// 127.0.0.0/8 is this machine on Linux); rcvbuf > 0 shrinks the receive
// buffer before the handshake, so a slow reader is felt quickly.
func dialFrom(t testing.TB, local, addr string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads (and discards) from c until the server closes it,
// reporting how long that took, or an error if it stays open past within.
func closedWithin(c net.Conn, within time.Duration) (time.Duration, error) {
	start := time.Now()
	c.SetReadDeadline(start.Add(within))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, fmt.Errorf("still open after %v", within)
		}
		return time.Since(start), nil // EOF or reset: closed by the server
	}
}

// smallWriteBuffers shrinks the send buffer of accepted connections.
type smallWriteBuffers struct{ net.Listener }

func (l smallWriteBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// Finding 3 of issue 12: a client that sent headers announcing a body and
// then one byte held its connection forever. Every kind of stall must now be
// cut off within its bound, on every route class, many at once.
func TestSlowClientsAreCutOff(t *testing.T) {
	e := newEnv(t)
	// Like the token server: answers a GET without reading a body.
	e.mountTokens(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	addr := serveHardened(t, e.handler(), testTimeouts, nil)
	coll := e.u("/storage/bookmarks")
	anon := "POST " + coll + " HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n["
	cases := []struct {
		name string
		send func(i int) string
		// status is what the server answers before closing ("" for a
		// silent close).
		status string
	}{
		{"headers never finished", func(int) string { return "GET /__heartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " }, ""},
		{"storage upload stalls after one byte", func(i int) string {
			return e.signedHead("POST", coll, 100, "stall"+strconv.Itoa(i)) + "["
		}, "408"},
		{"anonymous storage upload stalls", func(int) string { return anon }, "401"},
		{"token request with a stalled body", func(int) string {
			return "GET /1.0/sync/1.5 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nx"
		}, "200"},
		{"idle keep-alive connection", func(int) string {
			return "GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
		}, "200"},
	}
	const perCase = 10
	var wg sync.WaitGroup
	errs := make(chan error, len(cases)*perCase)
	var longest atomic.Int64
	for _, tc := range cases {
		for i := range perCase {
			c := dialFrom(t, "", addr, 0)
			if _, err := io.WriteString(c, tc.send(i)); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetReadDeadline(time.Now().Add(testTimeouts.Header + slack))
				br := bufio.NewReader(c)
				if tc.status != "" {
					line, err := br.ReadString('\n')
					if !strings.HasPrefix(line, "HTTP/1.1 "+tc.status+" ") {
						errs <- fmt.Errorf("%s: first line %q (%v), want status %s", tc.name, line, err, tc.status)
						return
					}
				}
				d, err := closedWithin(readerConn{c, br}, testTimeouts.Header+slack)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", tc.name, err)
				}
				if int64(d) > longest.Load() {
					longest.Store(int64(d))
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d slow connections, all closed; the last %v after it was checked", len(cases)*perCase, time.Duration(longest.Load()))
}

// readerConn reads through a bufio.Reader that may hold part of the stream.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// recordsJSON is a POST body of n records of size payload bytes each.
func recordsJSON(prefix string, n, size int) []byte {
	recs := make([]map[string]any, n)
	for i := range recs {
		recs[i] = map[string]any{"id": fmt.Sprintf("%s%05d", prefix, i), "payload": strings.Repeat("p", size)}
	}
	b, _ := json.Marshal(recs)
	return b
}

// readResponse parses an HTTP response from c.
func readResponse(t *testing.T, c net.Conn, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// A transfer may take many times its allowance as long as it keeps moving;
// one that pauses longer than the allowance, or crawls below MinRate, is
// cut off however much credit it has earned.
func TestSlowTransfers(t *testing.T) {
	e := newEnv(t)
	small := func(ln net.Listener) net.Listener { return smallWriteBuffers{ln} }
	addr := serveHardened(t, e.srv, testTimeouts, small)
	// Transfers that must succeed get a pause bound of a second, so that a
	// loaded machine starving the test's sender for a moment does not look
	// like a stall; they still last well past that allowance.
	steady := testTimeouts
	steady.Body, steady.Write = time.Second, time.Second
	steadyAddr := serveHardened(t, e.srv, steady, small)
	coll := e.u("/storage/history")

	t.Run("steady upload succeeds", func(t *testing.T) {
		body := recordsJSON("up", 100, 2000) // ≈ 210 KB
		// About two allowances long in all at SteadyUpload's ≈ 100 KB/s,
		// over MinRate.
		c, start := testkit.SteadyUpload(t, body, func(attempt int) (net.Conn, string) {
			return dialFrom(t, "", steadyAddr, 0), e.signedHead("POST", coll, int64(len(body)), fmt.Sprint("steady-", attempt))
		})
		resp, out := readResponse(t, c, "POST")
		took := time.Since(start)
		var res struct{ Success []string }
		json.Unmarshal(out, &res)
		if resp.StatusCode != 200 || len(res.Success) != 100 {
			t.Fatalf("status %d, %d records stored (%s)", resp.StatusCode, len(res.Success), out)
		}
		if took < 3*steady.Body/2 {
			t.Fatalf("upload took only %v: not slow enough to show anything", took)
		}
		t.Logf("%d-byte upload over %v succeeded", len(body), took)
	})

	t.Run("upload pausing longer than the allowance is cut off", func(t *testing.T) {
		body := recordsJSON("pause", 100, 2000)
		c := dialFrom(t, "", addr, 0)
		io.WriteString(c, e.signedHead("POST", coll, int64(len(body)), "pause"))
		// Half the body at once earns seconds of rate credit; the pause
		// bound still applies.
		c.Write(body[:len(body)/2])
		if d, err := closedWithin(c, testTimeouts.Body+slack); err != nil {
			t.Fatal(err)
		} else {
			t.Logf("stalled upload closed after %v", d)
		}
	})

	t.Run("upload crawling below MinRate is cut off", func(t *testing.T) {
		c := dialFrom(t, "", addr, 0)
		io.WriteString(c, e.signedHead("POST", coll, 100000, "crawl"))
		// One byte every 100 ms never pauses past the allowance but is
		// far below MinRate.
		start := time.Now()
		for time.Since(start) < testTimeouts.Body+slack {
			if _, err := c.Write([]byte("[")); err != nil {
				t.Logf("crawling upload cut off after %v", time.Since(start))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := closedWithin(c, 100*time.Millisecond); err != nil {
			t.Fatalf("crawling upload still open after %v", time.Since(start))
		}
	})

	// Enough records that the response far exceeds the socket buffers.
	for i := range 3 {
		w := e.post(coll, string(recordsJSON(fmt.Sprintf("dl%d-", i), 100, 2000)))
		expect(t, w, 200, "")
	}
	get := func(nonce string) string {
		path := coll + "?full=1&limit=300"
		auth := signHawk(e.token(), "GET", path, "127.0.0.1", "8000", e.clock.Now(), nonce, "")
		return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: " + auth + "\r\n\r\n"
	}

	t.Run("steady download succeeds", func(t *testing.T) {
		c := dialFrom(t, "", steadyAddr, 4<<10)
		io.WriteString(c, get("steady-get"))
		start := time.Now()
		// 8 KB every 20 ms.
		r := &pacedReader{r: c, chunk: 8 << 10, every: 20 * time.Millisecond}
		resp, out := readResponse(t, connReader{c, r}, "GET")
		var recs []json.RawMessage
		if err := json.Unmarshal(out, &recs); resp.StatusCode != 200 || err != nil || len(recs) != 300 {
			t.Fatalf("status %d, %d records, %v", resp.StatusCode, len(recs), err)
		}
		took := time.Since(start)
		if took < 3*steady.Write/2 {
			t.Fatalf("download took only %v: not slow enough to show anything", took)
		}
		t.Logf("%d-byte download over %v succeeded", len(out), took)
	})

	t.Run("reader that stops is cut off", func(t *testing.T) {
		c := dialFrom(t, "", addr, 4<<10)
		io.WriteString(c, get("stop-get"))
		// Never read: the server's writes block. Give it the bound, then
		// see that the connection is gone (what is left in the buffers
		// ends in EOF or a reset, not in more data forever).
		time.Sleep(testTimeouts.Write)
		deadline := time.Now().Add(slack)
		c.SetReadDeadline(deadline)
		n, err := io.Copy(io.Discard, c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection of a reader that stopped still open %v after the bound (%d bytes buffered)", slack, n)
		}
	})
}

// pacedReader hands out at most chunk bytes per call, one call per every.
type pacedReader struct {
	r     io.Reader
	chunk int
	every time.Duration
	last  time.Time
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if wait := p.every - time.Since(p.last); wait > 0 {
		time.Sleep(wait)
	}
	p.last = time.Now()
	return p.r.Read(b[:min(len(b), p.chunk)])
}

type connReader struct {
	net.Conn
	r io.Reader
}

func (c connReader) Read(p []byte) (int, error) { return c.r.Read(p) }

// A handler that is slow before its first byte (a busy database) is not
// cut off by the write bound: its clock starts with the first write.
func TestSlowHandlerIsNotTheClientsFault(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * testTimeouts.Write)
		if err := r.Context().Err(); err != nil {
			t.Errorf("request context ended while the handler worked: %v", err)
		}
		io.WriteString(w, "done")
	})
	addr := serveHardened(t, h, testTimeouts, nil)
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
	} {
		resp, err := http.DefaultClient.Do(mustRequest(t, addr, req))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "done" {
			t.Fatalf("response %q", b)
		}
	}
}

func mustRequest(t *testing.T, addr, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	r.RequestURI = ""
	r.URL.Scheme, r.URL.Host = "http", addr
	return r
}

// The header bound covers the request line: an overlong URL or header block
// is refused with 431 before any handler runs.
func TestOversizedHeadersRefused(t *testing.T) {
	e := newEnv(t)
	addr := serveHardened(t, e.srv, testTimeouts, nil)
	for name, req := range map[string]string{
		"long URL":    "GET " + e.u("/storage/bookmarks?ids=") + strings.Repeat("a,", 40<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"long header": "GET /__heartbeat__ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 80<<10) + "\r\n\r\n",
	} {
		c := dialFrom(t, "", addr, 0)
		go io.WriteString(c, req)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 431 ") {
			t.Errorf("%s: %q, want 431", name, line)
		}
	}
	// The largest legitimate request line fits: 100 ids of 64 characters,
	// every one escaped.
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = strings.Repeat("%25", 62) + fmt.Sprintf("%02d", i)
	}
	path := e.u("/storage/bookmarks?ids=" + strings.Join(ids, ","))
	auth := signHawk(e.token(), "GET", path, "127.0.0.1", "8000", e.clock.Now(), "", "")
	c := dialFrom(t, "", addr, 0)
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: "+auth+"\r\n\r\n")
	resp, body := readResponse(t, c, "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("largest legitimate GET: %d %s", resp.StatusCode, body)
	}
}

func TestClientKey(t *testing.T) {
	k := func(s string) netip.Prefix { return ClientKey(netip.MustParseAddr(s)) }
	if k("2001:db8:1:2::1") != k("2001:db8:1:2:ffff::9") {
		t.Error("two addresses of one /64 are different clients")
	}
	if k("2001:db8:1:2::1") == k("2001:db8:1:3::1") {
		t.Error("two /64s are one client")
	}
	if k("::ffff:192.0.2.7") != k("192.0.2.7") || k("192.0.2.7") == k("192.0.2.8") {
		t.Error("IPv4 clients are not keyed on their address")
	}
	if k("fe80::1%eth0") != k("fe80::2") {
		t.Error("the zone splits a /64")
	}
}

// Connections over a cap are closed at once, while other clients still get
// in; a closed connection frees its place.
func TestConnectionCaps(t *testing.T) {
	e := newEnv(t)
	slow := testTimeouts
	slow.Header, slow.Idle = 20*time.Second, 20*time.Second // hold places while we look
	var refusedPer, refusedTotal atomic.Int32
	addr := serveHardened(t, e.srv, slow, func(ln net.Listener) net.Listener {
		return LimitListener(ln, ConnLimits{PerClient: 3, Total: 6, Refused: func(_ netip.Prefix, per bool) {
			if per {
				refusedPer.Add(1)
			} else {
				refusedTotal.Add(1)
			}
		}})
	})
	admitted := func(c net.Conn) bool {
		t.Helper()
		if _, err := io.WriteString(c, "GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return false
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.SetReadDeadline(time.Time{})
		return strings.HasPrefix(line, "HTTP/1.1 200 ")
	}
	var held []net.Conn
	for range 3 {
		c := dialFrom(t, "127.0.0.1", addr, 0)
		if !admitted(c) {
			t.Fatal("a connection under the cap was refused")
		}
		held = append(held, c)
	}
	if admitted(dialFrom(t, "127.0.0.1", addr, 0)) {
		t.Fatal("a fourth connection from one address was admitted over a per-client cap of 3")
	}
	if !admitted(dialFrom(t, "127.0.0.2", addr, 0)) {
		t.Fatal("another address was refused while the first one was at its cap")
	}
	// Four held; two more addresses fill the total of six.
	for _, ip := range []string{"127.0.0.3", "127.0.0.4"} {
		if !admitted(dialFrom(t, ip, addr, 0)) {
			t.Fatalf("%s refused under the total cap", ip)
		}
	}
	if admitted(dialFrom(t, "127.0.0.5", addr, 0)) {
		t.Fatal("a seventh connection was admitted over a total cap of 6")
	}
	// Closing one frees its place (once the server notices the close).
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for !admitted(dialFrom(t, "127.0.0.1", addr, 0)) {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection never gave its place back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if refusedPer.Load() < 1 || refusedTotal.Load() < 1 {
		t.Fatalf("Refused saw %d per-client and %d total refusals", refusedPer.Load(), refusedTotal.Load())
	}
}

// A trusted proxy carries many clients: it is exempt from the per-client
// cap, though not from the total.
func TestConnectionCapExemptProxy(t *testing.T) {
	e := newEnv(t)
	slow := testTimeouts
	slow.Header, slow.Idle = 20*time.Second, 20*time.Second
	addr := serveHardened(t, e.srv, slow, func(ln net.Listener) net.Listener {
		return LimitListener(ln, ConnLimits{PerClient: 1, Total: 4, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	})
	var conns []net.Conn
	for range 5 {
		conns = append(conns, dialFrom(t, "127.0.0.1", addr, 0))
	}
	ok := 0
	for _, c := range conns {
		io.WriteString(c, "GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, _ := bufio.NewReader(c).ReadString('\n'); strings.HasPrefix(line, "HTTP/1.1 200 ") {
			ok++
		}
	}
	if ok != 4 {
		t.Fatalf("%d of 5 proxy connections admitted, want 4 (the total cap)", ok)
	}
}

// A large body is read only after the request proved who sent it: a bad or
// foreign Hawk header is refused at once, without waiting for (or
// buffering) the body, even when it carries a payload hash.
func TestAuthenticationBeforeBody(t *testing.T) {
	e := newEnv(t)
	patient := testTimeouts
	patient.Body = 20 * time.Second // a read of the body would show as a wait
	addr := serveHardened(t, e.srv, patient, nil)
	coll := e.u("/storage/bookmarks")
	other := e.tokenWith(tokenOpts{uid: e.uid + 1})
	head := func(auth string) string {
		return "POST " + coll + " HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: " + auth +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.FormatInt(e.srv.limits.MaxRequestBytes, 10) + "\r\n\r\n["
	}
	for name, auth := range map[string]string{
		"no MAC":            `Hawk id="x", ts="1", nonce="n", mac="bm9wZQ=="`,
		"another user's":    signHawk(other, "POST", coll, "127.0.0.1", "8000", e.clock.Now(), "o1", "aGFzaA=="),
		"wrong key, hashed": signHawk(creds{id: e.token().id, key: "wrong"}, "POST", coll, "127.0.0.1", "8000", e.clock.Now(), "o2", "aGFzaA=="),
	} {
		c := dialFrom(t, "", addr, 0)
		start := time.Now()
		io.WriteString(c, head(auth))
		c.SetReadDeadline(start.Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 401 ") {
			t.Errorf("%s: %q (%v) after %v, want a prompt 401", name, line, err, time.Since(start))
		}
	}
}

// TestHijackedConnectionKeepsNoDeadline: a handler that takes the
// connection over (a WebSocket) and returns at once leaves a connection
// with no deadline, however long it then lives.
func TestHijackedConnectionKeepsNoDeadline(t *testing.T) {
	short := Timeouts{Header: 100 * time.Millisecond, Body: 100 * time.Millisecond, Write: 100 * time.Millisecond, Idle: 100 * time.Millisecond}
	got := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- err
			return
		}
		go func() { // outlives the handler, as a WebSocket session does
			defer c.Close()
			time.Sleep(400 * time.Millisecond)
			if _, err := rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nlater"); err != nil {
				got <- err
				return
			}
			got <- rw.Flush()
		}()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h, short, nil)
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-got; err != nil || string(body) != "later" {
		t.Fatalf("write on the hijacked connection after the deadlines: %v, body %q", err, body)
	}
}
