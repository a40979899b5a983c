package http

import (
	"errors"
	"net/http"
	"strings"

	"github.com/weave-sync/weave"
)

// GET /storage/<c>/<id>.
func (s *Server) getItem(rq *request) error {
	// Any format the client accepts is answered with JSON (a single object
	// has no newlines form); only a client accepting neither gets 406.
	if _, err := responseFormat(rq.r.Header.Get("Accept")); err != nil {
		return err
	}
	b, err := s.store.GetBSO(rq.r.Context(), rq.uid, rq.collection, rq.id)
	if errors.Is(err, weave.ErrNotFound) {
		// A missing item has timestamp 0 for the conditional headers
		// (storage-1.5.md §2.3, §16), as in both reference servers.
		if cerr := rq.pre.checkRead(0); cerr != nil {
			return cerr
		}
		return err
	}
	if err != nil {
		return err
	}
	if err := rq.pre.checkRead(b.Modified); err != nil {
		return err
	}
	rq.setLastModified(b.Modified)
	bp := getBuf()
	defer putBuf(bp)
	*bp = appendBSO((*bp)[:0], &b)
	s.obs.RecordsRead(1, int64(len(b.Payload)))
	writeJSON(rq, http.StatusOK, *bp)
	return nil
}

// PUT /storage/<c>/<id>: create or partially update one BSO; the response
// is the new timestamp as a bare JSON number. Its Content-Type was checked
// by checkUpload.
func (s *Server) putItem(rq *request) error {
	body, err := s.readBody(rq)
	if err != nil {
		return err
	}
	in, err := parseBSO(body, bsoLimits{maxPayload: s.limits.MaxRecordPayloadBytes})
	if err != nil {
		return err
	}
	rq.body, body = nil, nil // as in postCollection
	// The body's id may be absent; if present it must be valid (a null or
	// non-string id is invalid too); the path id is the one used.
	if in.hasID && !in.idString {
		return badRequest(codeInvalidBSO, "invalid id in body")
	}
	if in.invalid != "" {
		return badRequest(codeInvalidBSO, "invalid BSO: %s", in.invalid)
	}
	u := in.Update
	u.ID = rq.id
	if knownBadPayload(rq.collection, u.Payload) {
		return badRequest(codeInvalidBSO, "known-bad crypto payload")
	}
	pre := s.writePre(rq)
	ts, err := s.store.PutBSO(rq.r.Context(), rq.uid, rq.collection, u, pre)
	if err != nil {
		return err
	}
	s.obs.RecordsWritten(1, int64(len(u.Payload.Value)))
	reportQuota(rq, pre.Quota)
	rq.setLastModified(ts)
	writeJSON(rq, http.StatusOK, appendTimestamp(make([]byte, 0, 16), ts))
	return nil
}

// DELETE /storage/<c>/<id>: 404 when absent.
func (s *Server) deleteItem(rq *request) error {
	ts, err := s.store.DeleteBSO(rq.r.Context(), rq.uid, rq.collection, rq.id, rq.pre.store())
	if err != nil {
		return err
	}
	return writeModified(rq, ts)
}

// writeModified answers {"modified": ts} with X-Last-Modified: ts.
func writeModified(rq *request, ts weave.Timestamp) error {
	rq.setLastModified(ts)
	b := append(make([]byte, 0, 32), `{"modified":`...)
	b = appendTimestamp(b, ts)
	b = append(b, '}')
	writeJSON(rq, http.StatusOK, b)
	return nil
}

// badIV is the IV of a Firefox crypto bug: a crypto/keys record encrypted
// with it must not be stored (both reference servers reject it).
const badIV = `"AAAAAAAAAAAAAAAAAAAAAA=="`

// knownBadPayload reports whether a payload for the crypto collection
// matches `"IV":\s*"AAAAAAAAAAAAAAAAAAAAAA=="`.
func knownBadPayload(collection string, p weave.Optional[string]) bool {
	if collection != "crypto" || !p.Set || p.Null {
		return false
	}
	s := p.Value
	for {
		i := strings.Index(s, `"IV":`)
		if i < 0 {
			return false
		}
		s = s[i+len(`"IV":`):]
		t := strings.TrimLeft(s, " \t\n\r\f\v")
		if strings.HasPrefix(t, badIV) {
			return true
		}
	}
}
