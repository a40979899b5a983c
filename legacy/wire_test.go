package legacy_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/legacy"
)

// newUser makes an account through the User API (open sign-up) and looks
// its node up; the client then talks to node 1.
func newUser(t *testing.T, srv *server, account string) *client {
	t.Helper()
	c := &client{t: t, serverURL: srv.url + "/", username: usernameFromAccount(account)}
	body := fmt.Sprintf(`{"password":"long enough pw","email":%q}`, account)
	if r := c.do("PUT", c.serverURL+"user/1.0/"+c.username, body, map[string]string{"X-Captcha-Override": "override-secret"}); r.status != 200 {
		t.Fatalf("create %s = %d %q", account, r.status, r.body)
	}
	c.password = "long enough pw"
	c.findCluster()
	return c
}

// TestStorageWire pins the Storage 1.1 answers that clients and Mozilla's
// test suites depend on: bare-integer error bodies, two-decimal
// timestamps, formats, filters, X-Confirm-Delete, X-If-Unmodified-Since,
// POST limits, routes, node states.
func TestStorageWire(t *testing.T) {
	srv := newServer(t, backends[0], serverOpts{quota: 300 * 1024})
	c := newUser(t, srv, "wire@example.com")
	st := func(method, path, body string, hdr map[string]string) resp { return c.storage(method, path, body, hdr) }

	// Bare weave codes: bad JSON 6, invalid WBO 8.
	if r := st("PUT", "storage/bookmarks/abc", `{"payload":`, nil); r.status != 400 || r.body != "6" {
		t.Fatalf("bad JSON = %d %q", r.status, r.body)
	}
	if r := st("PUT", "storage/bookmarks/abc", `{"payload":"x","sortindex":"high"}`, nil); r.status != 400 || r.body != "8" {
		t.Fatalf("bad sortindex = %d %q", r.status, r.body)
	}
	if r := st("PUT", "storage/bookmarks/abc", `{"payload":"x","ttl":31536001}`, nil); r.status != 400 || r.body != "8" {
		t.Fatalf("ttl over a year = %d %q", r.status, r.body)
	}
	if r := st("PUT", "storage/bookmarks/abc", fmt.Sprintf(`{"payload":%q}`, strings.Repeat("x", 256*1024+1)), nil); r.status != 400 || r.body != "8" {
		t.Fatalf("payload over 256 KiB = %d %q", r.status, r.body)
	}
	// Sortindex as a numeric string and as a float are coerced.
	for i, si := range []string{`"7"`, `5.9`, `-3`} {
		if r := st("PUT", fmt.Sprintf("storage/bookmarks/s%d", i), `{"payload":"p","sortindex":`+si+`}`, nil); r.status != 200 {
			t.Fatalf("sortindex %s = %d %q", si, r.status, r.body)
		}
	}
	r := st("GET", "storage/bookmarks?full=1&sort=index", "", nil)
	var ws []struct {
		ID        string `json:"id"`
		SortIndex int64  `json:"sortindex"`
	}
	if json.Unmarshal([]byte(r.body), &ws); len(ws) != 3 || ws[0].SortIndex != 7 || ws[1].SortIndex != 5 || ws[2].SortIndex != -3 {
		t.Fatalf("sort=index = %q", r.body)
	}
	// index_above / index_below, limit and numeric offset.
	if r := st("GET", "storage/bookmarks?index_above=-3&index_below=7", "", nil); r.body != `["s1"]` {
		t.Fatalf("index filters = %q", r.body)
	}
	if r := st("GET", "storage/bookmarks?sort=index&limit=1&offset=1", "", nil); r.body != `["s1"]` || r.header.Get("X-Weave-Records") != "1" {
		t.Fatalf("limit+offset = %q (%s)", r.body, r.header.Get("X-Weave-Records"))
	}
	// No record here has a parentid (TestParentIDWire covers them).
	if r := st("GET", "storage/bookmarks?parentid=x", "", nil); r.body != `[]` {
		t.Fatalf("parentid filter = %q", r.body)
	}
	// whoisi framing: 4-byte big-endian length, then the JSON.
	r = st("GET", "storage/bookmarks?sort=index&limit=2", "", map[string]string{"Accept": "application/whoisi"})
	if r.header.Get("Content-Type") != "application/whoisi" || len(r.body) != 2*4+len(`"s0"`)+len(`"s1"`) ||
		binary.BigEndian.Uint32([]byte(r.body[:4])) != 4 || r.body[4:8] != `"s0"` {
		t.Fatalf("whoisi = %q", r.body)
	}
	// Unknown item: 404 with the status text; DELETE of it: 200.
	if r := st("GET", "storage/bookmarks/nope", "", nil); r.status != 404 || r.body != "Not Found" {
		t.Fatalf("missing item = %d %q", r.status, r.body)
	}
	if r := st("DELETE", "storage/bookmarks/nope", "", nil); r.status != 200 || !twoDecimals.MatchString(r.body) {
		t.Fatalf("DELETE of a missing item = %d %q", r.status, r.body)
	}
	// X-If-Unmodified-Since: older than the collection → 412, nothing written.
	stamp := st("GET", "info/collections", "", nil)
	var stamps map[string]json.Number
	json.Unmarshal([]byte(stamp.body), &stamps)
	if r := st("POST", "storage/bookmarks", `[{"id":"late","payload":"p"}]`, map[string]string{"X-If-Unmodified-Since": "1000.00"}); r.status != 412 {
		t.Fatalf("stale X-If-Unmodified-Since = %d %q", r.status, r.body)
	}
	if r := st("PUT", "storage/bookmarks/late", `{"payload":"p"}`, map[string]string{"X-If-Unmodified-Since": string(stamps["bookmarks"])}); r.status != 200 {
		t.Fatalf("current X-If-Unmodified-Since = %d %q", r.status, r.body)
	}
	if r := st("PUT", "storage/bookmarks/late", `{"payload":"p"}`, map[string]string{"X-If-Unmodified-Since": "abc"}); r.status != 400 {
		t.Fatalf("bad X-If-Unmodified-Since = %d", r.status)
	}
	// POST limits: records past 100 get "retry wbo", payload past 1 MiB
	// "retry bytes", broken ones their reason; the rest is stored.
	var recs []string
	for i := range 103 {
		recs = append(recs, fmt.Sprintf(`{"id":"h%03d","payload":"p"}`, i))
	}
	recs = append(recs, `"not an object"`, `{"payload":"no id"}`, `{"id":"bad\u0001id","payload":"x"}`)
	r = st("POST", "storage/history", "["+strings.Join(recs, ",")+"]", nil)
	var res struct {
		Success []string            `json:"success"`
		Failed  map[string][]string `json:"failed"`
	}
	if err := json.Unmarshal([]byte(r.body), &res); err != nil || len(res.Success) != 100 ||
		fmt.Sprint(res.Failed["h100"]) != "[retry wbo]" || len(res.Failed[""]) != 3 {
		t.Fatalf("POST over the limits = %d %q", r.status, r.body)
	}
	big := strings.Repeat("b", 200*1024)
	recs = nil
	for i := range 6 {
		recs = append(recs, fmt.Sprintf(`{"id":"f%d","payload":%q}`, i, big))
	}
	r = st("POST", "storage/forms", "["+strings.Join(recs, ",")+"]", nil)
	if json.Unmarshal([]byte(r.body), &res); len(res.Success) != 5 || fmt.Sprint(res.Failed["f5"]) != "[retry bytes]" {
		t.Fatalf("POST over 1 MiB = %q", r.body[:min(200, len(r.body))])
	}
	// The quota (300 KiB here) is now exceeded: writes get 400 14, and
	// info/quota shows used and quota in KB.
	if r := st("PUT", "storage/forms/more", `{"payload":"x"}`, nil); r.status != 400 || r.body != "14" {
		t.Fatalf("over quota = %d %q", r.status, r.body)
	}
	var quota []*float64
	if r := st("GET", "info/quota", "", nil); json.Unmarshal([]byte(r.body), &quota) != nil || len(quota) != 2 || *quota[1] != 300 || *quota[0] < 1000 {
		t.Fatalf("info/quota = %q", r.body)
	}
	// A single object POSTed is a PUT of it.
	if r := st("POST", "storage/prefs", `{"id":"one","payload":"p"}`, nil); r.status != 400 || r.body != "14" {
		t.Fatalf("single-object POST over quota = %d %q", r.status, r.body)
	}
	// DELETE with filters deletes only the matches; DELETE /storage wants
	// X-Confirm-Delete.
	if r := st("DELETE", "storage/history?ids=h000,h001", "", nil); r.status != 200 {
		t.Fatalf("DELETE ids = %d", r.status)
	}
	if r := st("DELETE", "storage/bookmarks?index_above=0", "", nil); r.status != 200 {
		t.Fatalf("DELETE index_above = %d", r.status)
	}
	if r := st("GET", "storage/bookmarks?sort=index", "", nil); r.body != `["late","s2"]` && r.body != `["s2","late"]` {
		t.Fatalf("after DELETE index_above=0: %q", r.body)
	}
	if r := st("GET", "info/collection_counts", "", nil); !strings.Contains(r.body, `"history":98`) {
		t.Fatalf("collection_counts = %q", r.body)
	}
	if r := st("DELETE", "storage", "", nil); r.status != 400 || r.body != "4" {
		t.Fatalf("DELETE storage without X-Confirm-Delete = %d %q", r.status, r.body)
	}
	if r := st("DELETE", "storage", "", map[string]string{"X-Confirm-Delete": "1"}); r.status != 200 {
		t.Fatalf("DELETE storage = %d", r.status)
	}
	if r := st("GET", "info/collection_counts", "", nil); r.body != "{}" {
		t.Fatalf("after DELETE storage: %q", r.body)
	}
	if r := st("PUT", "storage/", "", nil); r.status != 400 {
		t.Fatalf("PUT storage/ = %d", r.status)
	}

	// Routes: /1.0/ and /1/ are the same API; the path user must be the
	// authenticated one; no credentials get the Basic challenge.
	for _, v := range []string{"1.0", "1"} {
		if r := c.do("GET", c.cluster+v+"/"+c.username+"/info/collections/", "", nil); r.status != 200 {
			t.Fatalf("/%s/ with trailing slash = %d", v, r.status)
		}
	}
	other := newUser(t, srv, "other@example.com")
	if r := c.do("GET", c.cluster+"1.1/"+other.username+"/info/collections", "", nil); r.status != 401 {
		t.Fatalf("another user's path = %d", r.status)
	}
	anon := &client{t: t}
	if r := anon.do("GET", c.cluster+"1.1/"+c.username+"/info/collections", "", nil); r.status != 401 || r.header.Get("WWW-Authenticate") != `Basic realm="Sync"` {
		t.Fatalf("no credentials = %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	// The user lives on node 1: node 2 answers 401 (node reassignment).
	if r := c.do("GET", srv.nodes[1].URL+"/1.1/"+c.username+"/info/collections", "", nil); r.status != 401 {
		t.Fatalf("request on the wrong node = %d", r.status)
	}

	// Node states: backoff adds X-Weave-Backoff; down is 503 with
	// Retry-After and X-Weave-Backoff.
	srv.setState(0, weave.NodeBackoff, 0, 900*time.Second)
	if r := st("GET", "info/collections", "", nil); r.status != 200 || r.header.Get("X-Weave-Backoff") != "900" {
		t.Fatalf("backoff node = %d, X-Weave-Backoff %q", r.status, r.header.Get("X-Weave-Backoff"))
	}
	srv.setState(0, weave.NodeDown, 120*time.Second, 0)
	if r := st("GET", "info/collections", "", nil); r.status != 503 || r.header.Get("Retry-After") != "120" || r.header.Get("X-Weave-Backoff") != "120" {
		t.Fatalf("down node = %d, Retry-After %q, X-Weave-Backoff %q", r.status, r.header.Get("Retry-After"), r.header.Get("X-Weave-Backoff"))
	}
	srv.setState(0, weave.NodeUp, 0, 0)
	if r := st("GET", "info/collections", "", nil); r.status != 200 || r.header.Get("X-Weave-Backoff") != "" {
		t.Fatalf("up again = %d %q", r.status, r.header.Get("X-Weave-Backoff"))
	}
}

// TestUserAPIWire pins the User API answers the wizard parses.
func TestUserAPIWire(t *testing.T) {
	srv := newServer(t, backends[0], serverOpts{signup: "open"})
	c := &client{t: t, serverURL: srv.url + "/", username: usernameFromAccount("x@example.com")}
	put := func(body string) resp {
		return c.do("PUT", c.serverURL+"user/1.0/"+c.username, body, nil)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"password":`, "6"},
		{`{"password":"long enough pw","email":"not an email"}`, "12"},
		{`{"password":"long enough pw","email":"y@example.com"}`, "15"},
		{`{"email":"x@example.com"}`, "7"},
		{`{"password":"short","email":"x@example.com"}`, "9"},
	} {
		if r := put(tc.body); r.status != 400 || r.body != tc.want {
			t.Errorf("PUT %s = %d %q, want 400 %s", tc.body, r.status, r.body, tc.want)
		}
	}
	if r := put(`{"password":"long enough pw","email":"x@example.com"}`); r.status != 200 || r.body != c.username {
		t.Fatalf("open sign-up = %d %q", r.status, r.body)
	}
	// With open sign-up there is no captcha page: the wizard hides it.
	if r := c.do("GET", c.serverURL+"misc/1.0/captcha_html", "", nil); r.status != 404 {
		t.Fatalf("captcha_html with open sign-up = %d", r.status)
	}
	// /user/1/ is the same API; an unknown user's node is 404 (the client
	// then uses the server URL).
	if r := c.do("GET", c.serverURL+"user/1/"+c.username+"/", "", nil); r.body != "1" {
		t.Fatalf("/user/1/ = %q", r.body)
	}
	ghost := &client{t: t, serverURL: c.serverURL, username: "ghost", password: "long enough pw"}
	if r := ghost.do("GET", c.serverURL+"user/1.0/ghost/node/weave", "", nil); r.status != 404 {
		t.Fatalf("unknown user's node = %d", r.status)
	}
	c.password = "long enough pw"
	// Weak new password: 400 with a message; e-mail change; delete "1".
	if r := c.do("POST", c.serverURL+"user/1.0/"+c.username+"/password", "short", nil); r.status != 400 {
		t.Fatalf("weak new password = %d", r.status)
	}
	if r := c.do("POST", c.serverURL+"user/1.0/"+c.username+"/email", "new@example.com", nil); r.status != 200 || r.body != "new@example.com" {
		t.Fatalf("email change = %d %q", r.status, r.body)
	}
	c.findCluster()
	if r := c.storage("PUT", "storage/clients/me", `{"payload":"p"}`, nil); r.status != 200 {
		t.Fatalf("PUT = %d", r.status)
	}
	if r := c.do("DELETE", c.serverURL+"user/1.0/"+c.username, "", nil); r.status != 200 || r.body != "1" {
		t.Fatalf("delete = %d %q", r.status, r.body)
	}
	// Signed up again, the name starts empty on a new uid.
	c.password = ""
	if r := put(`{"password":"long enough pw","email":"x@example.com"}`); r.status != 200 {
		t.Fatalf("sign-up after delete = %d %q", r.status, r.body)
	}
	c.password = "long enough pw"
	c.findCluster()
	if r := c.storage("GET", "info/collections", "", nil); r.status != 200 || r.body != "{}" {
		t.Fatalf("new account with an old name sees %d %q", r.status, r.body)
	}
	if r := c.do("GET", c.serverURL+"weave-password-reset", "", nil); r.status != 200 || !strings.Contains(r.body, "reset-password --link") {
		t.Fatalf("reset page = %d", r.status)
	}
	if r := c.do("PATCH", c.serverURL+"user/1.0/"+c.username, "", nil); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("PATCH = %d", r.status)
	}
}

// TestDeleteRemovesSyncData: deleting a 1.1 account removes its records
// from the node that holds them at once, and the node refuses its uid even
// to a device whose password check is still cached.
func TestDeleteRemovesSyncData(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			srv := newServer(t, b, serverOpts{signup: legacy.SignupOpen})
			c := newUser(t, srv, "gone@example.com")
			for _, coll := range []string{"bookmarks", "history"} {
				if r := c.storage("PUT", "storage/"+coll+"/a", `{"payload":"p"}`, nil); r.status != 200 {
					t.Fatalf("PUT %s = %d %q", coll, r.status, r.body)
				}
			}
			u, err := srv.tokens.GetUser(srv.ctx, weave.LegacyTokenEmail(c.username))
			if err != nil {
				t.Fatal(err)
			}
			shard := srv.shards[u.NodeID]
			if colls, _, err := shard.CollectionTimestamps(srv.ctx, u.UID); err != nil || len(colls) != 2 {
				t.Fatalf("before delete: %v %v", colls, err)
			}
			if r := c.do("DELETE", c.serverURL+"user/1.0/"+c.username, "", nil); r.status != 200 || r.body != "1" {
				t.Fatalf("delete = %d %q", r.status, r.body)
			}
			colls, _, err := shard.CollectionTimestamps(srv.ctx, u.UID)
			if !errors.Is(err, weave.ErrUserMoved) && (err != nil || len(colls) != 0) {
				t.Fatalf("after delete the shard still holds %v (%v)", colls, err)
			}
			if r := c.do("GET", c.cluster+"1.1/"+c.username+"/storage/bookmarks?full=1", "", nil); r.status != http.StatusUnauthorized {
				t.Fatalf("storage read after delete = %d %q, want 401", r.status, r.body)
			}
		})
	}
}

// TestLimits: guessing a password locks the name for a while (a device
// whose login is cached keeps syncing), and one address creates at most a
// few accounts a minute.
func TestLimits(t *testing.T) {
	srv := newServer(t, backends[0], serverOpts{signup: "open"})
	synced := newUser(t, srv, "victim@example.com")
	if r := synced.storage("GET", "info/collections", "", nil); r.status != 200 {
		t.Fatalf("first sync = %d", r.status)
	}
	// A second account that has not signed in yet (nothing cached).
	idle := &client{t: t, serverURL: synced.serverURL, username: usernameFromAccount("idle@example.com")}
	if r := idle.do("PUT", idle.serverURL+"user/1.0/"+idle.username, `{"password":"long enough pw","email":"idle@example.com"}`, nil); r.status != 200 {
		t.Fatalf("create = %d", r.status)
	}
	for _, c := range []*client{synced, idle} {
		guesser := &client{t: t, serverURL: c.serverURL, username: c.username, cluster: synced.cluster}
		for i := range 10 {
			guesser.password = fmt.Sprintf("guess number %d", i)
			if r := guesser.do("GET", guesser.cluster+"1.1/"+guesser.username+"/info/collections", "", nil); r.status != 401 {
				t.Fatalf("guess %d = %d", i, r.status)
			}
		}
	}
	// Locked: the right password is refused unless a device already
	// proved it within the last minutes...
	idle.password = "long enough pw"
	if r := idle.do("GET", idle.serverURL+"user/1.0/"+idle.username+"/node/weave", "", nil); r.status != 400 {
		t.Fatalf("right password while locked = %d, want 400", r.status)
	}
	// ...so the device that was already syncing carries on.
	if r := synced.storage("GET", "info/collections", "", nil); r.status != 200 {
		t.Fatalf("syncing device while locked = %d", r.status)
	}

	// Sign-ups: five a minute from one address, the secrets excepted.
	n := 0
	for i := range 7 {
		c := &client{t: t, serverURL: synced.serverURL, username: usernameFromAccount(fmt.Sprintf("n%d@example.com", i))}
		r := c.do("PUT", c.serverURL+"user/1.0/"+c.username, fmt.Sprintf(`{"password":"long enough pw","email":"n%d@example.com"}`, i), nil)
		switch r.status {
		case 200:
			n++
		case 429:
		default:
			t.Fatalf("sign-up %d = %d %q", i, r.status, r.body)
		}
	}
	// idle@ was the first of the minute (victim@ came with the override).
	if n != 4 {
		t.Fatalf("%d sign-ups went through, want 4 (5 per minute)", n)
	}
	c := &client{t: t, serverURL: synced.serverURL, username: usernameFromAccount("qa2@example.com")}
	if r := c.do("PUT", c.serverURL+"user/1.0/"+c.username, `{"password":"long enough pw","email":"qa2@example.com"}`,
		map[string]string{"X-Weave-Secret": "qa-secret"}); r.status != 200 {
		t.Fatalf("sign-up with the secret over the limit = %d", r.status)
	}
}

// TestAlert: the operator's notice goes out as X-Weave-Alert in the JSON
// form the UXP client acts on; hard-eol answers 513 so clients stop.
func TestAlert(t *testing.T) {
	for _, code := range []string{"soft-eol", "hard-eol"} {
		a := &legacy.Alert{Code: code, Message: "Moving to a new server", URL: "https://example.com/moving"}
		srv := newServer(t, backends[0], serverOpts{signup: "open", alert: a})
		c := newUser(t, srv, "alert@example.com")
		r := c.do("GET", c.cluster+"1.1/"+c.username+"/info/collections", "", nil)
		var got legacy.Alert
		if err := json.Unmarshal([]byte(r.header.Get("X-Weave-Alert")), &got); err != nil || got != *a {
			t.Fatalf("%s: X-Weave-Alert %q", code, r.header.Get("X-Weave-Alert"))
		}
		if want := map[string]int{"soft-eol": 200, "hard-eol": 513}[code]; r.status != want {
			t.Fatalf("%s: status %d, want %d", code, r.status, want)
		}
	}
	if err := (&legacy.Alert{Code: "nope"}).Check(); err == nil {
		t.Fatal("an unknown alert code passed Check")
	}
}

// TestNewUsersDisabled: with node assignment off (serve --new-users=false)
// a user without a node gets "null", which the client retries later.
func TestNewUsersDisabled(t *testing.T) {
	srv := newServer(t, backends[0], serverOpts{signup: "open", closed: true})
	c := &client{t: t, serverURL: srv.url + "/", username: usernameFromAccount("late@example.com")}
	if r := c.do("PUT", c.serverURL+"user/1.0/"+c.username, `{"password":"long enough pw","email":"late@example.com"}`, nil); r.status != 200 {
		t.Fatalf("create = %d", r.status)
	}
	c.password = "long enough pw"
	if r := c.do("GET", c.serverURL+"user/1.0/"+c.username+"/node/weave", "", nil); r.status != 200 || r.body != "null" {
		t.Fatalf("node lookup with assignment off = %d %q, want 200 null", r.status, r.body)
	}
}
