package http

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/weave-sync/weave"
)

// maxIDs is the most ids a GET or DELETE may name (storage-1.5.md §5).
const maxIDs = 100

// maxLimit caps limit=: larger values are valid but mean "everything".
const maxLimit = 1 << 30

// validID reports whether id is a legal BSO id: 1–64 printable ASCII
// characters (the regex [ -~]{1,64} without its cost).
func validID(id string) bool {
	if len(id) == 0 || len(id) > weave.MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// validCollection reports whether name matches [A-Za-z0-9._-]{1,32}.
func validCollection(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseQuery parses a raw query strictly: a malformed escape or separator is
// a 400 rather than a silently dropped parameter.
func parseQuery(raw string) (url.Values, error) {
	if raw == "" {
		return nil, nil
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest(codeBadRequest, "malformed query string")
	}
	return v, nil
}

// first returns the first value of a query parameter and whether it is
// present at all.
func first(v url.Values, key string) (string, bool) {
	vs, ok := v[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// parseIDs parses the ids parameter: comma-separated, each trimmed of
// surrounding whitespace and validated; at most 100.
func parseIDs(s string) ([]string, error) {
	n := strings.Count(s, ",") + 1
	if n > maxIDs {
		return nil, badRequest(codeBadRequest, "more than %d ids", maxIDs)
	}
	ids := make([]string, 0, n)
	for part := range strings.SplitSeq(s, ",") {
		id := strings.TrimSpace(part)
		if !validID(id) {
			return nil, badRequest(codeBadRequest, "invalid id in ids")
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// getParams is a parsed GET /storage/<c> query.
type getParams struct {
	weave.Query
	full bool
	// zeroLimit is an explicit limit=0, which the Store cannot express
	// (its 0 means "no limit"): the answer is an empty list, with the
	// offset to read from when records match.
	zeroLimit bool
}

// parseGetParams validates the query of GET /storage/<collection>
// (storage-1.5.md §5). Unknown parameters are ignored, as both reference
// servers do.
func parseGetParams(v url.Values) (getParams, error) {
	p := getParams{Query: weave.Query{Lean: true}}
	if s, ok := first(v, "ids"); ok {
		ids, err := parseIDs(s)
		if err != nil {
			return p, err
		}
		p.IDs = ids
	}
	if s, ok := first(v, "newer"); ok {
		t, err := weave.ParseTimestamp(s)
		if err != nil {
			return p, badRequest(codeBadRequest, "invalid newer")
		}
		p.Newer = t
	}
	if s, ok := first(v, "older"); ok {
		t, err := weave.ParseTimestamp(s)
		if err != nil {
			return p, badRequest(codeBadRequest, "invalid older")
		}
		p.Older = t
	}
	_, p.full = v["full"]
	p.IDsOnly = !p.full
	if s, ok := first(v, "limit"); ok {
		n, err := parseCount(s)
		if err != nil {
			return p, badRequest(codeBadRequest, "invalid limit")
		}
		if n == 0 {
			p.zeroLimit = true
		}
		p.Limit = int(min(n, maxLimit))
	}
	if s, ok := first(v, "offset"); ok {
		if !validOffset(s) {
			return p, badRequest(codeUnknown, "invalid offset")
		}
		p.Offset = s
	}
	if s, ok := first(v, "sort"); ok {
		switch s {
		case "newest":
			p.Sort = weave.SortNewest
		case "oldest":
			p.Sort = weave.SortOldest
		case "index":
			p.Sort = weave.SortIndex
		default:
			return p, badRequest(codeBadRequest, "invalid sort")
		}
	}
	return p, nil
}

// validOffset rejects offsets no store could have issued before they reach
// the database: empty, overlong, or not printable ASCII.
func validOffset(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseCount parses a non-negative decimal integer (digits only), saturating
// at 2^62 so that huge but well-formed values stay valid.
func parseCount(s string) (int64, error) {
	if s == "" || len(s) > 64 {
		return 0, strconv.ErrSyntax
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		if n > (1<<62)/10 {
			n = 1 << 62 // saturated; n*10 would overflow
			continue
		}
		n = min(n*10+int64(c-'0'), 1<<62)
	}
	return n, nil
}

// postParams is a parsed POST /storage/<c> query.
type postParams struct {
	// batch is "" (no batch), "true" (open a new batch) or a batch id.
	batch  string
	commit bool
}

// maxBatchIDLength bounds batch ids; real ones are short base64 strings.
const maxBatchIDLength = 128

// parsePostParams validates batch and commit (storage-1.5.md §11).
func parsePostParams(v url.Values) (postParams, error) {
	var p postParams
	if s, ok := first(v, "commit"); ok {
		if !strings.EqualFold(s, "true") {
			return p, badRequest(codeBadRequest, "invalid commit")
		}
		p.commit = true
	}
	if s, ok := first(v, "batch"); ok {
		switch {
		case strings.EqualFold(s, "true"):
			p.batch = "true"
		case s == "" || len(s) > maxBatchIDLength || !validOffset(s):
			return p, badRequest(codeUnknown, "invalid batch id")
		default:
			p.batch = s
		}
	} else if p.commit {
		return p, badRequest(codeUnknown, "commit without batch")
	}
	// batch=true&commit=true is a plain POST (SPEC; RS short-circuits too).
	if p.batch == "true" && p.commit {
		p = postParams{}
	}
	return p, nil
}

// preconditions are the parsed X-If-Modified-Since / X-If-Unmodified-Since.
type preconditions struct {
	ifModifiedSince   *weave.Timestamp
	ifUnmodifiedSince *weave.Timestamp
}

// parsePreconditions validates the conditional headers: each must be a
// non-negative decimal number of seconds, and at most one may be present.
func parsePreconditions(h http.Header) (preconditions, error) {
	var p preconditions
	for _, name := range [...]string{"X-If-Modified-Since", "X-If-Unmodified-Since"} {
		vs := h.Values(name)
		if len(vs) == 0 {
			continue
		}
		t, err := parseHeaderTimestamp(vs[0])
		if err != nil || len(vs) > 1 {
			return p, badRequest(codeBadRequest, "invalid %s", name)
		}
		if name == "X-If-Modified-Since" {
			p.ifModifiedSince = &t
		} else {
			p.ifUnmodifiedSince = &t
		}
	}
	if p.ifModifiedSince != nil && p.ifUnmodifiedSince != nil {
		return p, badRequest(codeBadRequest, "both X-If-Modified-Since and X-If-Unmodified-Since")
	}
	return p, nil
}

// parseHeaderTimestamp parses a conditional header's value.
func parseHeaderTimestamp(s string) (weave.Timestamp, error) {
	return weave.ParseTimestamp(strings.TrimSpace(s))
}

func (p preconditions) store() weave.Precondition {
	return weave.Precondition{IfUnmodifiedSince: p.ifUnmodifiedSince}
}

// checkRead applies the conditional headers to a read of a resource last
// modified at modified: 304 or 412 as storage-1.5.md §16 says.
func (p preconditions) checkRead(modified weave.Timestamp) error {
	if p.ifModifiedSince != nil && modified <= *p.ifModifiedSince {
		return &apiError{status: http.StatusNotModified, reason: "not modified", lastModified: &modified}
	}
	if p.ifUnmodifiedSince != nil && modified > *p.ifUnmodifiedSince {
		return &weave.PreconditionFailedError{Modified: modified}
	}
	return nil
}

// postHeaders are the declared sizes of a POST.
type postHeaders struct {
	records, bytes, totalRecords, totalBytes int64 // -1 when absent
}

// parsePostHeaders validates X-Weave-Records / -Bytes / -Total-Records /
// -Total-Bytes against the limits: non-integers give code 1, values over a
// limit code 17. The totals are checked only for batch uploads; outside a
// batch they are ignored (storage-1.5.md §18 #15).
func parsePostHeaders(h http.Header, lim weave.Limits, inBatch bool) (postHeaders, error) {
	ph := postHeaders{-1, -1, -1, -1}
	check := func(name string, limit int64, dst *int64) error {
		s := h.Get(name)
		if s == "" {
			if _, present := h[name]; present {
				return badRequest(codeBadRequest, "invalid %s", name)
			}
			return nil
		}
		n, err := parseCount(strings.TrimSpace(s))
		if err != nil {
			return badRequest(codeBadRequest, "invalid %s", name)
		}
		if limit > 0 && n > limit {
			return badRequest(codeSizeExceeded, "%s over limit", name)
		}
		*dst = n
		return nil
	}
	if err := check("X-Weave-Records", lim.MaxPostRecords, &ph.records); err != nil {
		return ph, err
	}
	if err := check("X-Weave-Bytes", lim.MaxPostBytes, &ph.bytes); err != nil {
		return ph, err
	}
	if inBatch {
		if err := check("X-Weave-Total-Records", lim.MaxTotalRecords, &ph.totalRecords); err != nil {
			return ph, err
		}
		if err := check("X-Weave-Total-Bytes", lim.MaxTotalBytes, &ph.totalBytes); err != nil {
			return ph, err
		}
	}
	return ph, nil
}

// Body formats.
const (
	formatJSON = iota
	formatNewlines
)

// mediaType returns the lowercased media type of a Content-Type or Accept
// element, without parameters.
func mediaType(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// requestFormat picks the body format from Content-Type. A missing
// Content-Type is JSON (as the Python server does); text/plain is JSON
// (SPEC); newlines only where allowed (POST).
func requestFormat(h http.Header, allowNewlines bool) (int, error) {
	switch mediaType(h.Get("Content-Type")) {
	case "", "application/json", "text/plain":
		return formatJSON, nil
	case "application/newlines":
		if allowNewlines {
			return formatNewlines, nil
		}
	}
	return 0, errUnsupportedCT
}

// responseFormat negotiates the output format from Accept: JSON is
// preferred over newlines at equal quality (SPEC); no Accept, or */*, is
// JSON; nothing acceptable is 406.
func responseFormat(accept string) (int, error) {
	if accept == "" {
		return formatJSON, nil
	}
	// For each candidate keep the quality of the most specific range that
	// matches it (RFC 9110 §12.5.1).
	qJSON, qNL := -1.0, -1.0
	specJSON, specNL := -1, -1
	for part := range strings.SplitSeq(accept, ",") {
		typ, params, _ := strings.Cut(part, ";")
		typ = strings.ToLower(strings.TrimSpace(typ))
		if typ == "" {
			continue
		}
		q := 1.0
		for param := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(param, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		spec := -1
		switch typ {
		case "*/*":
			spec = 0
		case "application/*":
			spec = 1
		}
		if spec >= 0 || typ == "application/json" {
			s := spec
			if typ == "application/json" {
				s = 2
			}
			if s > specJSON {
				specJSON, qJSON = s, q
			}
		}
		if spec >= 0 || typ == "application/newlines" {
			s := spec
			if typ == "application/newlines" {
				s = 2
			}
			if s > specNL {
				specNL, qNL = s, q
			}
		}
	}
	switch {
	case qJSON > 0 && qJSON >= qNL:
		return formatJSON, nil
	case qNL > 0:
		return formatNewlines, nil
	}
	return 0, errNotAcceptable
}
