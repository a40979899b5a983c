package http

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
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

// TestUploadRefusedBeforeBudgetWait: an upload whose query string or
// headers are bad is refused at once, while another upload holds the
// whole body budget, instead of waiting for room it does not need (and
// getting 503 when none comes). A valid upload still waits.
func TestUploadRefusedBeforeBudgetWait(t *testing.T) {
	slow := `[{"id":"slow","payload":"` + strings.Repeat("x", 1900) + `"}]`
	e, cl := startServer(t, func(c *Config) { c.MaxBodyMemory = int64(len(slow) + 1) })
	// Long enough that a request that waits gets 503, not its answer;
	// nothing below depends on how long.
	e.srv.bodies.wait = 2 * time.Second
	coll, item := e.u("/storage/history"), e.u("/storage/history/one")

	// send writes a request on a connection of its own and reads the
	// answer; length is the announced Content-Length (body's if < 0).
	send := func(method, target string, header map[string]string, body string, length int) (*http.Response, string) {
		t.Helper()
		conn, err := net.Dial("tcp", cl.base.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if length < 0 {
			length = len(body)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n",
			method, target, cl.base.Host, cl.sign(method, target), length)
		if _, ok := header["Content-Type"]; !ok {
			b.WriteString("Content-Type: application/json\r\n")
		}
		for k, v := range header {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
		b.WriteString("\r\n")
		b.WriteString(body)
		if _, err := io.WriteString(conn, b.String()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(got)
	}

	// The slow upload: headers and half of its body, then nothing until
	// the end of the test. It holds all of the budget.
	conn, err := net.Dial("tcp", cl.base.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		coll, cl.base.Host, cl.sign("POST", coll), len(slow), slow[:1000])
	deadline := time.Now().Add(time.Minute)
	for e.srv.bodies.held.Load() != e.srv.bodies.size {
		if time.Now().After(deadline) {
			t.Fatalf("the slow upload holds %d bytes of the budget, want all %d", e.srv.bodies.held.Load(), e.srv.bodies.size)
		}
		time.Sleep(time.Millisecond)
	}

	record := `[{"id":"a","payload":"p"}]`
	over := strconv.FormatInt(e.cfg.Limits.MaxPostBytes+1, 10)
	for _, c := range []struct {
		name, method, target string
		header               map[string]string
		length               int
		status               int
		code                 string
	}{
		{"malformed query", "POST", coll + "?batch=%zz", nil, -1, 400, "1"},
		{"bad batch id", "POST", coll + "?batch=" + strings.Repeat("b", maxBatchIDLength+1), nil, -1, 400, "0"},
		{"commit without batch", "POST", coll + "?commit=true", nil, -1, 400, "0"},
		{"bad commit", "POST", coll + "?batch=true&commit=yes", nil, -1, 400, "1"},
		{"bad X-Weave-Records", "POST", coll, map[string]string{"X-Weave-Records": "many"}, -1, 400, "1"},
		{"X-Weave-Bytes over the limit", "POST", coll, map[string]string{"X-Weave-Bytes": over}, -1, 400, "17"},
		{"X-Weave-Total-Records over the limit", "POST", coll + "?batch=true", map[string]string{"X-Weave-Total-Records": "99999999"}, -1, 400, "17"},
		{"bad Content-Type", "POST", coll, map[string]string{"Content-Type": "text/html"}, -1, 415, ""},
		{"bad X-If-Unmodified-Since", "POST", coll, map[string]string{"X-If-Unmodified-Since": "yesterday"}, -1, 400, ""},
		{"Content-Length over the limit", "POST", coll, nil, int(e.cfg.Limits.MaxRequestBytes) + 1, 413, "17"},
		{"PUT of newlines", "PUT", item, map[string]string{"Content-Type": "application/newlines"}, -1, 415, ""},
		{"PUT with bad X-If-Unmodified-Since", "PUT", item, map[string]string{"X-If-Unmodified-Since": "-1"}, -1, 400, ""},
		{"PUT with Content-Length over the limit", "PUT", item, nil, int(e.cfg.Limits.MaxRequestBytes) + 1, 413, "17"},
	} {
		body := record
		if c.method == "PUT" {
			body = `{"payload":"p"}`
		}
		if c.length >= 0 {
			body = "" // announced, never sent: the answer must not need it
		}
		resp, got := send(c.method, c.target, c.header, body, c.length)
		if resp.StatusCode != c.status || c.code != "" && got != c.code {
			t.Errorf("%s: %d %q, want %d %s at once, while another upload holds the body budget", c.name, resp.StatusCode, got, c.status, c.code)
		}
		if n := e.srv.bodies.held.Load(); n != e.srv.bodies.size {
			t.Fatalf("%s: %d bytes of the budget held after the answer, want the slow upload's %d", c.name, n, e.srv.bodies.size)
		}
	}
	if st := getStatus(t, cl, e.u("/storage/history/a")); st != http.StatusNotFound {
		t.Fatalf("a refused upload's record: GET %d, want 404", st)
	}

	// The budget is still all the slow upload's: a valid upload waits
	// for it, and gets 503 when it does not come.
	if resp, _ := send("POST", coll, nil, record, -1); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a valid upload while the budget is held: %d, want 503 after the wait", resp.StatusCode)
	}
}
