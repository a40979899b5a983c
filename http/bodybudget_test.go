package http

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBodyBudget: a request waits for room in --max-body-memory before it
// reads its body, gets 503 + Retry-After (and writes nothing) when none
// comes in time, and the room returns when the request that held it ends.
func TestBodyBudget(t *testing.T) {
	e, cl := startServer(t, func(c *Config) { c.MaxBodyMemory = 3000 })
	e.srv.bodies.wait = 200 * time.Millisecond
	path := e.u("/storage/history")
	body := func(id string) string {
		return `[{"id":"` + id + `","payload":"` + strings.Repeat("x", 1900) + `"}]`
	}
	post := func(id string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("POST", cl.base.String()+path, strings.NewReader(body(id)))
		r.Header.Set("Authorization", cl.sign("POST", path))
		r.Header.Set("Content-Type", "application/json")
		resp, err := cl.http.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// A slow uploader: headers and half of its body, then a pause. Its
	// reservation (its Content-Length) is taken before the body is read.
	conn, err := net.Dial("tcp", cl.base.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	slow := body("slow")
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, cl.base.Host, cl.sign("POST", path), len(slow), slow[:1000])
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.bodies.held.Load() != int64(len(slow)+1) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow upload holds %d bytes of the budget, want %d (its length and room for EOF)", e.srv.bodies.held.Load(), len(slow)+1)
		}
		time.Sleep(time.Millisecond)
	}

	// No room for a second body of that size: 503, Retry-After, nothing written.
	resp := post("refused")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second upload: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := getStatus(t, cl, e.u("/storage/history/refused")); st != http.StatusNotFound {
		t.Fatalf("the refused record: GET %d, want 404", st)
	}

	// The slow upload completes and frees its room; the next upload fits.
	if _, err := conn.Write([]byte(slow[1000:])); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	sr.Body.Close()
	if sr.StatusCode != http.StatusOK {
		t.Fatalf("slow upload: %d, want 200", sr.StatusCode)
	}
	if resp := post("after"); resp.StatusCode != http.StatusOK {
		t.Fatalf("upload after the slow one ended: %d, want 200", resp.StatusCode)
	}
	if n := e.srv.bodies.held.Load(); n != 0 {
		t.Fatalf("%d bytes still held with no request running", n)
	}
}

func getStatus(t *testing.T, cl *client, path string) int {
	t.Helper()
	r, _ := http.NewRequest("GET", cl.base.String()+path, nil)
	r.Header.Set("Authorization", cl.sign("GET", path))
	resp, err := cl.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
