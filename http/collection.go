package http

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"

	"github.com/weave-sync/weave"
)

// GET /storage/<c>: ids, or full BSOs with ?full, as JSON or newlines.
// Without limit everything matching is returned (storage-1.5.md §18 #14).
func (s *Server) getCollection(rq *request) error {
	format, err := responseFormat(rq.r.Header.Get("Accept"))
	if err != nil {
		return err
	}
	v, err := parseQuery(rq.r.URL.RawQuery)
	if err != nil {
		return err
	}
	p, err := parseGetParams(v)
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	if rq.pre.ifModifiedSince != nil {
		// Answer 304 without reading any record.
		ts, err := s.store.CollectionModified(ctx, rq.uid, rq.collection)
		if err != nil {
			return err
		}
		if err := rq.pre.checkRead(ts); err != nil {
			return err
		}
	}
	if p.zeroLimit {
		return s.getNothing(rq, format, p)
	}
	page, err := s.store.GetBSOs(ctx, rq.uid, rq.collection, p.Query)
	if err != nil {
		return err
	}
	// X-If-Unmodified-Since (the paging guard) is checked against the
	// collection timestamp of the same snapshot as the records.
	if err := rq.pre.checkRead(page.Modified); err != nil {
		return err
	}
	if p.full {
		var n int64
		for i := range page.BSOs {
			n += int64(len(page.BSOs[i].Payload))
		}
		s.obs.RecordsRead(len(page.BSOs), n)
	}
	return writeList(rq, format, page.Modified, page.BSOs, page.NextOffset, p.full)
}

// writeList renders a collection read with X-Last-Modified, X-Weave-Records
// and X-Weave-Next-Offset (§14). In newlines form every record is one line
// and an empty list is an empty body.
func writeList(rq *request, format int, modified weave.Timestamp, bsos []weave.BSO, next string, full bool) error {
	bp := getBuf()
	defer putBuf(bp)
	// Size the buffer once: payloads dominate, escaping adds little.
	est := 2
	for i := range bsos {
		est += len(bsos[i].ID) + 8
		if full {
			est += len(bsos[i].Payload) + 64
		}
	}
	b := slices.Grow((*bp)[:0], est)
	if format == formatJSON {
		b = append(b, '[')
	}
	for i := range bsos {
		if format == formatJSON && i > 0 {
			b = append(b, ',')
		}
		if full {
			b = appendBSO(b, &bsos[i])
		} else {
			b = appendString(b, bsos[i].ID)
		}
		if format == formatNewlines {
			// appendString escapes newlines, so each record is one line.
			b = append(b, '\n')
		}
	}
	if format == formatJSON {
		b = append(b, ']')
	}
	*bp = b
	h := rq.w.Header()
	rq.setLastModified(modified)
	h.Set("X-Weave-Records", strconv.Itoa(len(bsos)))
	if next != "" {
		h.Set("X-Weave-Next-Offset", next)
	}
	if format == formatNewlines {
		h.Set("Content-Type", "application/newlines")
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method != http.MethodHead {
		rq.w.Write(b)
	}
	return nil
}

// DELETE /storage/<c> (whole collection) or /storage/<c>?ids=… (listed
// items; the collection stays with timestamp T). Both answer
// {"modified": ts} (storage-1.5.md §18 #6). No other parameter exists in 1.5.
func (s *Server) deleteCollection(rq *request) error {
	v, err := parseQuery(rq.r.URL.RawQuery)
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	var ts weave.Timestamp
	if idsParam, ok := first(v, "ids"); ok {
		ids, err := parseIDs(idsParam)
		if err != nil {
			return err
		}
		ts, err = s.store.DeleteBSOs(ctx, rq.uid, rq.collection, ids, rq.pre.store())
		if err != nil {
			return err
		}
	} else {
		ts, err = s.store.DeleteCollection(ctx, rq.uid, rq.collection, rq.pre.store())
		if err != nil {
			return err
		}
	}
	return writeModified(rq, ts)
}

// DELETE <ep> and DELETE <ep>/storage: all the user's data. The body is {}
// (storage-1.5.md §18 #7).
func (s *Server) deleteStorage(rq *request) error {
	ts, err := s.store.DeleteStorage(rq.r.Context(), rq.uid, rq.pre.store())
	if err != nil {
		return err
	}
	rq.setLastModified(ts)
	writeJSON(rq, http.StatusOK, []byte("{}"))
	return nil
}

// getNothing answers limit=0: no records, and when some match, the offset
// to read them from (the request's own, or the start), as syncstorage-rs
// does. The Store's Limit 0 means "all", so it is asked for one id.
func (s *Server) getNothing(rq *request, format int, p getParams) error {
	q := p.Query
	q.Limit, q.IDsOnly = 1, true
	page, err := s.store.GetBSOs(rq.r.Context(), rq.uid, rq.collection, q)
	if err != nil {
		return err
	}
	if err := rq.pre.checkRead(page.Modified); err != nil {
		return err
	}
	next := ""
	if len(page.BSOs) > 0 {
		next = cmp.Or(p.Offset, weave.StartOffset)
	}
	return writeList(rq, format, page.Modified, nil, next, p.full)
}
