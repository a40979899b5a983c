package http

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/weave-sync/weave"
)

// GET /storage/<c>: ids, or full BSOs with ?full, as JSON or newlines.
// Without limit everything matching is returned (storage-1.5.md §18 #14),
// in bounded pages (see readList).
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
	for range listAttempts {
		if err := s.readList(rq, format, p); !errors.Is(err, errListChanged) {
			return err
		}
	}
	return weave.ErrConflict
}

// Collection reads are paged inside the server, as the Python reference
// server does with storage.pagination_batch_size, but every page goes to the
// client as soon as it is read: the memory of a read is one page whatever
// the collection's size, and no database connection or snapshot is held
// while a slow client reads (each page is one short statement). A read that
// fits in one page is answered exactly as before, with Content-Length.
const (
	// readPageRecords and readPageBytes bound one page of records.
	readPageRecords = 1000
	readPageBytes   = 1 << 20
	// listAttempts is how often a read restarts when its collection
	// changes before the response has started; after that it gets 503.
	listAttempts = 3
)

// errListChanged says the collection changed between two pages of a read.
var errListChanged = errors.New("http: collection changed during a paged read")

// readList answers one GET of a collection, or returns errListChanged if
// it has to start again (nothing has been written then).
//
// Records are encoded as the store reads them (weave.StreamBSOs), into a
// buffer that goes out only once its page is complete: an error while a
// page is read still becomes a status of its own when nothing has been
// sent, and never leaves a partial record on the wire.
func (s *Server) readList(rq *request, format int, p getParams) error {
	ctx := rq.r.Context()
	q := p.Query
	q.MaxBytes = s.pageBytes
	q.Limit = s.pageRecords
	if p.Limit > 0 {
		q.Limit = min(p.Limit, s.pageRecords)
	}
	bp := getBuf()
	defer putBuf(bp)
	b := (*bp)[:0]
	if format == formatJSON {
		b = append(b, '[')
	}
	// sent counts the records of earlier pages (on the wire or in b), n
	// and size those of the page being read; limit, when above zero, is
	// the count no page may take the read past.
	var sent, n, limit int
	var size int64
	encode := func(o *weave.BSO) error {
		if limit > 0 && sent+n >= limit {
			return errMoreThanCounted
		}
		if need := len(b) + len(o.ID) + len(o.Payload) + 96; need > cap(b) {
			// Doubling: append grows a large slice by a quarter, which
			// copied a 500 KB page some ten times.
			b = slices.Grow(b, max(need, 2*cap(b), 16<<10)-len(b))
		}
		b = appendListItem(b, format, o, p.full, sent+n == 0)
		n++
		size += int64(len(o.Payload))
		return nil
	}
	defer func() { *bp = b }()
	page, err := weave.StreamBSOs(ctx, s.store, rq.uid, rq.collection, q, encode)
	if err != nil {
		return err
	}
	// X-If-Unmodified-Since (the paging guard) is checked against the
	// collection timestamp of the same snapshot as the records.
	if err := rq.pre.checkRead(page.Modified); err != nil {
		return err
	}
	if page.NextOffset == "" || n == p.Limit {
		s.observeRead(n, size, p.full)
		if format == formatJSON {
			b = append(b, ']')
		}
		sendList(rq, format, page.Modified, b, n, page.NextOffset)
		return nil
	}

	// More than a page: X-Weave-Records and X-Weave-Next-Offset must go
	// out before the body, so one statement counts the read first.
	total, next, err := s.countList(rq, p.Query, page.Modified)
	if err != nil {
		return err
	}
	if total < n {
		return errListChanged
	}
	modified := page.Modified
	setListHeaders(rq, format, modified, total, next)
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method == http.MethodHead {
		return nil
	}

	// From here on the status is sent: a read that cannot finish as
	// counted is cut off (the connection closes without the end of the
	// body), so a client can never take a partial or mixed read for a
	// whole one; it retries as after any network error.
	limit = total
	for {
		s.observeRead(n, size, p.full)
		sent += n
		if sent == total {
			break
		}
		if page.NextOffset == "" {
			s.abortList(rq, "fewer records than counted")
		}
		if _, err := rq.w.Write(b); err != nil {
			s.abortList(rq, "client gone: "+err.Error())
		}
		rq.w.Flush() // the client gets each page as soon as it is read
		b = b[:0]
		q.Offset = page.NextOffset
		q.Limit = s.pageRecords
		if p.Limit > 0 {
			q.Limit = min(p.Limit-sent, s.pageRecords)
		}
		n, size = 0, 0
		page, err = weave.StreamBSOs(ctx, s.store, rq.uid, rq.collection, q, encode)
		if err != nil {
			s.abortList(rq, err.Error())
		}
		if page.Modified != modified {
			s.abortList(rq, "collection changed")
		}
	}
	if format == formatJSON {
		b = append(b, ']')
	}
	rq.w.Write(b)
	return nil
}

// errMoreThanCounted ends a page that would take a paged read past the
// count its headers announced.
var errMoreThanCounted = errors.New("more records than counted")

// countList counts the records of a read from the start of q (its offset
// included), up to its limit, and gives the next offset after the last of
// them when more match. The count must carry the timestamp modified.
func (s *Server) countList(rq *request, q weave.Query, modified weave.Timestamp) (int, string, error) {
	q.CountOnly, q.IDsOnly, q.MaxBytes = true, true, 0
	page, err := s.store.GetBSOs(rq.r.Context(), rq.uid, rq.collection, q)
	if err != nil {
		return 0, "", err
	}
	if page.Modified != modified {
		return 0, "", errListChanged
	}
	return page.Count, page.NextOffset, nil
}

// abortList ends a response whose status has gone out but whose body
// cannot be completed as announced.
func (s *Server) abortList(rq *request, why string) {
	rq.errReason = "paged read cut off: " + why
	panic(http.ErrAbortHandler)
}

// observeRead counts n records read with size bytes of payload, for full
// reads only.
func (s *Server) observeRead(n int, size int64, full bool) {
	if full {
		s.obs.RecordsRead(n, size)
	}
}

// appendListItem appends one record of a list: JSON elements are separated
// by commas, newline records each end a line.
func appendListItem(b []byte, format int, o *weave.BSO, full, first bool) []byte {
	if format == formatJSON && !first {
		b = append(b, ',')
	}
	if full {
		b = appendBSO(b, o)
	} else {
		b = appendString(b, o.ID)
	}
	if format == formatNewlines {
		// appendString escapes newlines, so each record is one line.
		b = append(b, '\n')
	}
	return b
}

// setListHeaders sets the headers of a collection read (§14).
func setListHeaders(rq *request, format int, modified weave.Timestamp, records int, next string) {
	h := rq.w.Header()
	rq.setLastModified(modified)
	h.Set("X-Weave-Records", strconv.Itoa(records))
	if next != "" {
		h.Set("X-Weave-Next-Offset", next)
	}
	if format == formatNewlines {
		h.Set("Content-Type", "application/newlines")
	} else {
		h.Set("Content-Type", "application/json")
	}
}

// sendList answers a collection read whose whole body is in body (records
// encoded with appendListItem, and for JSON the brackets), with its
// Content-Length, X-Last-Modified, X-Weave-Records and X-Weave-Next-Offset
// (§14). In newlines form an empty list is an empty body.
func sendList(rq *request, format int, modified weave.Timestamp, body []byte, records int, next string) {
	setListHeaders(rq, format, modified, records, next)
	rq.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method != http.MethodHead {
		rq.w.Write(body)
	}
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
	var body []byte
	if format == formatJSON {
		body = []byte("[]")
	}
	sendList(rq, format, page.Modified, body, 0, next)
	return nil
}
