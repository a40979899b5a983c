package http

import (
	"net/http"

	"github.com/weave-sync/weave"
)

// postResult is the per-record outcome of a POST.
type postResult struct {
	updates []weave.Update
	success []string
	failed  []failure // in request order
}

type failure struct{ id, reason string }

// POST /storage/<c>: a plain upload (200), or the batch protocol of
// storage-1.5.md §11: ?batch=true opens a batch (202), ?batch=<id> appends
// (202), ?batch=<id>&commit=true commits (200); ?batch=true&commit=true is a
// plain upload. Its query string and headers were checked by checkUpload.
func (s *Server) postCollection(rq *request) error {
	pp, format := rq.upload.post, rq.upload.format
	body, err := s.readBody(rq)
	if err != nil {
		return err
	}
	res, err := s.parsePost(rq.collection, body, format)
	if err != nil {
		return err
	}
	// The parsed records are all the write needs: the raw body need not
	// stay in memory while the write waits for the database.
	rq.body, body = nil, nil
	ctx := rq.r.Context()
	pre := s.writePre(rq)
	switch {
	case pp.batch == "":
		var ts weave.Timestamp
		if len(res.updates) == 0 {
			// Nothing valid to write: do not invent a write (and a new
			// timestamp) for it; report the collection as it is.
			err = s.checkQuota(rq, pre.Quota)
			if err == nil {
				ts, err = s.store.CollectionModified(ctx, rq.uid, rq.collection)
			}
			if err == nil {
				err = pre.Check(ts)
			}
		} else {
			ts, err = s.store.PostBSOs(ctx, rq.uid, rq.collection, res.updates, pre)
		}
		if err != nil {
			return err
		}
		s.obs.RecordsWritten(len(res.updates), payloadBytes(res.updates))
		return s.writePostResult(rq, pre.Quota, http.StatusOK, ts, "", res)
	case pp.commit:
		ts, err := s.store.CommitBatch(ctx, rq.uid, rq.collection, pp.batch, res.updates, pre)
		if err != nil {
			return err
		}
		s.obs.BatchCommitted(len(res.updates), payloadBytes(res.updates))
		return s.writePostResult(rq, pre.Quota, http.StatusOK, ts, "", res)
	default:
		// Staging does not change the collection: X-Last-Modified stays the
		// collection's timestamp, which the store read with the write.
		id := pp.batch
		var ts weave.Timestamp
		if id == "true" {
			id, ts, err = s.store.CreateBatch(ctx, rq.uid, rq.collection, res.updates, pre)
		} else {
			ts, err = s.store.AppendBatch(ctx, rq.uid, rq.collection, id, res.updates, pre)
		}
		if err != nil {
			return err
		}
		if pp.batch == "true" {
			s.obs.BatchOpened()
		}
		s.obs.RecordsWritten(len(res.updates), payloadBytes(res.updates))
		return s.writePostResult(rq, pre.Quota, http.StatusAccepted, ts, id, res)
	}
}

// uploadParams are what an upload's handler needs of its query string and
// headers, checked before the request waits for the body budget.
type uploadParams struct {
	post   postParams
	format int // formatJSON or formatNewlines
}

// checkUpload checks the query string and headers of a POST /storage/<c>
// or PUT /storage/<c>/<id>, none of which needs the body: serveStorage runs
// it before the request waits for room in the body budget (serve), so that
// a bad one is refused at once, not after the wait.
// (X-If-Unmodified-Since and a Content-Length over max_request_bytes are
// refused earlier, for every method.)
func (s *Server) checkUpload(r *http.Request) (uploadParams, error) {
	var up uploadParams
	var err error
	if r.Method == http.MethodPut {
		up.format, err = requestFormat(r.Header, false)
		return up, err
	}
	v, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return up, err
	}
	if up.post, err = parsePostParams(v); err != nil {
		return up, err
	}
	if _, err := parsePostHeaders(r.Header, s.limits, up.post.batch != ""); err != nil {
		return up, err
	}
	up.format, err = requestFormat(r.Header, true)
	return up, err
}

// parsePost parses a POST body and sorts its records into updates and
// per-record failures (storage-1.5.md §3.7). Whole-request rejections (400):
// bad JSON (6); not a list of objects, a record without a string id,
// duplicate ids, a known-bad crypto payload (8). Per record: validation
// failures by reason; beyond max_post_records "retry bso"; from the record
// that takes the payload sum over max_post_bytes on, "retry bytes".
func (s *Server) parsePost(collection string, body []byte, format int) (postResult, error) {
	lim := bsoLimits{maxPayload: s.limits.MaxRecordPayloadBytes}
	var ins []bsoInput
	var err error
	if format == formatNewlines {
		ins, err = parseBSOLines(body, lim)
	} else {
		ins, err = parseBSOList(body, lim)
	}
	if err != nil {
		return postResult{}, err
	}
	seen := make(map[string]struct{}, len(ins))
	for i := range ins {
		in := &ins[i]
		if !in.hasID || !in.idString {
			return postResult{}, errMissingID
		}
		if _, dup := seen[in.ID]; dup {
			return postResult{}, errDuplicateIDs
		}
		seen[in.ID] = struct{}{}
		if knownBadPayload(collection, in.Payload) {
			return postResult{}, badRequest(codeInvalidBSO, "known-bad crypto payload")
		}
	}
	res := postResult{updates: make([]weave.Update, 0, len(ins)), success: make([]string, 0, len(ins))}
	var bytes int64
	overBytes := false
	for i := range ins {
		in := &ins[i]
		switch {
		case in.invalid != "":
			res.failed = append(res.failed, failure{in.ID, in.invalid})
		case s.limits.MaxPostRecords > 0 && int64(len(res.updates)) >= s.limits.MaxPostRecords:
			res.failed = append(res.failed, failure{in.ID, "retry bso"})
		default:
			bytes += int64(len(in.Payload.Value))
			if s.limits.MaxPostBytes > 0 && bytes > s.limits.MaxPostBytes {
				overBytes = true
			}
			if overBytes {
				res.failed = append(res.failed, failure{in.ID, "retry bytes"})
				continue
			}
			res.updates = append(res.updates, in.Update)
			res.success = append(res.success, in.ID)
		}
	}
	return res, nil
}

// writePostResult answers {"modified":T,...} (200) or {"batch":id,...}
// (202), with X-Last-Modified.
func (s *Server) writePostResult(rq *request, q *weave.Quota, status int, ts weave.Timestamp, batch string, res postResult) error {
	if status == http.StatusOK {
		reportQuota(rq, q)
	}
	rq.setLastModified(ts)
	bp := getBuf()
	defer putBuf(bp)
	b := (*bp)[:0]
	if batch != "" {
		b = append(b, `{"batch":`...)
		b = appendString(b, batch)
	} else {
		b = append(b, `{"modified":`...)
		b = appendTimestamp(b, ts)
	}
	b = append(b, `,"success":[`...)
	for i, id := range res.success {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, id)
	}
	b = append(b, `],"failed":{`...)
	for i, f := range res.failed {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.id)
		b = append(b, ':')
		b = appendString(b, f.reason)
	}
	b = append(b, "}}"...)
	*bp = b
	writeJSON(rq, status, b)
	return nil
}
