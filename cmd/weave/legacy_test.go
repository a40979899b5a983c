package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/legacy"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestServeLegacy runs `weave serve --legacy` next to the 1.5 token server
// and checks the wiring: an operator-made 1.1 account (weave legacy-user)
// finds its node and syncs over Basic auth on the same node as 1.5, the
// /1.0/ storage prefix does not take the token server's /1.0/sync/1.5,
// closed sign-up answers "1" to the wizard, and the CLI lists, resets
// (also with a reset link) and deletes.
func TestServeLegacy(t *testing.T) {
	dir := t.TempDir()
	data := dir + "/data"
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), append(args, "--data-dir", data), &out, &errb); code != 0 {
			t.Fatalf("weave %v: %d %s", args, code, errb.String())
		}
		return out.String()
	}
	cli("legacy-user", "create", "pat@example.org", "--password", "pat password 1")
	user := legacy.DeriveUsername("pat@example.org")

	srv := startServer(t, "", "--legacy", "--data-dir", data)
	if !strings.Contains(srv.stdout.String(), "Sync 1.1 is on") {
		t.Errorf("no 1.1 hint in %q", srv.stdout.String())
	}
	do := func(method, path, pw, body string, hdr ...string) (int, string, http.Header) {
		t.Helper()
		u := path
		if !strings.HasPrefix(u, "http") {
			u = srv.base + path
		}
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if pw != "" {
			req.SetBasicAuth(user, pw)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	// Closed sign-up: every name reads as taken, creation is refused.
	if st, body, _ := do("GET", "/user/1.0/a", "", ""); st != 200 || body != "1" {
		t.Fatalf("probe with closed sign-up = %d %q", st, body)
	}
	if st, _, _ := do("PUT", "/user/1.0/"+legacy.DeriveUsername("eve@example.org"), "", `{"password":"eve password","email":"eve@example.org"}`); st != 403 {
		t.Fatalf("sign-up while closed = %d", st)
	}
	st, node, _ := do("GET", "/user/1.0/"+user+"/node/weave", "pat password 1", "")
	if st != 200 || node != srv.base+"/" {
		t.Fatalf("node/weave = %d %q, want %q", st, node, srv.base+"/")
	}
	st, body, h := do("PUT", node+"1.0/"+user+"/storage/meta/global", "pat password 1", `{"id":"global","payload":"{}"}`)
	if st != 200 || body != h.Get("X-Weave-Timestamp") {
		t.Fatalf("PUT meta/global via /1.0/ = %d %q", st, body)
	}
	if st, body, _ := do("GET", node+"1.1/"+user+"/info/collections", "pat password 1", ""); st != 200 || !strings.Contains(body, `"meta":`) {
		t.Fatalf("info/collections = %d %q", st, body)
	}
	// A Firefox (1.5) user on the same node and store: its own uid, and
	// neither sees the other's records.
	ff := srv.client(t, "0123456789abcdef0123456789abcdef")
	ff.must(200, "PUT", "/storage/bookmarks/fx1", map[string]any{"payload": "firefox"})
	if st, body, _ := do("GET", node+"1.1/"+user+"/info/collections", "pat password 1", ""); st != 200 || strings.Contains(body, "bookmarks") {
		t.Fatalf("the 1.1 user sees %q", body)
	}
	var colls map[string]any
	ff.must(200, "GET", "/info/collections", nil).json(t, &colls)
	if _, ok := colls["meta"]; ok || len(colls) != 1 {
		t.Fatalf("the 1.5 user sees %v", colls)
	}
	if out := cli("legacy-user", "list"); strings.Contains(out, fmt.Sprintf("(uid %d)", ff.token.UID)) {
		t.Fatalf("the 1.1 user has the 1.5 user's uid %d: %q", ff.token.UID, out)
	}
	// The token server still answers its own path (401: no credentials).
	if st, body, _ := do("GET", "/1.0/sync/1.5", "", ""); st != 401 || !strings.Contains(body, "status") {
		t.Fatalf("/1.0/sync/1.5 = %d %q: taken by the 1.1 routes?", st, body)
	}

	if out := cli("legacy-user", "list"); !strings.Contains(out, user) || !strings.Contains(out, "pat@example.org") || !strings.Contains(out, "uid ") {
		t.Fatalf("legacy-user list: %q", out)
	}
	// A reset link, used on the web page.
	out := cli("legacy-user", "reset-password", "--link", "--public-url", srv.base, "pat@example.org")
	link := strings.Fields(out)[0]
	lu, err := url.Parse(link)
	if err != nil || lu.Path != "/weave-password-reset" {
		t.Fatalf("reset link %q", out)
	}
	form := url.Values{"username": {lu.Query().Get("username")}, "key": {lu.Query().Get("key")}, "password": {"pat password 2"}, "confirm": {"pat password 2"}}
	if st, body, _ := do("POST", "/weave-password-reset", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); st != 200 || !strings.Contains(body, "was changed") {
		t.Fatalf("reset page = %d %q", st, body)
	}
	if st, _, _ := do("POST", "/weave-password-reset", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); st != 400 {
		t.Fatalf("reset link used twice = %d", st)
	}
	if st, _, _ := do("GET", node+"1.1/"+user+"/info/collections", "pat password 1", ""); st != 401 {
		t.Fatalf("old password after reset = %d", st)
	}
	if st, body, _ := do("GET", node+"1.1/"+user+"/storage/meta/global", "pat password 2", ""); st != 200 || !strings.Contains(body, `"id":"global"`) {
		t.Fatalf("data after reset = %d %q", st, body)
	}
	cli("legacy-user", "reset-password", "pat@example.org", "--password", "pat password 3")
	if st, _, _ := do("GET", node+"1.1/"+user+"/info/collections", "pat password 3", ""); st != 200 {
		t.Fatalf("after operator reset = %d", st)
	}
	m := regexp.MustCompile(`uid ([0-9]+)`).FindStringSubmatch(cli("legacy-user", "list"))
	if m == nil {
		t.Fatal("legacy-user list names no uid")
	}
	uid, _ := strconv.ParseInt(m[1], 10, 64)
	cli("legacy-user", "delete", user)
	if st, _, _ := do("GET", node+"1.1/"+user+"/info/collections", "pat password 3", ""); st != 401 {
		t.Fatalf("deleted account = %d", st)
	}
	// Its records are gone from the node's database, not left to a purge.
	store, err := sqlstore.OpenStore(context.Background(), sqliteURL(filepath.Join(data, "weave.db")), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if colls, _, err := store.CollectionTimestamps(context.Background(), uid); !errors.Is(err, weave.ErrUserMoved) && (err != nil || len(colls) != 0) {
		t.Fatalf("the deleted account's uid %d still holds %v (%v)", uid, colls, err)
	}
}
