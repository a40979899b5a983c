package legacy_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/internal/testkit"
)

// TestSlowUploadsAfterAuthentication: behind weave serve's slow-client
// deadlines, an authenticated 1.1 upload is a transfer like a 1.5 one. It
// may take longer than the small-request allowance while it keeps moving,
// and it is still cut off when it stalls.
func TestSlowUploadsAfterAuthentication(t *testing.T) {
	to := weavehttp.Timeouts{Header: 2 * time.Second, Body: 400 * time.Millisecond, Write: 400 * time.Millisecond, Idle: 2 * time.Second, MinRate: 1024}
	srv := newServer(t, backends[0], serverOpts{timeouts: &to})
	c := newUser(t, srv, "slow@example.com")
	u, err := url.Parse(c.cluster + "1.1/" + c.username + "/storage/history")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("[")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":"slow%04d","payload":%q}`, i, strings.Repeat("p", 2000))
	}
	b.WriteString("]")
	body := []byte(b.String())
	head := func() string {
		auth := base64.StdEncoding.EncodeToString([]byte(c.username + ":" + c.password))
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			u.RequestURI(), u.Host, auth, len(body))
	}
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("steady upload succeeds", func(t *testing.T) {
		// 4 KB every 40 ms, about five allowances long in all.
		conn, start := testkit.SteadyUpload(t, body, func(int) (net.Conn, string) { return dial(), head() })
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("after %v: %v", time.Since(start), err)
		}
		out, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || strings.Count(string(out), "slow0") != 100 {
			t.Fatalf("status %d after %v: %.200s", res.StatusCode, time.Since(start), out)
		}
		if took := time.Since(start); took < 3*to.Body {
			t.Fatalf("upload took only %v: not slow enough to show anything", took)
		}
	})

	t.Run("stalled upload is cut off", func(t *testing.T) {
		conn := dial()
		io.WriteString(conn, head())
		conn.Write(body[:len(body)/2])
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(to.Body + 3*time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Fatalf("stalled upload still open after %v: %v", time.Since(start), err)
		}
	})
}
