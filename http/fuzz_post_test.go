package http

import (
	"errors"
	"net/http"
	"testing"

	"github.com/weave-sync/weave"
)

// FuzzPostRequest runs a POST's query (batch, commit), its X-Weave-*
// size headers, Content-Type and body through the parsers the handler
// uses, in the handler's order, with small limits so that the "retry"
// paths are reached. Every refusal is a typed 400 (415 for the media
// type), and what is accepted respects the limits.
func FuzzPostRequest(f *testing.F) {
	lim := weave.Limits{MaxPostRecords: 3, MaxPostBytes: 40, MaxTotalRecords: 10, MaxTotalBytes: 100, MaxRecordPayloadBytes: 16}
	f.Add("batch=true", "2", "20", "5", "50", "application/json", []byte(`[{"id":"a","payload":"x"},{"id":"b","payload":"y"}]`))
	f.Add("batch=MTIzNDU2Nzg5MDE&commit=true", "1", "", "", "", "application/newlines", []byte("{\"id\":\"a\",\"payload\":\"0123456789abcdef\"}\n\n{\"id\":\"b\"}\n"))
	f.Add("commit=true", "", "", "", "", "text/plain; charset=utf-8", []byte(`[]`))
	f.Add("batch=true&commit=TRUE", " 3 ", "+1", "-1", "99999999999999999999999", "", []byte(`[{"id":"a"},{"id":"a"}]`))
	f.Add("batch=%20x", "", "", "", "", "application/octet-stream", []byte(`[{"payload":"x"}]`))
	f.Add("batch=true", "4", "41", "11", "101", "application/json", []byte(`[{"id":"a","payload":"aaaaaaaaaaaaaaaa"},{"id":"b","payload":"bbbbbbbbbbbbbbbb"},{"id":"c","payload":"cccccccccccccccc"},{"id":"d","payload":"d"}]`))
	f.Fuzz(func(t *testing.T, query, records, size, totalRecords, totalBytes, ctype string, body []byte) {
		is400 := func(err error, what string) {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
				t.Fatalf("%s: error %v is not a 400", what, err)
			}
		}
		v, err := parseQuery(query)
		if err != nil {
			is400(err, "query")
			return
		}
		pp, err := parsePostParams(v)
		if err != nil {
			is400(err, "batch/commit")
			return
		}
		switch {
		case pp.commit && pp.batch == "":
			t.Fatalf("%q: commit without a batch", query)
		case pp.batch != "" && pp.batch != "true" && (len(pp.batch) > maxBatchIDLength || !validOffset(pp.batch)):
			t.Fatalf("%q: accepted batch id %q", query, pp.batch)
		}
		h := http.Header{}
		for name, val := range map[string]string{"X-Weave-Records": records, "X-Weave-Bytes": size,
			"X-Weave-Total-Records": totalRecords, "X-Weave-Total-Bytes": totalBytes, "Content-Type": ctype} {
			if val != "" {
				h.Set(name, val)
			}
		}
		ph, err := parsePostHeaders(h, lim, pp.batch != "")
		if err != nil {
			is400(err, "size headers")
			return
		}
		for _, c := range []struct{ n, limit int64 }{{ph.records, lim.MaxPostRecords}, {ph.bytes, lim.MaxPostBytes},
			{ph.totalRecords, lim.MaxTotalRecords}, {ph.totalBytes, lim.MaxTotalBytes}} {
			if c.n < -1 || c.n > c.limit {
				t.Fatalf("accepted declared size %d over limit %d: %+v", c.n, c.limit, ph)
			}
		}
		format, err := requestFormat(h, true)
		if err != nil {
			if err != errUnsupportedCT {
				t.Fatalf("Content-Type %q: %v", ctype, err)
			}
			return
		}
		s := &Server{limits: lim}
		res, err := s.parsePost("bookmarks", body, format)
		if err != nil {
			var be *bodyError
			var ae *apiError
			if !errors.As(err, &be) && !(errors.As(err, &ae) && ae.status == http.StatusBadRequest) {
				t.Fatalf("body error %T %v", err, err)
			}
			return
		}
		if len(res.updates) != len(res.success) || int64(len(res.updates)) > lim.MaxPostRecords {
			t.Fatalf("%d updates, %d successes", len(res.updates), len(res.success))
		}
		seen := map[string]bool{}
		var total int64
		for i, u := range res.updates {
			if u.ID != res.success[i] || !weave.ValidBSOID(u.ID) || seen[u.ID] {
				t.Fatalf("update %d id %q, success %q", i, u.ID, res.success[i])
			}
			seen[u.ID] = true
			total += int64(len(u.Payload.Value))
			if int64(len(u.Payload.Value)) > lim.MaxRecordPayloadBytes {
				t.Fatalf("payload of %d bytes accepted", len(u.Payload.Value))
			}
		}
		if total > lim.MaxPostBytes {
			t.Fatalf("%d payload bytes accepted", total)
		}
		for _, fl := range res.failed {
			if seen[fl.id] || fl.reason == "" {
				t.Fatalf("failure %+v", fl)
			}
			seen[fl.id] = true
		}
	})
}
