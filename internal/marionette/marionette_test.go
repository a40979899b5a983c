package marionette

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeServer speaks the wire format: a handshake, then answers each
// command with reply(name, params) → (error, result) as raw JSON.
func fakeServer(t *testing.T, handshake string, reply func(id int64, name string, params json.RawMessage, w io.Writer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(conn, "%d:%s", len(handshake), handshake)
		r := bufio.NewReader(conn)
		for {
			head, err := r.ReadString(':')
			if err != nil {
				return
			}
			n, _ := strconv.Atoi(strings.TrimSuffix(head, ":"))
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			var msg []json.RawMessage
			if json.Unmarshal(buf, &msg) != nil || len(msg) != 4 {
				t.Errorf("bad command %s", buf)
				return
			}
			var id int64
			var name string
			json.Unmarshal(msg[1], &id)
			json.Unmarshal(msg[2], &name)
			reply(id, name, msg[3], conn)
		}
	}()
	return ln.Addr().String()
}

func send(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%d:%s", len(b), b)
}

const handshake = `{"applicationType":"gecko","marionetteProtocol":3}`

func TestWireFormat(t *testing.T) {
	addr := fakeServer(t, handshake, func(id int64, name string, params json.RawMessage, w io.Writer) {
		switch name {
		case "WebDriver:NewSession":
			send(w, []any{1, id, nil, map[string]any{"sessionId": "s1", "capabilities": map[string]any{}}})
		case "WebDriver:ExecuteScript":
			// A stale answer to an abandoned earlier command comes first;
			// the client must skip it. Multi-byte text checks that
			// lengths count bytes.
			send(w, []any{1, id - 1, nil, map[string]any{"value": "stale"}})
			var p struct{ Args []any }
			json.Unmarshal(params, &p)
			send(w, []any{1, id, nil, map[string]any{"value": fmt.Sprintf("écho %v", p.Args[0])}})
		case "WebDriver:FindElement":
			send(w, []any{1, id, map[string]any{"error": "no such element", "message": "nope", "stacktrace": ""}, nil})
		case "WebDriver:GetTitle":
			// never answers
		}
	})
	ctx := context.Background()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Application != "gecko" || c.Protocol != 3 {
		t.Fatalf("handshake: %+v", c)
	}
	if err := c.NewSession(ctx, nil); err != nil || c.SessionID != "s1" {
		t.Fatalf("session %q %v", c.SessionID, err)
	}
	var s string
	if err := c.ExecuteScript(ctx, "", []any{"ü"}, &s); err != nil || s != "écho ü" {
		t.Fatalf("script: %q %v", s, err)
	}
	_, err = c.FindElement(ctx, CSS, "#x")
	if !IsNoSuchElement(err) || !strings.Contains(err.Error(), "WebDriver:FindElement") {
		t.Fatalf("error response: %v", err)
	}
	// The connection is still fine after an error response.
	if err := c.ExecuteScript(ctx, "", []any{1}, &s); err != nil || s != "écho 1" {
		t.Fatalf("after error: %q %v", s, err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Title(short); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("unanswered call: %v", err)
	}
	if err := c.ExecuteScript(ctx, "", []any{1}, &s); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("call after a timeout: %v", err)
	}
}

// TestCancel: cancelling a context without a deadline ends the wait.
func TestCancel(t *testing.T) {
	addr := fakeServer(t, handshake, func(int64, string, json.RawMessage, io.Writer) {})
	c, err := Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if _, err := c.Title(ctx); err == nil || !strings.Contains(err.Error(), "canceled") || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled call: %v after %v", err, time.Since(start))
	}
}

func TestHandshakeRejectsOldProtocol(t *testing.T) {
	addr := fakeServer(t, `{"applicationType":"gecko","marionetteProtocol":2}`, nil)
	if _, err := Dial(context.Background(), addr); err == nil {
		t.Fatal("protocol 2 accepted")
	}
}

func TestElementJSON(t *testing.T) {
	b, _ := json.Marshal(Element{ID: "abc"})
	if string(b) != `{"element-6066-11e4-a52e-4f735466cecf":"abc"}` {
		t.Fatalf("marshal: %s", b)
	}
	var e Element
	if err := json.Unmarshal([]byte(`{"foo":"x"}`), &e); err == nil {
		t.Fatal("non-element accepted")
	}
}
