package push_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHelloInUpgradePacket: a client that sends its hello without waiting
// for the 101 (here in the same write as the upgrade request, so the HTTP
// server has already buffered it) is answered: the session's small read
// buffer starts with those bytes.
func TestHelloInUpgradePacket(t *testing.T) {
	s := newServer(t, openSQLite(t), nil)
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))

	hello := []byte(`{"messageType":"hello","use_webpush":true,"broadcasts":{}}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(hello))}, mask[:]...)
	for i, b := range hello {
		frame = append(frame, b^mask[i%4])
	}
	req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Protocol: push-notification\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}

	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var h [2]byte
	if _, err := br.Read(h[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Read(h[1:]); err != nil {
		t.Fatal(err)
	}
	if h[0] != 0x81 || h[1] >= 126 {
		t.Fatalf("frame header % x, want a short text frame", h)
	}
	body := make([]byte, h[1])
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), `{"messageType":"hello","uaid":"`) {
		t.Fatalf("reply %s", body)
	}
}
