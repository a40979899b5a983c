package postgres

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/testkit"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestSocketAlive(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket peek here")
	}
	c, s := tcpPair(t)
	if !socketAlive(c) {
		t.Fatal("idle open connection reported dead")
	}
	s.Close()
	testkit.Eventually(t, 2*time.Second, "connection closed by the peer still reported alive", func() bool { return !socketAlive(c) })

	c, s = tcpPair(t)
	if _, err := s.Write([]byte("E")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, "connection with unexpected data reported alive", func() bool { return !socketAlive(c) })
	// The peek leaves the data in place.
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || buf[0] != 'E' {
		t.Fatalf("read after peek: %q, %v", buf, err)
	}

	// A reader parked on the socket (as pgx's background reader may be)
	// does not block the check.
	c, s = tcpPair(t)
	go func() { _, _ = c.Read(make([]byte, 1)) }()
	time.Sleep(20 * time.Millisecond)
	done := make(chan bool)
	go func() { done <- socketAlive(c) }()
	select {
	case alive := <-done:
		if !alive {
			t.Fatal("open connection with a parked reader reported dead")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("socketAlive blocks behind a parked reader")
	}
	_ = s
}
