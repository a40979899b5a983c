// Package testkit holds the helpers that tests across the module share: a
// free port, polling for a condition, a settable clock, a plain GET, a
// memcached child process and a Hawk-signing client. Only tests import it.
package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/hawk"
)

// Required reports whether a missing tool (memcached, a browser, a
// database server) fails the test rather than skipping it, as
// internal/dbtest.Required.
func Required() bool {
	v, _ := strconv.ParseBool(os.Getenv("WEAVE_REQUIRE_BACKENDS"))
	return v
}

// Skip skips the test for a missing tool, or fails it when Required.
func Skip(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg + "; WEAVE_REQUIRE_BACKENDS=1 makes this a failure")
	}
	t.Skip(msg)
}

// FreeAddr returns a 127.0.0.1 host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

// Eventually polls cond every millisecond (fine enough to catch a moment
// in flight) until it holds, and returns how long that took; after within
// it fails the test with what.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// Clock is a time source a test sets: Now stays where it was put until
// Add moves it. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ErrMatches reports whether err is what a table test wants: no error for
// want "", else an error whose message contains want.
func ErrMatches(err error, want string) bool {
	if err == nil || want == "" {
		return (err == nil) == (want == "")
	}
	return strings.Contains(err.Error(), want)
}

// Get sends req with http.DefaultClient and returns the status and the
// whole body; a transport error fails the test.
func Get(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Memcached is a memcached child process on a free 127.0.0.1 port, which a
// test can stop and start again on the same port.
type Memcached struct {
	t    testing.TB
	bin  string
	port int
	cmd  *exec.Cmd
	exit chan struct{}
	// started: the server has run, so a restart must keep its port.
	started bool
}

// StartMemcached starts a memcached for the test, or skips the test when
// the binary is missing (failing instead with WEAVE_REQUIRE_BACKENDS=1).
func StartMemcached(t testing.TB) *Memcached {
	t.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		Skip(t, "memcached not found in PATH (apt-get install memcached)")
	}
	m := &Memcached{t: t, bin: bin, port: FreePort(t)}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Addr is the server's host:port.
func (m *Memcached) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }

// Start starts the server (again) and waits until it answers.
func (m *Memcached) Start() {
	m.t.Helper()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(m.port), "-U", "0", "-m", "64", "-t", "2", "-c", "1024"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without it
	}
	var lastErr error
	for range 50 {
		cmd := exec.Command(m.bin, args...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			m.t.Fatalf("start memcached: %v", err)
		}
		exit := make(chan struct{})
		go func() { cmd.Wait(); close(exit) }()
		up, exited := false, false
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && !up && !exited; time.Sleep(10 * time.Millisecond) {
			select {
			case <-exit:
				exited, lastErr = true, fmt.Errorf("memcached exited (port %d busy?)", m.port)
			default:
				lastErr = ping(m.Addr(), cmd.Process.Pid)
				up = lastErr == nil
			}
		}
		if up {
			m.cmd, m.exit, m.started = cmd, exit, true
			return
		}
		cmd.Process.Kill()
		<-exit
		time.Sleep(100 * time.Millisecond) // the port may still be held: try again
		if !m.started {
			// Another process took the port after FreePort found it free:
			// only a restart must keep its port.
			m.port = FreePort(m.t)
			args[slices.Index(args, "-p")+1] = strconv.Itoa(m.port)
		}
	}
	m.t.Fatalf("memcached on %s did not start: %v", m.Addr(), lastErr)
}

// Stop kills the server, losing everything it held.
func (m *Memcached) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exit
	m.cmd = nil
}

// ping asks the memcached at addr for its process id and checks that it
// is pid: a port found free a moment ago may since have been taken by
// another test's memcached, which would answer a plain ping while ours
// exits for want of the port.
func ping(addr string, pid int) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "stats\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		switch line = strings.TrimRight(line, "\r\n"); {
		case line == "STAT pid "+strconv.Itoa(pid):
			return nil
		case strings.HasPrefix(line, "STAT pid "):
			return fmt.Errorf("%s is another memcached (%s), not ours (pid %d)", addr, line, pid)
		case !strings.HasPrefix(line, "STAT "):
			return fmt.Errorf("unexpected answer %q", line)
		}
	}
}

// Response is an answer read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// HawkDo sends method url signed with the Hawk credentials (key, id) as
// Firefox would: body, if not nil, as JSON with its payload hash; headers
// are name, value pairs set after signing.
func HawkDo(hc *http.Client, key, id, method, url string, body any, headers ...string) (Response, error) {
	var raw []byte
	ct := ""
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return Response{}, err
		}
		ct = "application/json"
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(raw))
	if err != nil {
		return Response{}, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	auth, err := hawk.Sign(key, id, method, url, ct, raw, time.Now(), "")
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Authorization", auth)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{resp.StatusCode, resp.Header, b}, nil
}

// SteadyUpload sends a head and then body in 4 KB pieces 40 ms apart (a
// slow but steady client, about 100 KB/s) on a connection from dial, and
// returns the connection, still to be read, with the time the head went
// out. A machine so loaded that it starves the sender past a server's
// pause bound gets the upload cut off, as it should (seen at a load
// average of 30 on two cores): that gets two more tries on a new
// connection (dial gets the attempt's number, e.g. for a fresh Hawk
// nonce); a server that cuts off steady uploads fails all three.
func SteadyUpload(t testing.TB, body []byte, dial func(attempt int) (conn net.Conn, head string)) (net.Conn, time.Time) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		conn, head := dial(attempt)
		start := time.Now()
		_, err := io.WriteString(conn, head)
		for p := body; len(p) > 0 && err == nil; {
			n := min(len(p), 4<<10)
			if _, err = conn.Write(p[:n]); err != nil {
				break
			}
			p = p[n:]
			time.Sleep(40 * time.Millisecond)
		}
		if err == nil {
			return conn, start
		}
		conn.Close()
		if attempt == 3 {
			t.Fatalf("server stopped reading a steady upload after %v: %v (and in two attempts before)", time.Since(start), err)
		}
		t.Logf("attempt %d: server stopped reading a steady upload after %v: %v; trying again", attempt, time.Since(start), err)
	}
}
