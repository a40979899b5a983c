package http

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

func TestBatchUpload(t *testing.T) {
	e := newEnv(t)
	w := e.post(e.u("/storage/bookmarks"), `[{"id":"old","payload":"O"},{"id":"x","payload":"X0"}]`)
	expect(t, w, 200, "")
	T0 := w.Header().Get("X-Last-Modified")

	// Open a batch with records; one invalid record fails on its own.
	w = e.post(e.u("/storage/bookmarks?batch=true"), `[{"id":"a","payload":"A1"},{"id":"x","payload":"X1","sortindex":4},{"id":"bad","ttl":-5}]`,
		"X-If-Unmodified-Since", T0, "X-Weave-Total-Records", "4", "X-Weave-Total-Bytes", "8")
	expect(t, w, 202, "")
	res := decode[postOut](t, w)
	if res.Batch == "" || !slices.Equal(res.Success, []string{"a", "x"}) || res.Failed["bad"] != "invalid ttl" || res.Modified != 0 {
		t.Fatalf("open batch: %s", w.Body)
	}
	if w.Header().Get("X-Last-Modified") != T0 {
		t.Errorf("202 X-Last-Modified %q, want unchanged %q", w.Header().Get("X-Last-Modified"), T0)
	}
	batch := url.QueryEscape(res.Batch)

	// Nothing is visible before the commit.
	expect(t, e.get(e.u("/storage/bookmarks?sort=oldest")), 200, `["old","x"]`)

	// Append.
	w = e.post(e.u("/storage/bookmarks?batch="+batch), `[{"id":"b","payload":"B1"},{"id":"c","payload":"C1"}]`, "X-If-Unmodified-Since", T0)
	expect(t, w, 202, "")
	if res2 := decode[postOut](t, w); res2.Batch != res.Batch || !slices.Equal(res2.Success, []string{"b", "c"}) {
		t.Fatalf("append: %s", w.Body)
	}
	if w.Header().Get("X-Last-Modified") != T0 {
		t.Errorf("append moved X-Last-Modified")
	}

	// Commit with records of its own: they override staged ones.
	w = e.post(e.u("/storage/bookmarks?batch="+batch+"&commit=true"), `[{"id":"b","payload":"B2"},{"id":"d","payload":"D2"}]`, "X-If-Unmodified-Since", T0)
	expect(t, w, 200, "")
	res = decode[postOut](t, w)
	T := ts(t, w.Header().Get("X-Last-Modified"))
	if weave.Timestamp(res.Modified*1000+0.5) != T || !slices.Equal(res.Success, []string{"b", "d"}) || res.Batch != "" {
		t.Fatalf("commit: %s", w.Body)
	}
	if T <= ts(t, T0) {
		t.Fatalf("commit T %s not after %s", T, T0)
	}
	recs := decode[[]bsoOut](t, e.get(e.u("/storage/bookmarks?full&sort=oldest")))
	got := map[string]bsoOut{}
	for _, r := range recs {
		got[r.ID] = r
	}
	want := map[string]string{"old": "O", "x": "X1", "a": "A1", "b": "B2", "c": "C1", "d": "D2"}
	if len(got) != len(want) {
		t.Fatalf("after commit: %+v", recs)
	}
	for id, p := range want {
		r := got[id]
		if r.Payload != p {
			t.Errorf("%s payload %q, want %q", id, r.Payload, p)
		}
		if id != "old" && weave.Timestamp(r.Modified*1000+0.5) != T {
			t.Errorf("%s modified %v, want commit time %s", id, r.Modified, T)
		}
	}
	if *got["x"].SortIndex != 4 {
		t.Errorf("staged sortindex lost: %+v", got["x"])
	}
	// A committed batch is closed.
	expect(t, e.post(e.u("/storage/bookmarks?batch="+batch), `[]`), 400, "0")
	expect(t, e.post(e.u("/storage/bookmarks?batch="+batch+"&commit=true"), `[]`), 400, "0")

	// batch=true&commit=true is a plain POST.
	w = e.post(e.u("/storage/bookmarks?batch=TRUE&commit=True"), `[{"id":"e","payload":"E"}]`)
	expect(t, w, 200, "")
	if res := decode[postOut](t, w); res.Batch != "" || !slices.Equal(res.Success, []string{"e"}) {
		t.Fatalf("batch=true&commit=true: %s", w.Body)
	}

	// An empty batch commits as a write of nothing but still closes.
	w = e.post(e.u("/storage/empty?batch=true"), `[]`)
	expect(t, w, 202, "")
	b2 := url.QueryEscape(decode[postOut](t, w).Batch)
	expect(t, e.post(e.u("/storage/empty?batch="+b2+"&commit=true"), `[]`), 200, "")
}

func TestBatchConflictAndExpiry(t *testing.T) {
	e := newEnv(t)
	w := e.post(e.u("/storage/tabs"), `[{"id":"a","payload":"A"}]`)
	T0 := w.Header().Get("X-Last-Modified")
	w = e.post(e.u("/storage/tabs?batch=true"), `[{"id":"b","payload":"B"}]`, "X-If-Unmodified-Since", T0)
	expect(t, w, 202, "")
	batch := url.QueryEscape(decode[postOut](t, w).Batch)

	// Another client writes: this client's append and commit get 412.
	expect(t, e.put(e.u("/storage/tabs/z"), `{"payload":"Z"}`), 200, "")
	expect(t, e.post(e.u("/storage/tabs?batch="+batch), `[{"id":"c","payload":"C"}]`, "X-If-Unmodified-Since", T0), 412, "0")
	expect(t, e.post(e.u("/storage/tabs?batch="+batch+"&commit=true"), `[]`, "X-If-Unmodified-Since", T0), 412, "0")
	expect(t, e.get(e.u("/storage/tabs/b")), 404, "0")

	// Expired batch (past the 2 h lifetime): 400.
	w = e.post(e.u("/storage/tabs?batch=true"), `[{"id":"d","payload":"D"}]`)
	expect(t, w, 202, "")
	old := url.QueryEscape(decode[postOut](t, w).Batch)
	e.clock.Advance(2*time.Hour + time.Minute)
	expect(t, e.post(e.u("/storage/tabs?batch="+old), `[{"id":"e","payload":"E"}]`), 400, "0")
	expect(t, e.post(e.u("/storage/tabs?batch="+old+"&commit=true"), `[]`), 400, "0")
	expect(t, e.get(e.u("/storage/tabs/d")), 404, "0")
}

func TestBatchLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits.MaxPostRecords = 2 })
	// Per-request limits apply to each append: extra records "retry bso".
	w := e.post(e.u("/storage/c?batch=true"), `[{"id":"1","payload":"x"},{"id":"2","payload":"x"},{"id":"3","payload":"x"}]`)
	expect(t, w, 202, "")
	res := decode[postOut](t, w)
	if !slices.Equal(res.Success, []string{"1", "2"}) || res.Failed["3"] != "retry bso" {
		t.Fatalf("batch retry bso: %s", w.Body)
	}
	b := url.QueryEscape(res.Batch)
	for i := 0; i < 3; i++ {
		body := fmt.Sprintf(`[{"id":"a%d","payload":"x"},{"id":"b%d","payload":"x"}]`, i, i)
		expect(t, e.post(e.u("/storage/c?batch="+b), body), 202, "")
	}
	expect(t, e.post(e.u("/storage/c?batch="+b+"&commit=true"), `[]`), 200, "")
	ids := decode[[]string](t, e.get(e.u("/storage/c")))
	if len(ids) != 8 || strings.Contains(strings.Join(ids, ","), "3") {
		t.Fatalf("committed ids %v", ids)
	}
}

func TestQuota(t *testing.T) {
	const quota = 3000
	e := newEnv(t, func(c *Config) { c.Limits.QuotaBytes = quota })
	p := func(n int) string { return strings.Repeat("q", n) }

	w := e.put(e.u("/storage/bookmarks/a"), `{"payload":"`+p(1000)+`"}`)
	expect(t, w, 200, "")
	// Less than 1 MiB left: reported in KB with two decimals.
	if got := w.Header().Get("X-Weave-Quota-Remaining"); got != "1.95" {
		t.Errorf("X-Weave-Quota-Remaining %q, want 1.95", got)
	}
	expect(t, e.get(e.u("/info/quota")), 200, "[0.9765625,2.9296875]")

	before := takeSnapshot(t, e.store, e.uid)
	// Writes that would leave no room: 400 with body 14 and the figure.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", e.u("/storage/bookmarks/b"), `{"payload":"` + p(2000) + `"}`},
		{"POST", e.u("/storage/bookmarks"), `[{"id":"b","payload":"` + p(1500) + `"},{"id":"c","payload":"` + p(500) + `"}]`},
		{"POST", e.u("/storage/bookmarks?batch=true"), `[{"id":"b","payload":"` + p(2500) + `"}]`},
	} {
		w := e.do(req{method: c.method, path: c.path, body: c.body})
		if w.Code != 400 || w.Body.String() != "14" {
			t.Errorf("%s %s: %d %q, want 400 14", c.method, c.path, w.Code, w.Body)
		}
		if rem := w.Header().Get("X-Weave-Quota-Remaining"); rem == "" || rem[0] != '-' && rem != "0.00" {
			t.Errorf("over-quota X-Weave-Quota-Remaining %q", rem)
		}
	}
	if after := takeSnapshot(t, e.store, e.uid); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("over-quota writes changed data")
	}
	// A batch append and commit are checked too.
	w = e.post(e.u("/storage/bookmarks?batch=true"), `[{"id":"b","payload":"`+p(500)+`"}]`)
	expect(t, w, 202, "")
	b := url.QueryEscape(decode[postOut](t, w).Batch)
	expect(t, e.post(e.u("/storage/bookmarks?batch="+b), `[{"id":"c","payload":"`+p(2000)+`"}]`), 400, "14")
	expect(t, e.post(e.u("/storage/bookmarks?batch="+b+"&commit=true"), `[{"id":"c","payload":"`+p(2000)+`"}]`), 400, "14")
	expect(t, e.post(e.u("/storage/bookmarks?batch="+b+"&commit=true"), `[]`), 200, "")
	// Deleting frees room.
	expect(t, e.del(e.u("/storage/bookmarks")), 200, "")
	expect(t, e.put(e.u("/storage/bookmarks/b"), `{"payload":"`+p(2000)+`"}`), 200, "")

	// Plenty of room: no header.
	e2 := newEnv(t, func(c *Config) { c.Limits.QuotaBytes = 100 << 20 })
	w = e2.put(e2.u("/storage/bookmarks/a"), `{"payload":"x"}`)
	expect(t, w, 200, "")
	if w.Header().Get("X-Weave-Quota-Remaining") != "" {
		t.Errorf("quota header with plenty of room")
	}
}

// readCounter counts the reads a handler makes besides its write.
type readCounter struct {
	weave.Store
	reads atomic.Int64
}

func (s *readCounter) Usage(ctx context.Context, uid int64) (int64, error) {
	s.reads.Add(1)
	return s.Store.Usage(ctx, uid)
}

func (s *readCounter) CollectionModified(ctx context.Context, uid int64, c string) (weave.Timestamp, error) {
	s.reads.Add(1)
	return s.Store.CollectionModified(ctx, uid, c)
}

// TestWritesReadNothingBack: with quotas on, a write is one round trip to
// the store: the store enforces the quota and reports the room left, and
// staging reports the collection timestamp it read.
func TestWritesReadNothingBack(t *testing.T) {
	const quota = 3000
	e := newEnv(t, func(c *Config) { c.Limits.QuotaBytes = quota })
	rc := &readCounter{Store: e.store}
	e.srv.store = rc
	p := func(n int) string { return strings.Repeat("q", n) }

	w := e.put(e.u("/storage/forms/a"), `{"payload":"`+p(1000)+`"}`)
	expect(t, w, 200, "")
	T0 := w.Header().Get("X-Last-Modified")
	if got := w.Header().Get("X-Weave-Quota-Remaining"); got != "1.95" {
		t.Errorf("PUT: X-Weave-Quota-Remaining %q, want 1.95", got)
	}
	w = e.post(e.u("/storage/forms?batch=true"), `[{"id":"b","payload":"`+p(500)+`"}]`)
	expect(t, w, 202, "")
	if got := w.Header().Get("X-Last-Modified"); got != T0 {
		t.Errorf("batch create: X-Last-Modified %q, want %q", got, T0)
	}
	b := url.QueryEscape(decode[postOut](t, w).Batch)
	w = e.post(e.u("/storage/forms?batch="+b), `[{"id":"c","payload":"`+p(500)+`"}]`)
	expect(t, w, 202, "")
	if got := w.Header().Get("X-Last-Modified"); got != T0 {
		t.Errorf("batch append: X-Last-Modified %q, want %q", got, T0)
	}
	w = e.post(e.u("/storage/forms?batch="+b+"&commit=true"), `[{"id":"d","payload":"`+p(500)+`"}]`)
	expect(t, w, 200, "")
	if got := w.Header().Get("X-Weave-Quota-Remaining"); got != "0.49" {
		t.Errorf("commit: X-Weave-Quota-Remaining %q, want 0.49", got)
	}
	w = e.post(e.u("/storage/forms"), `[{"id":"e","payload":"`+p(500)+`"}]`)
	expect(t, w, 400, "14")
	if got := w.Header().Get("X-Weave-Quota-Remaining"); got != "0.00" {
		t.Errorf("over quota: X-Weave-Quota-Remaining %q, want 0.00", got)
	}
	if n := rc.reads.Load(); n != 0 {
		t.Errorf("%d reads besides the writes, want none", n)
	}
}

// TestNewlinesBlankOnlyBody: an application/newlines body that holds only
// blank lines is invalid JSON (400, as Mozilla's servers answer, which
// parse every line), whether it opens, fills or commits a batch or is a
// plain POST; the batch stays open and uncommitted. An empty body is an
// empty list, and blank lines between records are still skipped.
func TestNewlinesBlankOnlyBody(t *testing.T) {
	e := newEnv(t)
	nl := []string{"Content-Type", "application/newlines"}
	w := e.post(e.u("/storage/forms?batch=true"), "{\"id\":\"a\",\"payload\":\"A\"}\n", nl...)
	expect(t, w, 202, "")
	batch := url.QueryEscape(decode[postOut](t, w).Batch)
	for _, body := range []string{"\n", "\n\n", " \r\n\t\n", "\r\n"} {
		for _, path := range []string{"?batch=" + batch + "&commit=true", "?batch=" + batch, "?batch=true", ""} {
			w := e.post(e.u("/storage/forms"+path), body, nl...)
			expect(t, w, 400, "6")
		}
	}
	expect(t, e.get(e.u("/storage/forms")), 200, "[]")
	// The batch is still open: its commit with an empty body applies it.
	w = e.post(e.u("/storage/forms?batch="+batch+"&commit=true"), "", nl...)
	expect(t, w, 200, "")
	expect(t, e.get(e.u("/storage/forms")), 200, `["a"]`)
	w = e.post(e.u("/storage/forms"), "\n{\"id\":\"b\",\"payload\":\"B\"}\n\n", nl...)
	expect(t, w, 200, "")
	if res := decode[postOut](t, w); !slices.Equal(res.Success, []string{"b"}) {
		t.Fatalf("blank lines around a record: %s", w.Body)
	}
}
