package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
)

type bsoOut struct {
	ID        string   `json:"id"`
	Modified  float64  `json:"modified"`
	Payload   string   `json:"payload"`
	SortIndex *int64   `json:"sortindex"`
	TTL       *float64 `json:"ttl"`
}

type postOut struct {
	Modified float64           `json:"modified"`
	Batch    string            `json:"batch"`
	Success  []string          `json:"success"`
	Failed   map[string]string `json:"failed"`
}

func TestPutGetItem(t *testing.T) {
	e := newEnv(t)
	w := e.put(e.u("/storage/bookmarks/abc"), `{"id":"ignored-path-wins","payload":"p1","sortindex":7,"ttl":3600,"modified":1.5,"collection":"x"}`)
	expect(t, w, 200, "")
	t1 := ts(t, w.Body.String())
	if w.Header().Get("X-Last-Modified") != w.Body.String() || w.Header().Get("X-Weave-Timestamp") != w.Body.String() {
		t.Fatalf("PUT headers %v, body %s: want X-Last-Modified = X-Weave-Timestamp = T", w.Header(), w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	w = e.get(e.u("/storage/bookmarks/abc"))
	expect(t, w, 200, "")
	got := decode[bsoOut](t, w)
	if got.ID != "abc" || got.Payload != "p1" || got.SortIndex == nil || *got.SortIndex != 7 || got.TTL != nil {
		t.Fatalf("GET item = %+v", got)
	}
	if weave.Timestamp(got.Modified*1000+0.5) != t1 || ts(t, w.Header().Get("X-Last-Modified")) != t1 {
		t.Fatalf("modified %v / X-Last-Modified %s, want %s", got.Modified, w.Header().Get("X-Last-Modified"), t1)
	}
	if strings.Contains(w.Body.String(), "ttl") {
		t.Errorf("ttl leaked: %s", w.Body)
	}

	// Partial update: sortindex only keeps the payload (and, as the Python
	// server, the item's modified time).
	w = e.put(e.u("/storage/bookmarks/abc"), `{"sortindex":9}`)
	expect(t, w, 200, "")
	got = decode[bsoOut](t, e.get(e.u("/storage/bookmarks/abc")))
	if got.Payload != "p1" || *got.SortIndex != 9 {
		t.Fatalf("after partial update: %+v", got)
	}
	// null resets the sortindex; the output then omits it.
	expect(t, e.put(e.u("/storage/bookmarks/abc"), `{"sortindex":null,"payload":"p2"}`), 200, "")
	w = e.get(e.u("/storage/bookmarks/abc"))
	if strings.Contains(w.Body.String(), "sortindex") || decode[bsoOut](t, w).Payload != "p2" {
		t.Fatalf("after null sortindex: %s", w.Body)
	}

	// Ids with characters that need escaping in a URL.
	odd := "a b/c?d%e{}"
	expect(t, e.put(e.u("/storage/bookmarks/"+pathEscape(odd)), `{"payload":"odd"}`), 200, "")
	got = decode[bsoOut](t, e.get(e.u("/storage/bookmarks/"+pathEscape(odd))))
	if got.ID != odd || got.Payload != "odd" {
		t.Fatalf("odd id: %+v", got)
	}

	// Missing item: 404 with body 0.
	expect(t, e.get(e.u("/storage/bookmarks/nope")), 404, "0")
	expect(t, e.get(e.u("/storage/nothing/nope")), 404, "0")
}

func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestPostCollection(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits.MaxPostRecords = 3
		c.Limits.MaxPostBytes = 10
		c.Limits.MaxRecordPayloadBytes = 8
	})
	body := `[
		{"id":"a","payload":"1234"},
		{"id":"bad\u0001id","payload":"x"},
		{"id":"b","payload":"1234","ttl":-1},
		{"id":"c","payload":"123456789"},
		{"id":"d","payload":"12345","unknown":1},
		{"id":"e","payload":"12345"},
		{"id":"f","payload":""},
		{"id":"g","payload":"1"},
		{"id":"h","sortindex":"1"}
	]`
	w := e.post(e.u("/storage/history"), body)
	expect(t, w, 200, "")
	res := decode[postOut](t, w)
	// a (4 bytes) ok; e would take the sum to 9 ≤ 10 → ok; f ok (3rd
	// record); g is the 4th valid record → retry bso.
	if !slices.Equal(res.Success, []string{"a", "e", "f"}) {
		t.Errorf("success = %v", res.Success)
	}
	want := map[string]string{
		"bad\x01id": "invalid id",
		"b":         "invalid ttl",
		"c":         "payload too large",
		"d":         "unknown field 'unknown'",
		"g":         "retry bso",
		"h":         "invalid sortindex",
	}
	if fmt.Sprint(res.Failed) != fmt.Sprint(want) {
		t.Errorf("failed = %v\nwant     %v", res.Failed, want)
	}
	T := ts(t, w.Header().Get("X-Last-Modified"))
	if weave.Timestamp(res.Modified*1000+0.5) != T {
		t.Errorf("modified %v vs X-Last-Modified %s", res.Modified, T)
	}
	ids := decode[[]string](t, e.get(e.u("/storage/history?sort=oldest")))
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a", "e", "f"}) {
		t.Errorf("stored ids %v", ids)
	}

	// retry bytes: from the record that crosses max_post_bytes on.
	w = e.post(e.u("/storage/bytes"), `[{"id":"a","payload":"123456"},{"id":"b","payload":"12345"},{"id":"c","payload":""}]`)
	res = decode[postOut](t, w)
	if !slices.Equal(res.Success, []string{"a"}) || res.Failed["b"] != "retry bytes" || res.Failed["c"] != "retry bytes" {
		t.Errorf("retry bytes: %s", w.Body)
	}

	// A POST of only invalid records writes nothing and keeps the
	// collection's timestamp.
	w = e.post(e.u("/storage/history"), `[{"id":"z","ttl":"x"}]`)
	expect(t, w, 200, "")
	if ts(t, w.Header().Get("X-Last-Modified")) != T {
		t.Errorf("empty POST moved the timestamp: %s vs %s", w.Header().Get("X-Last-Modified"), T)
	}
	// An empty list likewise.
	expect(t, e.post(e.u("/storage/history"), `[]`), 200, "")
}

func TestPostNewlinesAndTextPlain(t *testing.T) {
	e := newEnv(t)
	w := e.post(e.u("/storage/forms"), "{\"id\":\"a\",\"payload\":\"x\\ny\"}\n\n{\"id\":\"b\",\"payload\":\"z\"}\r\n", "Content-Type", "application/newlines")
	expect(t, w, 200, "")
	if res := decode[postOut](t, w); !slices.Equal(res.Success, []string{"a", "b"}) {
		t.Fatalf("newlines POST: %s", w.Body)
	}
	w = e.post(e.u("/storage/forms"), `[{"id":"c","payload":"t"}]`, "Content-Type", "text/plain; charset=utf-8")
	expect(t, w, 200, "")
	w = e.post(e.u("/storage/forms"), `[{"id":"d","payload":"t"}]`, "Content-Type", "")
	expect(t, w, 200, "")

	// Output as newlines: one record per line, literal newlines escaped.
	w = e.get(e.u("/storage/forms?full=1&sort=oldest"), "Accept", "application/newlines")
	expect(t, w, 200, "")
	if ct := w.Header().Get("Content-Type"); ct != "application/newlines" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
	if len(lines) != 4 || w.Header().Get("X-Weave-Records") != "4" {
		t.Fatalf("newlines output %q", w.Body)
	}
	var first bsoOut
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Payload != "x\ny" {
		t.Fatalf("first line %q: %v %+v", lines[0], err, first)
	}
	// ids only, as newlines.
	w = e.get(e.u("/storage/forms?sort=oldest&ids=a,b"), "Accept", "application/newlines")
	if w.Body.String() != "\"a\"\n\"b\"\n" {
		t.Fatalf("id lines %q", w.Body)
	}
	// Empty list → empty body.
	w = e.get(e.u("/storage/empty"), "Accept", "application/newlines")
	expect(t, w, 200, "")
	if w.Body.Len() != 0 || w.Header().Get("X-Weave-Records") != "0" {
		t.Fatalf("empty newlines %q", w.Body)
	}
	// Accept negotiation: JSON wins ties, */* is JSON, newlines only by preference.
	for accept, want := range map[string]string{
		"":                                       "application/json",
		"*/*":                                    "application/json",
		"application/json;q=0.9,*/*;q=0.2":       "application/json",
		"application/newlines, application/json": "application/json",
		"application/json;q=0.5, application/newlines": "application/newlines",
		"text/html, application/*;q=0.1":               "application/json",
	} {
		w := e.get(e.u("/storage/forms"), "Accept", accept)
		if w.Code != 200 || w.Header().Get("Content-Type") != want {
			t.Errorf("Accept %q: %d %q, want %q", accept, w.Code, w.Header().Get("Content-Type"), want)
		}
	}
}

func TestGetCollectionQueries(t *testing.T) {
	e := newEnv(t)
	// Three separate writes give three distinct timestamps.
	var stamps []weave.Timestamp
	for i, rec := range []string{
		`[{"id":"a","payload":"A","sortindex":5},{"id":"b","payload":"B","sortindex":1}]`,
		`[{"id":"c","payload":"C","sortindex":9}]`,
		`[{"id":"d","payload":"D","sortindex":3}]`,
	} {
		w := e.post(e.u("/storage/tabs"), rec)
		expect(t, w, 200, "")
		stamps = append(stamps, ts(t, w.Header().Get("X-Last-Modified")))
		if i > 0 && stamps[i] <= stamps[i-1] {
			t.Fatalf("timestamps not increasing: %v", stamps)
		}
	}
	ids := func(q string) []string {
		t.Helper()
		w := e.get(e.u("/storage/tabs" + q))
		expect(t, w, 200, "")
		return decode[[]string](t, w)
	}
	check := func(q string, want ...string) {
		t.Helper()
		got := ids(q)
		if len(want) == 0 {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("GET %s = %v, want %v", q, got, want)
		}
	}
	check("?sort=index", "c", "a", "d", "b")
	check("?sort=oldest&newer="+stamps[0].String(), "c", "d")
	check("?sort=oldest&older="+stamps[1].String(), "a", "b")
	check("?sort=newest&newer="+stamps[0].String()+"&older="+stamps[2].String(), "c")
	check("?ids=%20d%20,b,zz&sort=index", "d", "b")
	check("?newer=" + stamps[2].String())
	got := ids("")
	if len(got) != 4 || got[0] != "d" || got[1] != "c" {
		t.Errorf("default sort newest: %v", got)
	}

	// full records carry modified of their write.
	w := e.get(e.u("/storage/tabs?full&sort=index"))
	recs := decode[[]bsoOut](t, w)
	if len(recs) != 4 || recs[0].ID != "c" || weave.Timestamp(recs[0].Modified*1000+0.5) != stamps[1] {
		t.Fatalf("full: %s", w.Body)
	}
	if ts(t, w.Header().Get("X-Last-Modified")) != stamps[2] || w.Header().Get("X-Weave-Records") != "4" {
		t.Errorf("headers %v", w.Header())
	}
	// limit=0: nothing, and the offset to read the matching records from.
	w = e.get(e.u("/storage/tabs?limit=0"))
	expect(t, w, 200, "[]")
	if got := w.Header().Get("X-Weave-Next-Offset"); got != "0" {
		t.Errorf("limit=0 next offset %q, want 0", got)
	}
	if ts(t, w.Header().Get("X-Last-Modified")) != stamps[2] {
		t.Errorf("limit=0 X-Last-Modified %q", w.Header().Get("X-Last-Modified"))
	}
	w = e.get(e.u("/storage/tabs?sort=index&offset=0&limit=2"))
	expect(t, w, 200, `["c","a"]`)
	next := w.Header().Get("X-Weave-Next-Offset")
	w = e.get(e.u("/storage/tabs?sort=index&offset=" + next + "&limit=0"))
	expect(t, w, 200, "[]")
	if got := w.Header().Get("X-Weave-Next-Offset"); got != next {
		t.Errorf("limit=0 after an offset: next offset %q, want the request's %q", got, next)
	}
	// Nothing matches: no offset.
	w = e.get(e.u("/storage/tabs?limit=0&newer=" + stamps[2].String()))
	expect(t, w, 200, "[]")
	if got := w.Header().Get("X-Weave-Next-Offset"); got != "" {
		t.Errorf("limit=0 with nothing newer: next offset %q", got)
	}
	// Missing collection: 200 [] with X-Last-Modified 0.
	w = e.get(e.u("/storage/missing"))
	expect(t, w, 200, "[]")
	if w.Header().Get("X-Last-Modified") != "0.00" {
		t.Errorf("missing collection X-Last-Modified %q", w.Header().Get("X-Last-Modified"))
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t)
	// 25 records over 5 writes: ties in modified inside each write, so the
	// offsets must carry tie-breaks correctly.
	want := map[string]bool{}
	for w := 0; w < 5; w++ {
		var recs []string
		for i := 0; i < 5; i++ {
			id := fmt.Sprintf("r%d%d", w, i)
			want[id] = true
			recs = append(recs, fmt.Sprintf(`{"id":%q,"payload":"x","sortindex":%d}`, id, (w*5+i)%7))
		}
		expect(t, e.post(e.u("/storage/history"), "["+strings.Join(recs, ",")+"]"), 200, "")
	}
	for _, sort := range []string{"newest", "oldest", "index"} {
		for _, limit := range []int{1, 3, 7, 25, 30} {
			seen := map[string]bool{}
			offset := ""
			var first string
			for pages := 0; ; pages++ {
				if pages > 30 {
					t.Fatalf("sort %s limit %d: too many pages", sort, limit)
				}
				q := fmt.Sprintf("?sort=%s&limit=%d", sort, limit)
				if offset != "" {
					q += "&offset=" + pathEscape(offset)
				}
				hdr := []string{}
				if first != "" {
					hdr = []string{"X-If-Unmodified-Since", first}
				}
				w := e.get(e.u("/storage/history"+q), hdr...)
				expect(t, w, 200, "")
				if first == "" {
					first = w.Header().Get("X-Last-Modified")
				}
				page := decode[[]string](t, w)
				if len(page) > limit {
					t.Fatalf("page of %d > limit %d", len(page), limit)
				}
				for _, id := range page {
					if seen[id] {
						t.Fatalf("sort %s limit %d: %s twice", sort, limit, id)
					}
					seen[id] = true
				}
				offset = w.Header().Get("X-Weave-Next-Offset")
				if offset == "" {
					break
				}
			}
			if len(seen) != len(want) {
				t.Errorf("sort %s limit %d: saw %d of %d", sort, limit, len(seen), len(want))
			}
		}
	}
	// A later page after a change to the collection: 412.
	w := e.get(e.u("/storage/history?limit=2"))
	off, lm := w.Header().Get("X-Weave-Next-Offset"), w.Header().Get("X-Last-Modified")
	expect(t, e.put(e.u("/storage/history/new"), `{"payload":"n"}`), 200, "")
	w = e.get(e.u("/storage/history?limit=2&offset="+pathEscape(off)), "X-If-Unmodified-Since", lm)
	expect(t, w, 412, "0")
	if w.Header().Get("X-Last-Modified") == lm {
		t.Errorf("412 X-Last-Modified %s", w.Header().Get("X-Last-Modified"))
	}
	// Bad offsets: 400 with code 0.
	expect(t, e.get(e.u("/storage/history?limit=2&offset=garbage")), 400, "0")
}

func TestDeletes(t *testing.T) {
	e := newEnv(t)
	expect(t, e.post(e.u("/storage/a"), `[{"id":"1","payload":"x"},{"id":"2","payload":"x"},{"id":"3","payload":"x"}]`), 200, "")
	expect(t, e.post(e.u("/storage/b"), `[{"id":"1","payload":"x"}]`), 200, "")

	// DELETE by ids: the collection stays, with the new timestamp.
	w := e.del(e.u("/storage/a?ids=1,2"))
	expect(t, w, 200, "")
	T := ts(t, w.Header().Get("X-Last-Modified"))
	if got := decode[map[string]float64](t, w); weave.Timestamp(got["modified"]*1000+0.5) != T {
		t.Fatalf("delete ids body %s", w.Body)
	}
	expect(t, e.get(e.u("/storage/a")), 200, `["3"]`)
	colls := decode[map[string]float64](t, e.get(e.u("/info/collections")))
	if weave.Timestamp(colls["a"]*1000+0.5) != T {
		t.Errorf("collection a ts %v, want %s", colls["a"], T)
	}

	// DELETE one item; again → 404.
	w = e.del(e.u("/storage/a/3"))
	expect(t, w, 200, "")
	if _, ok := decode[map[string]float64](t, w)["modified"]; !ok {
		t.Fatalf("delete item body %s", w.Body)
	}
	expect(t, e.del(e.u("/storage/a/3")), 404, "0")
	if _, ok := decode[map[string]float64](t, e.get(e.u("/info/collections")))["a"]; !ok {
		t.Errorf("emptied collection vanished from info/collections")
	}

	// DELETE the collection: gone from info/collections; missing is fine.
	w = e.del(e.u("/storage/a"))
	expect(t, w, 200, "")
	if _, ok := decode[map[string]float64](t, w)["modified"]; !ok {
		t.Fatalf("delete collection body %s", w.Body)
	}
	if _, ok := decode[map[string]float64](t, e.get(e.u("/info/collections")))["a"]; ok {
		t.Errorf("deleted collection still listed")
	}
	expect(t, e.del(e.u("/storage/never")), 200, "")

	// DELETE storage (both forms): {} and everything gone.
	expect(t, e.del(e.u("/storage")), 200, "{}")
	expect(t, e.get(e.u("/info/collections")), 200, "{}")
	expect(t, e.post(e.u("/storage/c"), `[{"id":"1","payload":"x"}]`), 200, "")
	w = e.do(req{method: "DELETE", path: e.u(""), hdr: map[string]string{"X-Confirm-Delete": "1"}})
	expect(t, w, 200, "{}")
	expect(t, e.get(e.u("/storage/c")), 200, "[]")
}

func TestInfoEndpoints(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits.QuotaBytes = 10 << 20 })
	expect(t, e.get(e.u("/info/collections")), 200, "{}")
	expect(t, e.post(e.u("/storage/bookmarks"), `[{"id":"a","payload":"`+strings.Repeat("x", 1024)+`"},{"id":"b","payload":"`+strings.Repeat("y", 512)+`"}]`), 200, "")
	w := e.put(e.u("/storage/clients/c"), `{"payload":"`+strings.Repeat("z", 256)+`"}`)
	expect(t, w, 200, "")
	last := w.Header().Get("X-Last-Modified")

	w = e.get(e.u("/info/collections"))
	expect(t, w, 200, "")
	if w.Header().Get("X-Last-Modified") != last || w.Header().Get("X-Weave-Records") != "2" {
		t.Errorf("info/collections headers %v", w.Header())
	}
	colls := decode[map[string]float64](t, w)
	if len(colls) != 2 || fmt.Sprintf("%.2f", colls["clients"]) != last {
		t.Errorf("info/collections %s", w.Body)
	}

	w = e.get(e.u("/info/collection_counts"))
	expect(t, w, 200, `{"bookmarks":2,"clients":1}`)
	if w.Header().Get("X-Weave-Records") != "2" {
		t.Errorf("counts X-Weave-Records %q", w.Header().Get("X-Weave-Records"))
	}
	expect(t, e.get(e.u("/info/collection_usage")), 200, `{"bookmarks":1.5,"clients":0.25}`)
	expect(t, e.get(e.u("/info/quota")), 200, `[1.75,10240.0]`)

	w = e.get(e.u("/info/configuration"))
	expect(t, w, 200, "")
	cfg := decode[map[string]int64](t, w)
	l := weave.DefaultLimits()
	want := map[string]int64{
		"max_request_bytes": l.MaxRequestBytes, "max_post_records": l.MaxPostRecords,
		"max_post_bytes": l.MaxPostBytes, "max_total_records": l.MaxTotalRecords,
		"max_total_bytes": l.MaxTotalBytes, "max_record_payload_bytes": l.MaxRecordPayloadBytes,
	}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("configuration %v", cfg)
	}

	// Quota off: null.
	e2 := newEnv(t)
	expect(t, e2.get(e2.u("/info/quota")), 200, `[0.0,null]`)
	// HEAD works where GET does.
	w = e.do(req{method: "HEAD", path: e.u("/info/collections")})
	expect(t, w, 200, "")
	if w.Body.Len() != 0 {
		t.Errorf("HEAD body %q", w.Body)
	}
}

func TestConditionalRequests(t *testing.T) {
	e := newEnv(t)
	w := e.put(e.u("/storage/prefs/p"), `{"payload":"1"}`)
	T1 := w.Header().Get("X-Last-Modified")
	before := ts(t, T1) - 10
	earlier := before.String()

	for _, path := range []string{"/info/collections", "/storage/prefs", "/storage/prefs/p", "/info/quota", "/info/collection_counts"} {
		// Not modified since T1 → 304 with X-Last-Modified, no body.
		w = e.get(e.u(path), "X-If-Modified-Since", T1)
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("X-Last-Modified") != T1 || w.Header().Get("X-Weave-Timestamp") == "" {
			t.Errorf("GET %s If-Modified-Since T: %d %q %v", path, w.Code, w.Body, w.Header())
		}
		// Modified since before T1 → 200.
		expect(t, e.get(e.u(path), "X-If-Modified-Since", earlier), 200, "")
		// Unmodified since T1 → 200; since before T1 → 412 with X-Last-Modified.
		expect(t, e.get(e.u(path), "X-If-Unmodified-Since", T1), 200, "")
		w = e.get(e.u(path), "X-If-Unmodified-Since", earlier)
		expect(t, w, 412, "0")
		if w.Header().Get("X-Last-Modified") != T1 {
			t.Errorf("412 on %s: X-Last-Modified %q", path, w.Header().Get("X-Last-Modified"))
		}
	}
	// Missing item: timestamp 0, so If-Modified-Since gives 304 (the
	// decision table, as both reference servers).
	w = e.get(e.u("/storage/prefs/none"), "X-If-Modified-Since", T1)
	if w.Code != 304 {
		t.Errorf("missing item IMS: %d", w.Code)
	}

	// Writes: 412 leaves data alone.
	expect(t, e.put(e.u("/storage/prefs/p"), `{"payload":"2"}`, "X-If-Unmodified-Since", earlier), 412, "0")
	expect(t, e.post(e.u("/storage/prefs"), `[{"id":"p","payload":"2"}]`, "X-If-Unmodified-Since", earlier), 412, "0")
	expect(t, e.del(e.u("/storage/prefs/p"), "X-If-Unmodified-Since", earlier), 412, "0")
	expect(t, e.del(e.u("/storage/prefs"), "X-If-Unmodified-Since", earlier), 412, "0")
	expect(t, e.del(e.u("/storage"), "X-If-Unmodified-Since", earlier), 412, "0")
	// X-If-Unmodified-Since: 0 on PUT = create only.
	expect(t, e.put(e.u("/storage/prefs/p"), `{"payload":"3"}`, "X-If-Unmodified-Since", "0"), 412, "0")
	expect(t, e.put(e.u("/storage/prefs/q"), `{"payload":"3"}`, "X-If-Unmodified-Since", "0"), 200, "")
	if got := decode[bsoOut](t, e.get(e.u("/storage/prefs/p"))); got.Payload != "1" {
		t.Fatalf("412 writes changed data: %+v", got)
	}
	// A satisfied precondition writes.
	w = e.get(e.u("/storage/prefs"))
	expect(t, e.put(e.u("/storage/prefs/p"), `{"payload":"4"}`, "X-If-Unmodified-Since", w.Header().Get("X-Last-Modified")), 200, "")
	// Firefox's tabs quick-write (after a tab opens or closes) posts with
	// its FAR_FUTURE, 4102405200000, as seconds, to write whatever the
	// server holds (services/sync/engines/tabs.sys.mjs); it was a 400.
	expect(t, e.post(e.u("/storage/tabs?batch=true&commit=true"), `[{"id":"t","payload":"5"}]`, "X-If-Unmodified-Since", "4102405200000"), 200, "")
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t)
	expect(t, e.do(req{method: "GET", path: "/__heartbeat__", noAuth: true}), 200, `{"database":"ok","status":"ok"}`)
	expect(t, e.do(req{method: "GET", path: "/__lbheartbeat__", noAuth: true}), 200, "{}")
	w := e.do(req{method: "GET", path: "/__version__", noAuth: true})
	expect(t, w, 200, "")
	if v := decode[map[string]string](t, w); v["version"] != "1.2.3" || v["commit"] != "abc123" {
		t.Errorf("version %v", v)
	}
	w = e.do(req{method: "GET", path: "/", noAuth: true})
	expect(t, w, 200, "")
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("root content type %q", w.Header().Get("Content-Type"))
	}
	expect(t, e.do(req{method: "POST", path: "/__heartbeat__", noAuth: true}), 405, "0")
	expect(t, e.do(req{method: "GET", path: "/nothing", noAuth: true}), 404, "0")

	// Draining: both heartbeats 503; storage still served.
	e.srv.SetReady(false)
	if e.srv.Ready() {
		t.Fatal("still ready")
	}
	expect(t, e.do(req{method: "GET", path: "/__heartbeat__", noAuth: true}), 503, "")
	expect(t, e.do(req{method: "GET", path: "/__lbheartbeat__", noAuth: true}), 503, "")
	expect(t, e.get(e.u("/info/collections")), 200, "")
	e.srv.SetReady(true)
	expect(t, e.do(req{method: "GET", path: "/__lbheartbeat__", noAuth: true}), 200, "")

	// Database down: heartbeat 503, storage 503 + Retry-After, never 500.
	e.store.Close()
	w = e.do(req{method: "GET", path: "/__heartbeat__", noAuth: true})
	expect(t, w, 503, "")
	if !strings.Contains(w.Body.String(), `"database":"error"`) {
		t.Errorf("heartbeat body %s", w.Body)
	}
	w = e.get(e.u("/info/collections"))
	expect(t, w, 503, "0")
	if w.Header().Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	w = e.put(e.u("/storage/a/b"), `{"payload":"x"}`)
	expect(t, w, 503, "0")
}

func TestTokenServerMount(t *testing.T) {
	ts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	})
	e := newEnv(t, func(c *Config) {
		c.PublicURL = "https://example.com/sync"
	})
	e.mountTokens(ts)
	for _, p := range []string{"/1.0/sync/1.5", "/sync/1.0/sync/1.5"} {
		w := e.do(req{method: "GET", path: p, noAuth: true})
		if w.Code != http.StatusTeapot || w.Header().Get("X-Path") != "/1.0/sync/1.5" {
			t.Errorf("%s: %d %q", p, w.Code, w.Header().Get("X-Path"))
		}
		if w.Header().Get("X-Weave-Timestamp") != "" {
			t.Errorf("token server response got X-Weave-Timestamp")
		}
	}
	// No token server configured: 404.
	e2 := newEnv(t)
	expect(t, e2.do(req{method: "GET", path: "/1.0/sync/1.5", noAuth: true}), 404, "0")
}

// TestBackToBackPutsStayOnTheClock: 50 back-to-back PUTs once put
// X-Weave-Timestamp about 450 ms ahead of the server clock; each must now
// be at most the clock, and still increase.
func TestBackToBackPutsStayOnTheClock(t *testing.T) {
	e := newEnv(t)
	var last weave.Timestamp
	for i := range 50 {
		w := e.put(e.u("/storage/tabs/t"), fmt.Sprintf(`{"payload":"%d","ttl":60}`, i))
		expect(t, w, 200, "")
		now := weave.TimestampAt(e.clock.Now())
		got := ts(t, w.Header().Get("X-Weave-Timestamp"))
		if got <= last || got > now {
			t.Fatalf("PUT %d: X-Weave-Timestamp %s after %s, clock %s", i, got, last, now)
		}
		last = got
	}
}
