package http

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
)

// snapshot reads back everything a user has, to prove that a rejected
// request changed nothing.
type snapshot struct {
	storage weave.Timestamp
	colls   map[string]weave.Timestamp
	bsos    map[string][]weave.BSO
}

func takeSnapshot(t testing.TB, st weave.Store, uid int64) snapshot {
	t.Helper()
	ctx := context.Background()
	colls, storage, err := st.CollectionTimestamps(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{storage: storage, colls: colls, bsos: map[string][]weave.BSO{}}
	for c := range colls {
		page, err := st.GetBSOs(ctx, uid, c, weave.Query{Sort: weave.SortOldest})
		if err != nil {
			t.Fatal(err)
		}
		s.bsos[c] = page.BSOs
	}
	return s
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits.MaxRecordPayloadBytes = 100
		c.Limits.MaxRequestBytes = 4096
	})
	// Seed data, and an open batch to prove appends are refused too.
	expect(t, e.post(e.u("/storage/bookmarks"), `[{"id":"a","payload":"A","sortindex":1},{"id":"b","payload":"B","ttl":3600}]`), 200, "")
	expect(t, e.put(e.u("/storage/crypto/keys"), `{"payload":"{\"IV\": \"goodgoodgoodgoodgoodgg==\"}"}`), 200, "")
	w := e.post(e.u("/storage/bookmarks?batch=true"), `[{"id":"staged","payload":"S"}]`)
	expect(t, w, 202, "")
	batch := decode[postOut](t, w).Batch
	before := takeSnapshot(t, e.store, e.uid)

	bm := e.u("/storage/bookmarks")
	item := e.u("/storage/bookmarks/a")
	badIV := `{"payload":"{\"ciphertext\":\"x\",\"IV\":  \"AAAAAAAAAAAAAAAAAAAAAA==\"}"}`
	ids101 := strings.TrimSuffix(strings.Repeat("x,", 101), ",")

	cases := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		status int
		code   string
	}{
		// PUT bodies.
		{"put invalid json", "PUT", item, `{"payload":`, nil, 400, "6"},
		{"put trailing garbage", "PUT", item, `{"payload":"x"} x`, nil, 400, "6"},
		{"put empty body", "PUT", item, ``, nil, 400, "6"},
		{"put invalid utf8", "PUT", item, "{\"payload\":\"\xff\"}", nil, 400, "6"},
		{"put raw control char", "PUT", item, "{\"payload\":\"a\x01\"}", nil, 400, "6"},
		{"put not an object", "PUT", item, `["x"]`, nil, 400, "8"},
		{"put payload number", "PUT", item, `{"payload":5}`, nil, 400, "8"},
		{"put payload object", "PUT", item, `{"payload":{"a":1}}`, nil, 400, "8"},
		{"put unknown field", "PUT", item, `{"payload":"x","parentid":"y"}`, nil, 400, "8"},
		{"put duplicate field", "PUT", item, `{"payload":"x","payload":"y"}`, nil, 400, "8"},
		{"put sortindex string", "PUT", item, `{"sortindex":"5"}`, nil, 400, "8"},
		{"put sortindex float", "PUT", item, `{"sortindex":1.5}`, nil, 400, "8"},
		{"put sortindex exponent", "PUT", item, `{"sortindex":1e3}`, nil, 400, "8"},
		{"put sortindex too big", "PUT", item, `{"sortindex":1000000000}`, nil, 400, "8"},
		{"put sortindex too small", "PUT", item, `{"sortindex":-1000000000}`, nil, 400, "8"},
		{"put sortindex array", "PUT", item, `{"sortindex":[1]}`, nil, 400, "8"},
		{"put ttl negative", "PUT", item, `{"ttl":-1}`, nil, 400, "8"},
		{"put ttl too big", "PUT", item, `{"ttl":1000000000}`, nil, 400, "8"},
		{"put ttl float", "PUT", item, `{"ttl":3.5}`, nil, 400, "8"},
		{"put ttl bool", "PUT", item, `{"ttl":true}`, nil, 400, "8"},
		{"put body id invalid", "PUT", item, `{"id":"a\u0001","payload":"x"}`, nil, 400, "8"},
		{"put body id too long", "PUT", item, `{"id":"` + strings.Repeat("i", 65) + `","payload":"x"}`, nil, 400, "8"},
		{"put body id trailing newline", "PUT", item, `{"id":"a\n","payload":"x"}`, nil, 400, "8"},
		{"put body id number", "PUT", item, `{"id":5,"payload":"x"}`, nil, 400, "8"},
		{"put body id null", "PUT", item, `{"id":null,"payload":"x"}`, nil, 400, "8"},
		{"put modified object", "PUT", item, `{"modified":{},"payload":"x"}`, nil, 400, "8"},
		{"put payload too large", "PUT", item, `{"payload":"` + strings.Repeat("x", 101) + `"}`, nil, 400, "8"},
		{"put crypto bad IV", "PUT", e.u("/storage/crypto/keys"), badIV, nil, 400, "8"},
		{"put xml", "PUT", item, `{"payload":"x"}`, []string{"Content-Type", "application/xml"}, 415, "0"},
		{"put newlines", "PUT", item, `{"payload":"x"}`, []string{"Content-Type", "application/newlines"}, 415, "0"},
		{"put too large", "PUT", item, `{"payload":"` + strings.Repeat("x", 5000) + `"}`, nil, 413, "17"},
		{"put bad IUS", "PUT", item, `{"payload":"x"}`, []string{"X-If-Unmodified-Since", "yesterday"}, 400, "1"},
		{"put negative IUS", "PUT", item, `{"payload":"x"}`, []string{"X-If-Unmodified-Since", "-1"}, 400, "1"},
		{"put stale IUS", "PUT", item, `{"payload":"x"}`, []string{"X-If-Unmodified-Since", "1.00"}, 412, "0"},

		// POST bodies.
		{"post invalid json", "POST", bm, `[{"id":"x",}]`, nil, 400, "6"},
		{"post not a list", "POST", bm, `{"id":"x"}`, nil, 400, "8"},
		{"post list of non-objects", "POST", bm, `[{"id":"x","payload":"p"},"y"]`, nil, 400, "8"},
		{"post bad json after non-object", "POST", bm, `[1, {]`, nil, 400, "6"},
		{"post missing id", "POST", bm, `[{"id":"x","payload":"p"},{"payload":"p"}]`, nil, 400, "8"},
		{"post id number", "POST", bm, `[{"id":1,"payload":"p"}]`, nil, 400, "8"},
		{"post duplicate ids", "POST", bm, `[{"id":"x","payload":"p"},{"id":"x","payload":"q"}]`, nil, 400, "8"},
		{"post crypto bad IV", "POST", e.u("/storage/crypto"), `[{"id":"keys",` + badIV[1:] + `]`, nil, 400, "8"},
		{"post newlines bad json", "POST", bm, "{\"id\":\"x\",\"payload\":\"p\"}\n{\"id\":", []string{"Content-Type", "application/newlines"}, 400, "6"},
		{"post newlines non-object", "POST", bm, "{\"id\":\"x\",\"payload\":\"p\"}\n[1]\n", []string{"Content-Type", "application/newlines"}, 400, "8"},
		{"post unsupported type", "POST", bm, `[]`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "0"},
		{"post too many declared records", "POST", bm, `[]`, []string{"X-Weave-Records", "101"}, 400, "17"},
		{"post declared records not int", "POST", bm, `[]`, []string{"X-Weave-Records", "1.5"}, 400, "1"},
		{"post declared records negative", "POST", bm, `[]`, []string{"X-Weave-Records", "-1"}, 400, "1"},
		{"post too many declared bytes", "POST", bm, `[]`, []string{"X-Weave-Bytes", "2621441"}, 400, "17"},
		{"post declared bytes garbage", "POST", bm, `[]`, []string{"X-Weave-Bytes", "lots"}, 400, "1"},
		{"post batch total records over", "POST", bm + "?batch=true", `[]`, []string{"X-Weave-Total-Records", "10001"}, 400, "17"},
		{"post batch total bytes over", "POST", bm + "?batch=" + batch, `[]`, []string{"X-Weave-Total-Bytes", "262144001"}, 400, "17"},
		{"post batch total bytes garbage", "POST", bm + "?batch=true", `[]`, []string{"X-Weave-Total-Bytes", "0x10"}, 400, "1"},
		{"post commit without batch", "POST", bm + "?commit=true", `[{"id":"x","payload":"p"}]`, nil, 400, "0"},
		{"post bad commit value", "POST", bm + "?batch=" + batch + "&commit=yes", `[]`, nil, 400, "1"},
		{"post unknown batch", "POST", bm + "?batch=MTIzNDU2Nzg5", `[{"id":"x","payload":"p"}]`, nil, 400, "0"},
		{"post unknown batch commit", "POST", bm + "?batch=MTIzNDU2Nzg5&commit=true", `[]`, nil, 400, "0"},
		{"post empty batch id", "POST", bm + "?batch=", `[]`, nil, 400, "0"},
		{"post batch other collection", "POST", e.u("/storage/history?batch=") + batch + "&commit=true", `[]`, nil, 400, "0"},
		{"post stale IUS", "POST", bm, `[{"id":"x","payload":"p"}]`, []string{"X-If-Unmodified-Since", "1"}, 412, "0"},
		{"post stale IUS commit", "POST", bm + "?batch=" + batch + "&commit=true", `[]`, []string{"X-If-Unmodified-Since", "1"}, 412, "0"},
		{"post too large", "POST", bm, `[{"id":"x","payload":"` + strings.Repeat("x", 5000) + `"}]`, nil, 413, "17"},

		// GET query strings and headers.
		{"get too many ids", "GET", bm + "?ids=" + ids101, "", nil, 400, "1"},
		{"get invalid id", "GET", bm + "?ids=a,%01", "", nil, 400, "1"},
		{"get empty id", "GET", bm + "?ids=a,,b", "", nil, 400, "1"},
		{"get newer garbage", "GET", bm + "?newer=abc", "", nil, 400, "1"},
		{"get newer negative", "GET", bm + "?newer=-1", "", nil, 400, "1"},
		{"get newer empty", "GET", bm + "?newer=", "", nil, 400, "1"},
		{"get older exponent", "GET", bm + "?older=1e5", "", nil, 400, "1"},
		{"get limit negative", "GET", bm + "?limit=-1", "", nil, 400, "1"},
		{"get limit garbage", "GET", bm + "?limit=ten", "", nil, 400, "1"},
		{"get limit float", "GET", bm + "?limit=1.0", "", nil, 400, "1"},
		{"get sort unknown", "GET", bm + "?sort=random", "", nil, 400, "1"},
		{"get offset garbage", "GET", bm + "?limit=1&offset=notanoffset", "", nil, 400, "0"},
		{"get offset with spaces", "GET", bm + "?offset=a%20b", "", nil, 400, "0"},
		{"get malformed query", "GET", bm + "?ids=%zz", "", nil, 400, "1"},
		{"get bad accept", "GET", bm, "", []string{"Accept", "text/html"}, 406, "0"},
		{"get item bad accept", "GET", item, "", []string{"Accept", "image/png"}, 406, "0"},
		{"get both conditionals", "GET", bm, "", []string{"X-If-Modified-Since", "1", "X-If-Unmodified-Since", "1"}, 400, "1"},
		{"get IMS negative", "GET", bm, "", []string{"X-If-Modified-Since", "-5"}, 400, "1"},
		{"get IMS garbage", "GET", e.u("/info/collections"), "", []string{"X-If-Modified-Since", "now"}, 400, "1"},
		{"get IMS nan", "GET", item, "", []string{"X-If-Modified-Since", "NaN"}, 400, "1"},

		// DELETE.
		{"delete too many ids", "DELETE", bm + "?ids=" + ids101, "", nil, 400, "1"},
		{"delete invalid id", "DELETE", bm + "?ids=%7F", "", nil, 400, "1"},
		{"delete stale IUS", "DELETE", bm, "", []string{"X-If-Unmodified-Since", "1"}, 412, "0"},
		{"delete storage stale IUS", "DELETE", e.u("/storage"), "", []string{"X-If-Unmodified-Since", "1"}, 412, "0"},
		{"delete missing item", "DELETE", e.u("/storage/bookmarks/zzz"), "", nil, 404, "0"},

		// Routing.
		{"put on collection", "PUT", bm, `[]`, nil, 405, "0"},
		{"post on item", "POST", item, `{}`, nil, 405, "0"},
		{"put on info", "PUT", e.u("/info/quota"), `{}`, nil, 405, "0"},
		{"get on user root", "GET", e.u(""), "", nil, 405, "0"},
		{"patch item", "PATCH", item, `{}`, nil, 405, "0"},
		{"unknown info", "GET", e.u("/info/nothing"), "", nil, 404, "0"},
		{"bad collection name", "GET", e.u("/storage/book%20marks"), "", nil, 404, "0"},
		{"collection name too long", "GET", e.u("/storage/" + strings.Repeat("c", 33)), "", nil, 404, "0"},
		{"id too long", "PUT", e.u("/storage/bookmarks/" + strings.Repeat("i", 65)), `{"payload":"x"}`, nil, 404, "0"},
		{"id non-printable", "PUT", e.u("/storage/bookmarks/a%0A"), `{"payload":"x"}`, nil, 404, "0"},
		{"id with slash", "PUT", e.u("/storage/bookmarks/a/b"), `{"payload":"x"}`, nil, 404, "0"},
		{"trailing slash", "GET", bm + "/", "", nil, 404, "0"},
		{"uid too long", "GET", "/1.5/12345678901/info/collections", "", nil, 404, "0"},
		{"uid not numeric", "GET", "/1.5/abc/info/collections", "", nil, 404, "0"},
		{"old protocol", "GET", "/1.1/42/info/collections", "", nil, 404, "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.do(req{method: c.method, path: c.path, body: c.body, hdr: pairs(c.hdr)})
			if w.Code != c.status || w.Body.String() != c.code {
				t.Fatalf("%s %s: %d %q, want %d %q", c.method, c.path, w.Code, w.Body.String(), c.status, c.code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if w.Header().Get("X-Weave-Timestamp") == "" {
				t.Errorf("no X-Weave-Timestamp")
			}
			if c.status == 412 && w.Header().Get("X-Last-Modified") == "" {
				t.Errorf("412 without X-Last-Modified")
			}
			if c.status == 405 && w.Header().Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if after := takeSnapshot(t, e.store, e.uid); !reflect.DeepEqual(before, after) {
				t.Fatalf("data changed:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}

	// A chunked body over max_request_bytes (no Content-Length) is cut off
	// while reading: 413 too.
	t.Run("chunked too large", func(t *testing.T) {
		hr := httptest.NewRequest("POST", bm, io.MultiReader(strings.NewReader(`[{"id":"x","payload":"`+strings.Repeat("x", 5000)+`"}]`)))
		c := e.token()
		hr.Header.Set("Authorization", signHawk(c, "POST", bm, "127.0.0.1", "8000", e.clock.Now(), "", ""))
		if hr.ContentLength != 0 && hr.ContentLength != -1 {
			t.Fatalf("ContentLength %d", hr.ContentLength)
		}
		hr.ContentLength = -1
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, hr)
		if w.Code != 413 || w.Body.String() != "17" {
			t.Fatalf("%d %q", w.Code, w.Body)
		}
	})

	// The staged record is still committed by a good commit: the rejected
	// appends did not disturb the batch.
	w = e.post(bm+"?batch="+batch+"&commit=true", `[]`)
	expect(t, w, 200, "")
	got := decode[bsoOut](t, e.get(e.u("/storage/bookmarks/staged")))
	if got.Payload != "S" {
		t.Fatalf("staged record after commit: %+v", got)
	}
	_ = fmt.Sprint
}
