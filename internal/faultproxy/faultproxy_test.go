package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/testkit"
)

// echoServer answers every line with the line itself and records what it
// received.
type echoServer struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
}

func newEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					e.mu.Lock()
					e.seen = append(e.seen, strings.TrimSpace(line))
					e.mu.Unlock()
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return e
}

func (e *echoServer) received() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &client{c: c, r: bufio.NewReader(c)}
}

// roundTrip sends a line and reads the echo.
func (c *client) roundTrip(line string) (string, error) {
	if _, err := c.c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	return strings.TrimSpace(got), err
}

// connected is an echo server behind a proxy and one connection through
// it that has made a round trip.
func connected(t *testing.T) (*Proxy, *client) {
	t.Helper()
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("before"); err != nil {
		t.Fatal(err)
	}
	return p, c
}

func TestForwards(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	for _, s := range []string{"hello", "world"} {
		got, err := c.roundTrip(s)
		if err != nil || got != s {
			t.Fatalf("roundTrip(%q) = %q, %v", s, got, err)
		}
	}
	if n := p.Conns(); n != 1 {
		t.Errorf("Conns = %d, want 1", n)
	}
	if n := p.Accepted(); n != 1 {
		t.Errorf("Accepted = %d, want 1", n)
	}
	if n := p.Requests(); n != 2 {
		t.Errorf("Requests = %d, want 2", n)
	}
}

func TestRejectsNonLoopbackTarget(t *testing.T) {
	for _, target := range []string{"192.0.2.1:3306", "example.com:5432", "nohost"} {
		if p, err := New(target); err == nil {
			p.Close()
			t.Errorf("New(%q) accepted a target off the loopback network", target)
		}
	}
}

func TestDropAll(t *testing.T) {
	p, c := connected(t)
	p.DropAll()
	if _, err := c.roundTrip("after"); err == nil {
		t.Fatal("connection survived DropAll")
	}
	testkit.Eventually(t, 5*time.Second, "every proxied connection closed", func() bool { return p.Conns() == 0 })
	// New connections work at once.
	c2 := dial(t, p.Addr())
	if got, err := c2.roundTrip("again"); err != nil || got != "again" {
		t.Fatalf("after DropAll: %q, %v", got, err)
	}
}

func TestRefuseResume(t *testing.T) {
	p, c := connected(t)
	p.Refuse()
	if _, err := c.roundTrip("after"); err == nil {
		t.Fatal("connection survived Refuse")
	}
	_, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: %v, want connection refused", err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, p.Addr())
	if got, err := c2.roundTrip("back"); err != nil || got != "back" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
}

func TestCutOn(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c1 := dial(t, p.Addr())
	c2 := dial(t, p.Addr())
	if _, err := c2.roundTrip("bystander"); err != nil {
		t.Fatal(err)
	}
	tripped := p.CutOn("commit")
	if got, err := c1.roundTrip("insert 1"); err != nil || got != "insert 1" {
		t.Fatalf("unrelated statement: %q, %v", got, err)
	}
	select {
	case <-tripped:
		t.Fatal("trigger fired early")
	default:
	}
	if _, err := c1.roundTrip("COMMIT"); !isCut(err) {
		t.Fatalf("COMMIT went through the armed proxy: %v", err)
	}
	<-tripped
	for _, s := range e.received() {
		if s == "COMMIT" {
			t.Fatal("the server received the statement the trigger cut")
		}
	}
	// Every connection was cut, not only the sender's.
	if _, err := c2.roundTrip("still there?"); err == nil {
		t.Fatal("other connection survived the trigger")
	}
	// One-shot: the next COMMIT goes through.
	c3 := dial(t, p.Addr())
	if got, err := c3.roundTrip("commit"); err != nil || got != "commit" {
		t.Fatalf("after the trigger: %q, %v", got, err)
	}
}

func TestStall(t *testing.T) {
	p, c := connected(t)
	p.Stall()
	p.Stall() // idempotent
	_ = c.c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.roundTrip("held")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled round trip: %v, want a timeout", err)
	}
	if p.Conns() != 1 {
		t.Fatalf("Stall closed connections: %d open", p.Conns())
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	// The held line arrives after Resume.
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := c.r.ReadString('\n'); err != nil || strings.TrimSpace(got) != "held" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
	if got, err := c.roundTrip("after"); err != nil || got != "after" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
}

func TestCutOnNth(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	tripped := p.CutOnNth("UID\x00\x01", 3)
	for i, line := range []string{"a uid\x00\x01", "b", "c UID\x00\x01"} {
		if got, err := c.roundTrip(line); err != nil || got != line {
			t.Fatalf("line %d: %q, %v", i, got, err)
		}
	}
	if _, err := c.roundTrip("d uid\x00\x01"); !isCut(err) {
		t.Fatalf("third chunk with the pattern went through: %v", err)
	}
	<-tripped
}

func TestDisarm(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	p.CutOn("x")
	p.Disarm()
	c := dial(t, p.Addr())
	if got, err := c.roundTrip("x"); err != nil || got != "x" {
		t.Fatalf("disarmed trigger fired: %q, %v", got, err)
	}
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newProxy(t, addr)
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		return // reset before the dial returned: as good
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := (&client{c: c, r: bufio.NewReader(c)}).roundTrip("anyone?"); err == nil {
		t.Fatal("proxy to a dead target answered")
	}
}

func TestCloseEndsEverything(t *testing.T) {
	e := newEcho(t)
	p, err := New(e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("x"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	if err := p.Resume(); err == nil {
		t.Fatal("Resume after Close succeeded")
	}
}

func isCut(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset"))
}

func TestLatency(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	const lat = 100 * time.Millisecond
	p.SetLatency(lat)
	c := dial(t, p.Addr())
	start := time.Now()
	if got, err := c.roundTrip("slow"); err != nil || got != "slow" {
		t.Fatalf("roundTrip = %q, %v", got, err)
	}
	if d := time.Since(start); d < 2*lat {
		t.Fatalf("round trip took %v, want at least %v (latency each way)", d, 2*lat)
	}
	// Chunks in flight overlap: ten lines sent at once come back about
	// one round trip later, not ten. About 3 lat; delays that added up
	// would take over 10 lat in every attempt, while a loaded machine
	// can stall the reader for a few hundred ms (8 lat failed 2 of 100
	// runs at load average 25 with lat 50 ms): one attempt within 8 lat in three is the
	// proof.
	for attempt := 1; ; attempt++ {
		d := tenOverlapping(t, c, lat)
		if d <= 8*lat {
			break
		}
		if attempt == 3 {
			t.Fatalf("ten overlapping round trips took %v, over %v in each of %d attempts: the delays add up", d, 8*lat, attempt)
		}
		t.Logf("attempt %d: ten overlapping round trips took %v, over %v; trying again", attempt, d, 8*lat)
	}
	// A connection accepted after SetLatency(0) is not delayed, and one
	// closed by the client still delivers what it sent.
	p.SetLatency(0)
	c2 := dial(t, p.Addr())
	if got, err := c2.roundTrip("fast"); err != nil || got != "fast" {
		t.Fatalf("roundTrip = %q, %v", got, err)
	}
}

// tenOverlapping sends ten lines lat/10 apart through c and returns how
// long it took until all ten came back.
func tenOverlapping(t *testing.T, c *client, lat time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for i := range 10 {
		if _, err := c.c.Write([]byte(strings.Repeat("x", i+1) + "\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lat / 10)
	}
	for i := range 10 {
		got, err := c.r.ReadString('\n')
		if err != nil || strings.TrimSpace(got) != strings.Repeat("x", i+1) {
			t.Fatalf("line %d: %q, %v", i, got, err)
		}
	}
	return time.Since(start)
}

// A trigger still cuts before the statement reaches the server when the
// chunks go through the delay line.
func TestLatencyCutOn(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	p.SetLatency(time.Millisecond)
	c := dial(t, p.Addr())
	if got, err := c.roundTrip("a"); err != nil || got != "a" {
		t.Fatalf("roundTrip = %q, %v", got, err)
	}
	tripped := p.CutOn("COMMIT")
	if _, err := c.roundTrip("commit"); !isCut(err) {
		t.Fatalf("round trip through the trigger: %v, want the connection cut", err)
	}
	<-tripped
	for _, s := range e.received() {
		if s == "commit" {
			t.Fatal("the server saw the cut statement")
		}
	}
}
