package legacy_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput: hostile or broken requests get a clear 4xx, never a 5xx,
// and never reach another user's data.
func TestBadInput(t *testing.T) {
	srv := newServer(t, backends[0], serverOpts{signup: "open"})
	c := newUser(t, srv, "bad@example.com")
	base := c.cluster + "1.1/" + c.username
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.username+":"+c.password))
	for _, tc := range []struct {
		method, url, body string
		hdr               map[string]string
	}{
		{"GET", base + "/info/collections", "", map[string]string{"Authorization": "Basic !!!"}},
		{"GET", base + "/info/collections", "", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon"))}},
		{"GET", base + "/info/collections", "", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(c.username+":\xff\xfe"))}},
		{"GET", base + "/info/collections", "", map[string]string{"Authorization": "Bearer x"}},
		{"GET", base + "/info/collections", "", map[string]string{"Authorization": "Basic " + strings.Repeat("A", 10000)}},
		{"GET", base + "/info/nothing", "", nil},
		{"GET", base + "/storage/bad$name", "", nil},
		{"GET", base + "/storage/" + strings.Repeat("c", 33), "", nil},
		{"GET", base + "/storage/bookmarks/" + strings.Repeat("i", 65), "", nil},
		{"GET", base + "/storage/bookmarks/a/b", "", nil},
		{"GET", base + "/storage/bookmarks?newer=abc", "", nil},
		{"GET", base + "/storage/bookmarks?newer=-1", "", nil},
		{"GET", base + "/storage/bookmarks?limit=-5", "", nil},
		{"GET", base + "/storage/bookmarks?limit=99999999999999999999", "", nil},
		{"GET", base + "/storage/bookmarks?index_above=1e99", "", nil},
		{"GET", base + "/storage/bookmarks?ids=" + strings.Repeat("x,", 1001), "", nil},
		{"GET", base + "/storage/bookmarks?ids=%00", "", nil},
		{"POST", base + "/storage/bookmarks", "[" + strings.Repeat("[", 10000), nil},
		{"POST", base + "/storage/bookmarks", `[{"id":"a","payload":1}]`, nil},
		{"POST", base + "/storage/bookmarks", `[{"id":"a","sortindex":1e300}]`, nil},
		{"POST", base + "/storage/bookmarks", `[{"id":"a","ttl":-1}]`, nil},
		{"POST", base + "/storage/bookmarks", `"just a string"`, nil},
		{"POST", base + "/storage/bookmarks", `{"id":"a/b","payload":"x"}`, nil},
		{"POST", base + "/storage/bookmarks", `{"payload":"x"}`, nil},
		{"POST", base + "/storage/bookmarks", "", nil},
		{"POST", base + "/storage/bookmarks", "[" + strings.Repeat(`{"id":"x","payload":"`+strings.Repeat("p", 100000)+`"},`, 50) + "{}]", nil},
		{"PUT", base + "/storage/bookmarks/x", `[1,2]`, nil},
		{"PUT", base + "/storage/bookmarks/x", `{"payload":{"nested":true}}`, nil},
		{"PUT", base + "/storage/bookmarks/x", strings.Repeat("x", 600*1024), nil},
		{"DELETE", base + "/storage/bookmarks?older=x", "", nil},
		{"PATCH", base + "/storage/bookmarks", "", nil},
		{"GET", base + "/storage/bookmarks", "", map[string]string{"Accept": "application/whoisi;q=x, */*"}},
		{"PUT", base + "/storage/bookmarks/x", `{"payload":"x"}`, map[string]string{"X-If-Unmodified-Since": "1e10"}},
		{"PUT", srv.url + "/user/1.0/" + strings.Repeat("u", 101), `{}`, nil},
		{"PUT", srv.url + "/user/1.0/x", strings.Repeat("{", 70000), nil},
		{"PUT", srv.url + "/user/1.0/x", `{"password":12,"email":[]}`, nil},
		{"GET", srv.url + "/user/1.0/bad$name", "", nil},
		{"POST", srv.url + "/user/1.0/" + c.username + "/password", strings.Repeat("p", 70000), map[string]string{"Authorization": auth}},
		{"POST", srv.url + "/user/1.0/" + c.username + "/password", "new password!!", map[string]string{"X-Weave-Password-Reset": "WRONG-CODE"}},
		{"POST", srv.url + "/weave-password-reset", "username=" + c.username + "&key=AAAA-BBBB&password=x&confirm=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"POST", srv.url + "/weave-password-reset", "%zz", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
	} {
		anon := &client{t: t}
		hdr := map[string]string{"Authorization": auth}
		for k, v := range tc.hdr {
			hdr[k] = v
		}
		r := anon.do(tc.method, tc.url, tc.body, hdr)
		name := fmt.Sprintf("%s %.80s %.40q", tc.method, strings.TrimPrefix(tc.url, srv.url), tc.body)
		if r.status >= 500 {
			t.Errorf("%s: %d %q", name, r.status, r.body)
		}
		if r.status == http.StatusOK && tc.method != "GET" && !strings.Contains(tc.url, "whoisi") {
			t.Logf("%s: accepted (%q)", name, r.body)
		}
	}
	// Nothing of the above was stored under a bad id.
	if r := c.storage("GET", "storage/bookmarks", "", nil); strings.Contains(r.body, "a/b") {
		t.Fatalf("stored %q", r.body)
	}
}
