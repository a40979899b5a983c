package mysql_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/hawk"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/tokenlib"
)

// serverPacketLimit is the server's max_allowed_packet; tests that write a
// record over it skip when it is too large to write in a test.
func serverPacketLimit(t *testing.T, db *sqlstore.DB) int64 {
	t.Helper()
	var limit int64
	if err := db.Read.QueryRowContext(t.Context(), `SELECT @@max_allowed_packet`).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit > 64<<20 {
		t.Skipf("max_allowed_packet is %d: too large for this test", limit)
	}
	return limit
}

// TestRecordOverPacketLimit: a record within weave's limits that is over
// the server's max_allowed_packet gets 413 with the size-limit code (17),
// not a 5xx, and nothing of its write is stored: neither the record nor
// the others of its POST. The server's limit cannot be lowered for one
// test (the variable is read-only per session, and the global one is every
// test's), so weave's limits are raised above it instead.
func TestRecordOverPacketLimit(t *testing.T) {
	// A generous deadline: a statement of the server's limit is slow to
	// escape under the race detector.
	st, err := sqlstore.OpenStore(t.Context(), dbtest.MySQL(t), sqlstore.PoolOptions{Timeout: 2 * time.Minute}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	limit := serverPacketLimit(t, st.DB())

	const secret = "packet-limit-test-secret"
	ts := httptest.NewUnstartedServer(nil)
	public := "http://" + ts.Listener.Addr().String()
	lim := weave.DefaultLimits()
	lim.MaxRecordPayloadBytes = limit + 1024
	lim.MaxPostBytes = 2 * lim.MaxRecordPayloadBytes
	lim.MaxRequestBytes = 2*lim.MaxRecordPayloadBytes + 64<<10
	srv, err := weavehttp.New(weavehttp.Config{Store: st, PublicURL: public, Secrets: []string{secret}, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(ts.Close)

	const uid = 42
	id, key, err := tokenlib.Sign(secret, tokenlib.Payload{UID: uid, Node: public, Expires: time.Now().Add(time.Hour).Unix(),
		FxAUID: "a1b2c3d4e5f60718293a4b5c6d7e8f90", FxAKid: "1700000000000-ASNFZ4mrze8BI0VniavN7w"})
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	do := func(method, path, body string) (int, string) {
		t.Helper()
		target := "/1.5/" + strconv.Itoa(uid) + path
		r, err := http.NewRequest(method, public+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", hawk.Authorization(key, id, hawk.Artifacts{
			TS: strconv.FormatInt(time.Now().Unix(), 10), Method: method, RequestTarget: target, Host: host, Port: port,
		}))
		resp, err := ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, strings.TrimSpace(string(got))
	}
	big := strings.Repeat("a", int(limit)+10)

	if st, body := do("PUT", "/storage/history/big", `{"payload":"`+big+`"}`); st != http.StatusRequestEntityTooLarge || body != "17" {
		t.Fatalf("PUT of a %d-byte payload (max_allowed_packet %d): %d %q, want 413 17", len(big), limit, st, body)
	}
	if st, body := do("POST", "/storage/history", `[{"id":"small","payload":"s"},{"id":"big","payload":"`+big+`"}]`); st != http.StatusRequestEntityTooLarge || body != "17" {
		t.Fatalf("POST with a %d-byte payload (max_allowed_packet %d): %d %q, want 413 17", len(big), limit, st, body)
	}
	for _, rec := range []string{"big", "small"} {
		if st, _ := do("GET", "/storage/history/"+rec, ""); st != http.StatusNotFound {
			t.Errorf("GET of record %q of a refused write: %d, want 404", rec, st)
		}
	}
	if st, body := do("GET", "/info/collections", ""); st != http.StatusOK || body != "{}" {
		t.Errorf("info/collections after the refused writes: %d %s, want 200 {}", st, body)
	}
	if st, body := do("PUT", "/storage/history/small", `{"payload":"s"}`); st != http.StatusOK {
		t.Fatalf("the next write: %d %q, want 200", st, body)
	}
}

// TestWarnPacketLimit: one warning at startup, naming both numbers and the
// fix, when the server's max_allowed_packet is below the largest record
// payload weave accepts; none when it is not.
func TestWarnPacketLimit(t *testing.T) {
	db, err := mysql.Open(t.Context(), dbtest.MySQL(t), sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var limit int64
	if err := db.Read.QueryRowContext(t.Context(), `SELECT @@max_allowed_packet`).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	warn := func(payload int64) string {
		var logs bytes.Buffer
		lim := weave.DefaultLimits()
		lim.MaxRecordPayloadBytes = payload
		mysql.WarnPacketLimit(t.Context(), db, lim, slog.New(slog.NewTextHandler(&logs, nil)))
		return logs.String()
	}
	if got := warn(limit); got != "" {
		t.Errorf("payloads up to max_allowed_packet (%d): logged %s", limit, got)
	}
	got := warn(limit + 1)
	for _, want := range []string{"level=WARN", strconv.FormatInt(limit, 10) + " bytes", strconv.FormatInt(limit+1, 10) + " bytes", "SET GLOBAL max_allowed_packet", "my.cnf"} {
		if !strings.Contains(got, want) {
			t.Errorf("payloads up to %d bytes, max_allowed_packet %d: the log lacks %q: %s", limit+1, limit, want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 1 {
		t.Errorf("%d log lines, want 1: %s", n, got)
	}
}
