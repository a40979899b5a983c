package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weave-sync/weave"
)

// Fuzz targets for the request parsers. Seeds live in testdata/fuzz/<name>/
// and in the f.Add calls; `go test` replays them, `go test -fuzz=Name`
// explores.

var fuzzLimits = bsoLimits{maxPayload: 64}

// checkBSO asserts that a record the parser called valid really is.
func checkBSO(t *testing.T, in bsoInput) {
	t.Helper()
	if in.invalid != "" {
		return
	}
	if in.hasID && (!in.idString || !validID(in.ID) || !weave.ValidBSOID(in.ID)) {
		t.Fatalf("valid record with bad id %q", in.ID)
	}
	if in.Payload.Set && !in.Payload.Null && (int64(len(in.Payload.Value)) > fuzzLimits.maxPayload || !utf8.ValidString(in.Payload.Value)) {
		t.Fatalf("valid record with bad payload %q", in.Payload.Value)
	}
	if v := in.SortIndex; v.Set && !v.Null && (v.Value < weave.MinSortIndex || v.Value > weave.MaxSortIndex) {
		t.Fatalf("valid record with sortindex %d", v.Value)
	}
	if v := in.TTL; v.Set && !v.Null && (v.Value < 0 || v.Value > weave.MaxTTL) {
		t.Fatalf("valid record with ttl %d", v.Value)
	}
}

// crossCheck compares a parsed object with encoding/json's reading of the
// same bytes: the custom scanner must never accept what the standard
// library rejects, and must agree on every value it keeps.
func crossCheck(t *testing.T, raw []byte, in bsoInput) {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("scanner accepted %q, encoding/json says %v", raw, err)
	}
	if in.invalid != "" {
		return // duplicate keys make encoding/json keep the last; skip
	}
	str := func(k string) (string, bool) { v, ok := m[k].(string); return v, ok }
	if in.idString {
		if v, _ := str("id"); v != in.ID {
			t.Fatalf("id %q vs %q", in.ID, v)
		}
	}
	if in.Payload.Set && !in.Payload.Null {
		if v, _ := str("payload"); v != in.Payload.Value {
			t.Fatalf("payload %q vs %q", in.Payload.Value, v)
		}
	}
	for k, o := range map[string]weave.Optional[int64]{"sortindex": in.SortIndex, "ttl": in.TTL} {
		if o.Set && !o.Null {
			n, ok := m[k].(json.Number)
			if !ok || n.String() != strings.TrimLeft(n.String(), "+") {
				t.Fatalf("%s: %v", k, m[k])
			}
			if v, err := n.Int64(); err != nil || v != o.Value {
				t.Fatalf("%s %d vs %v", k, o.Value, n)
			}
		}
		if o.Null && m[k] != nil {
			t.Fatalf("%s null vs %v", k, m[k])
		}
	}
}

// roundTrip renders a valid record the way GET does and parses it back.
func roundTrip(t *testing.T, in bsoInput) {
	t.Helper()
	if in.invalid != "" || !in.idString || !in.Payload.Set || in.Payload.Null {
		return
	}
	b := weave.BSO{ID: in.ID, Payload: in.Payload.Value, Modified: 1234567890120}
	if in.SortIndex.Set && !in.SortIndex.Null {
		v := in.SortIndex.Value
		b.SortIndex = &v
	}
	out := appendBSO(nil, &b)
	if bytes.IndexByte(out, '\n') >= 0 {
		t.Fatalf("rendered record has a literal newline: %q", out)
	}
	back, err := parseBSO(out, bsoLimits{})
	if err != nil || back.invalid != "" {
		t.Fatalf("rendered %q does not parse back: %v %q", out, err, back.invalid)
	}
	if back.ID != b.ID || back.Payload.Value != b.Payload || back.SortIndex.Set != (b.SortIndex != nil) ||
		(b.SortIndex != nil && back.SortIndex.Value != *b.SortIndex) {
		t.Fatalf("round trip changed %+v into %+v", b, back)
	}
}

func FuzzParseBSO(f *testing.F) {
	for _, s := range []string{
		`{"id":"abc","payload":"x","sortindex":5,"ttl":60}`,
		`{"payload":null,"sortindex":null,"ttl":null}`,
		`{"id":"a\u00e9\ud83d\ude00","payload":"\"\\\/\b\f\n\r\t\u0000"}`,
		`{"id":"x","modified":1.5,"collection":"c","payload":"p"}`,
		`{"sortindex":-999999999,"ttl":999999999}`,
		`{"sortindex":1e3}`, `{"payload":"\ud800"}`, `{"a":[{"b":[]}]}`, `[1,2]`, `{`, ` {} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := parseBSO(body, fuzzLimits)
		if err != nil {
			if err != errBadJSON && err != errNotObject {
				t.Fatalf("unexpected error %v", err)
			}
			// Well-formed UTF-8 JSON objects of modest depth must parse.
			if err == errBadJSON && json.Valid(body) && utf8.Valid(body) && bytes.Count(body, []byte("[")) < 60 && bytes.Count(body, []byte("{")) < 60 {
				var v any
				if json.Unmarshal(body, &v) == nil {
					if _, isObj := v.(map[string]any); isObj {
						t.Fatalf("valid JSON object %q rejected as bad JSON", body)
					}
				}
			}
			return
		}
		checkBSO(t, in)
		crossCheck(t, body, in)
		roundTrip(t, in)
	})
}

func FuzzParseBSOList(f *testing.F) {
	for _, s := range []string{
		`[{"id":"a","payload":"x"},{"id":"b","payload":"y","sortindex":1}]`,
		`[]`, ` [ ] `, `[{"id":"a"},1]`, `[{"id":"a"}`, `[{"id":"a"},]`, `{"id":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ins, err := parseBSOList(body, fuzzLimits)
		if err != nil {
			return
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("accepted %q, encoding/json says %v", body, err)
		}
		if len(raw) != len(ins) {
			t.Fatalf("%d records vs %d elements", len(ins), len(raw))
		}
		for i, in := range ins {
			checkBSO(t, in)
			crossCheck(t, raw[i], in)
		}
	})
}

func FuzzParseBSOLines(f *testing.F) {
	for _, s := range []string{
		"{\"id\":\"a\",\"payload\":\"x\"}\n{\"id\":\"b\"}\n",
		"\n\n{\"id\":\"a\"}\r\n", "{\"id\":\"a\"}\n[1]\n", "{\"id\":\n\"a\"}", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ins, err := parseBSOLines(body, fuzzLimits)
		if err != nil {
			return
		}
		var lines [][]byte
		for l := range bytes.SplitSeq(body, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines = append(lines, l)
			}
		}
		if len(lines) != len(ins) {
			t.Fatalf("%d records from %d non-blank lines", len(ins), len(lines))
		}
		for i, in := range ins {
			checkBSO(t, in)
			crossCheck(t, lines[i], in)
		}
	})
}

func FuzzParseGetParams(f *testing.F) {
	for _, s := range []string{
		"ids=a,b,%20c%20&newer=1.5&older=2&full=1&limit=10&offset=123:4&sort=index",
		"full", "full=", "limit=0", "sort=oldest&newer=1388635807.41", "ids=", "offset=%00", "limit=99999999999999999999999",
		"newer=-1", "newer=1e5", "a=b;c=d", "ids=" + strings.Repeat("x,", 100) + "x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := parseQuery(raw)
		if err != nil {
			return
		}
		p, err := parseGetParams(v)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if len(p.IDs) > maxIDs || p.Limit < 0 || p.Newer < 0 || p.Older < 0 {
			t.Fatalf("accepted out-of-range params %+v", p)
		}
		for _, id := range p.IDs {
			if !weave.ValidBSOID(id) {
				t.Fatalf("accepted id %q", id)
			}
		}
		if p.Offset != "" && !validOffset(p.Offset) {
			t.Fatalf("accepted offset %q", p.Offset)
		}
		// Re-encoding what was understood gives the same parameters.
		q := url.Values{}
		if p.IDs != nil {
			q.Set("ids", strings.Join(p.IDs, ","))
		}
		if p.Newer > 0 {
			q.Set("newer", formatMillis(p.Newer))
		}
		if p.Older > 0 {
			q.Set("older", formatMillis(p.Older))
		}
		if p.full {
			q.Set("full", "")
		}
		if _, ok := v["limit"]; ok {
			q.Set("limit", strconv.Itoa(p.Limit))
		}
		if p.Offset != "" {
			q.Set("offset", p.Offset)
		}
		if _, ok := v["sort"]; ok {
			q.Set("sort", [...]string{"newest", "oldest", "index"}[p.Sort])
		}
		p2, err := parseGetParams(q)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", q.Encode(), err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip %+v → %q → %+v", p, q.Encode(), p2)
		}
	})
}

func FuzzParseHeaderTimestamp(f *testing.F) {
	for _, s := range []string{"0", "1388635807.41", "1388635807", "1388635807.416", " 12.5 ", "-1", "1e5", "NaN", "", ".5", "5.", "99999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseHeaderTimestamp(s)
		if err != nil {
			return
		}
		if ts < 0 {
			t.Fatalf("%q gave negative %d", s, ts)
		}
		// Rendering and parsing again gives the value at Sync's 10 ms
		// resolution.
		back, err := parseHeaderTimestamp(string(appendTimestamp(nil, ts)))
		if err != nil || back != ts-ts%10 {
			t.Fatalf("%q → %d → %q → %d, %v", s, ts, appendTimestamp(nil, ts), back, err)
		}
		// Both conditional headers go through the same parser.
		h := http.Header{"X-If-Unmodified-Since": {s}}
		p, err := parsePreconditions(h)
		if err != nil || p.ifUnmodifiedSince == nil || *p.ifUnmodifiedSince != ts {
			t.Fatalf("parsePreconditions(%q) = %+v, %v", s, p, err)
		}
	})
}

func FuzzMatchStorage(f *testing.F) {
	for _, s := range []string{"42/info/collections", "1/storage/bookmarks/a%20b", "1/storage/c%2Fd", "12345678901/storage", "1/storage/x/y/z", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		uid, rt, coll, id, ok := matchStorage(rest)
		if !ok {
			return
		}
		if uid < 0 || uid > 9999999999 || rt == routeNone {
			t.Fatalf("%q → uid %d route %d", rest, uid, rt)
		}
		if (rt == routeCollection || rt == routeItem) && !weave.ValidCollection(coll) {
			t.Fatalf("%q → collection %q", rest, coll)
		}
		if rt == routeItem && !weave.ValidBSOID(id) {
			t.Fatalf("%q → id %q", rest, id)
		}
	})
}

func FuzzResponseFormat(f *testing.F) {
	for _, s := range []string{"", "*/*", "application/json;q=0.9,*/*;q=0.2", "application/newlines", "text/html", "application/*;q=0", "a;q=x,,;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		format, err := responseFormat(accept)
		if err == nil && format != formatJSON && format != formatNewlines {
			t.Fatalf("format %d", format)
		}
		if err != nil && !slices.Contains([]error{errNotAcceptable}, err) {
			t.Fatalf("error %v", err)
		}
	})
}

// formatMillis renders a millisecond timestamp with all three decimals, so
// that re-parsing loses nothing.
func formatMillis(t weave.Timestamp) string {
	return fmt.Sprintf("%d.%03d", int64(t)/1000, int64(t)%1000)
}
