package legacy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weave-sync/weave"
	weavehttp "github.com/weave-sync/weave/http"
)

// Storage API 1.1 limits (server-storage's defaults).
const (
	maxPayload      = 256 * 1024 // bytes of one WBO payload
	batchMaxCount   = 100        // WBOs stored from one POST; more get "retry wbo"
	batchMaxBytes   = 1 << 20    // cumulative payload of one POST; more get "retry bytes"
	maxTTL          = 31_536_000 // seconds (one year)
	maxRequestBody  = 4 << 20    // a POST of 100 WBOs near the byte limit fits
	maxIDs          = 1000       // ids in one ids= list
	scanPage        = 100        // records read from the store at a time
	bufferedOutput  = 4 << 20    // answers up to this size carry X-Weave-Records
	quotaWarnBytes  = 1 << 20    // X-Weave-Quota-Remaining below this
	maxPathSegments = 64

	defaultRetryAfter  = 30 * time.Minute
	conflictRetryAfter = 10 * time.Second
)

func seconds(d time.Duration) string { return strconv.Itoa(int(math.Ceil(d.Seconds()))) }

// nodeHandler serves Storage 1.1 for one node.
type nodeHandler struct {
	s       *Service
	nodeURL string // normalized
	prefix  string
	store   weave.Store
	status  NodeStatus
	next    http.Handler
}

// Storage returns the Storage 1.1 handler of the node at nodeURL, whose
// records are in store (the same Store its 1.5 API uses); status gives
// the node's state and its users' move marks (nil: always up). Requests
// that are not 1.1 storage requests — /1.1/USER/…, /1.0/USER/… or
// /1/USER/… followed by info or storage — go to next, so the token
// server's /1.0/sync/1.5 is never taken.
func (s *Service) Storage(nodeURL string, store weave.Store, status NodeStatus, next http.Handler) http.Handler {
	return &nodeHandler{s: s, nodeURL: weave.NodeURLKey(nodeURL), prefix: pathOf(nodeURL), store: store, status: status, next: next}
}

// route is a parsed 1.1 storage path.
type route struct {
	user string
	kind string // "info" or "storage"
	rest []string
}

// stripPrefix removes the public URL's path prefix when the request has
// it; a proxy that strips it already is fine too (as for Sync 1.5).
func stripPrefix(path, prefix string) string {
	if rest, ok := strings.CutPrefix(path, prefix); ok && prefix != "" && (rest == "" || rest[0] == '/') {
		return rest
	}
	return path
}

func parseRoute(path, prefix string) (route, bool) {
	path = stripPrefix(path, prefix)
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) < 3 || len(segs) > maxPathSegments {
		return route{}, false
	}
	switch segs[0] {
	case "1.1", "1.0", "1":
	default:
		return route{}, false
	}
	if segs[2] != "info" && segs[2] != "storage" {
		return route{}, false
	}
	if !validRouteName(segs[1]) {
		return route{}, false
	}
	return route{user: segs[1], kind: segs[2], rest: segs[3:]}, true
}

func (h *nodeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := parseRoute(r.URL.Path, h.prefix)
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	s := h.s
	if a := s.cfg.Alert; a != nil {
		b, _ := json.Marshal(a)
		w.Header().Set("X-Weave-Alert", string(b))
		if a.Code == "hard-eol" {
			writeStatus(w, 513)
			return
		}
	}
	var down, backoff time.Duration
	if h.status != nil {
		down, backoff = h.status.State()
	}
	if d := max(down, backoff); d > 0 {
		w.Header().Set("X-Weave-Backoff", seconds(d))
	}
	uid, ok := h.authenticate(w, r, rt.user)
	if !ok {
		return
	}
	// An authenticated storage request may move megabytes: give it the
	// transfer deadlines of the 1.5 API (progress, not a fixed bound).
	weavehttp.AllowTransfer(r.Context())
	if down > 0 {
		w.Header().Set("Retry-After", seconds(down))
		writeStatus(w, http.StatusServiceUnavailable)
		return
	}
	c := &call{h: h, w: w, r: r, uid: uid, now: weave.TimestampAt(s.cfg.Now())}
	if rt.kind == "info" {
		c.info(rt.rest)
		return
	}
	c.storage(rt.rest)
}

// authenticate checks Basic credentials against the path's user and that
// the user lives on this node; else 401, which sends the client to look
// its node up again (the 2011 node-reassignment signal).
func (h *nodeHandler) authenticate(w http.ResponseWriter, r *http.Request, pathUser string) (int64, bool) {
	s := h.s
	fail := func(reason string) (int64, bool) {
		s.cfg.Observer.AuthFailed(reason)
		writeStatus(w, http.StatusUnauthorized)
		return 0, false
	}
	user, pass, ok := basicAuth(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="Sync"`)
		return fail("missing")
	}
	if user != pathUser {
		return fail("password")
	}
	ctx := r.Context()
	if _, err := s.login(ctx, user, pass); err != nil {
		if errors.Is(err, weave.ErrNotFound) || errors.Is(err, errBadPassword) || errors.Is(err, errLocked) {
			return fail("password")
		}
		s.writeStoreError(w, err)
		return 0, false
	}
	tu, err := s.cfg.Tokens.GetUser(ctx, weave.LegacyTokenEmail(user))
	if err != nil && !errors.Is(err, weave.ErrNotFound) {
		s.writeStoreError(w, err)
		return 0, false
	}
	if err != nil || tu.ReplacedAt != 0 || tu.Node == nil || weave.NodeURLKey(tu.Node.URL) != h.nodeURL {
		return fail("node")
	}
	if h.status != nil && h.status.Moved(tu.UID) {
		return fail("moved")
	}
	return tu.UID, true
}

// call is one authenticated storage request.
type call struct {
	h   *nodeHandler
	w   http.ResponseWriter
	r   *http.Request
	uid int64
	now weave.Timestamp
}

func (c *call) ctx() context.Context { return c.r.Context() }

// ok answers 200 with body (JSON) and the timestamp header.
func (c *call) ok(ts weave.Timestamp, body []byte) {
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Weave-Timestamp", ts.String())
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(body)
}

func (c *call) okJSON(v any, records int) {
	b, err := json.Marshal(v)
	if err != nil {
		c.fail(err)
		return
	}
	if records >= 0 {
		c.w.Header().Set("X-Weave-Records", strconv.Itoa(records))
	}
	c.ok(c.now, b)
}

// fail maps a store error to the 2011 answers.
func (c *call) fail(err error) {
	switch weave.ErrorKindOf(err) {
	case weave.KindUserMoved:
		c.h.s.cfg.Observer.AuthFailed("moved")
		writeStatus(c.w, http.StatusUnauthorized)
	case weave.KindOverQuota:
		writeCode(c.w, codeOverQuota)
	case weave.KindPrecondition:
		writeText(c.w, http.StatusPreconditionFailed, http.StatusText(http.StatusPreconditionFailed))
	case weave.KindNotFound:
		writeStatus(c.w, http.StatusNotFound)
	case weave.KindTooLarge:
		// The database refused the write for its size: as for a body
		// over the payload limit (nothing was written, and a retry of the
		// same request cannot succeed, so not a 503).
		writeStatus(c.w, http.StatusRequestEntityTooLarge)
	default:
		c.h.s.writeStoreError(c.w, err)
	}
}

func (c *call) methodNotAllowed(allow string) {
	c.w.Header().Set("Allow", allow)
	writeStatus(c.w, http.StatusMethodNotAllowed)
}

func (c *call) info(rest []string) {
	if len(rest) != 1 {
		writeStatus(c.w, http.StatusNotFound)
		return
	}
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead {
		c.methodNotAllowed("GET")
		return
	}
	store, ctx, uid := c.h.store, c.ctx(), c.uid
	switch rest[0] {
	case "collections":
		ts, _, err := store.CollectionTimestamps(ctx, uid)
		if err != nil {
			c.fail(err)
			return
		}
		c.okJSON(ts, len(ts))
	case "collection_counts":
		n, err := store.CollectionCounts(ctx, uid)
		if err != nil {
			c.fail(err)
			return
		}
		c.okJSON(n, len(n))
	case "collection_usage":
		u, err := store.CollectionUsage(ctx, uid)
		if err != nil {
			c.fail(err)
			return
		}
		kb := make(map[string]float64, len(u))
		for k, v := range u {
			kb[k] = float64(v) / 1024
		}
		c.okJSON(kb, len(kb))
	case "quota":
		used, err := store.Usage(ctx, uid)
		if err != nil {
			c.fail(err)
			return
		}
		var quota any // null: no quota
		if q := c.h.s.cfg.QuotaBytes; q > 0 {
			quota = float64(q) / 1024
		}
		c.okJSON([]any{float64(used) / 1024, quota}, -1)
	default:
		writeStatus(c.w, http.StatusNotFound)
	}
}

func (c *call) storage(rest []string) {
	switch len(rest) {
	case 0:
		switch c.r.Method {
		case http.MethodDelete:
			c.deleteStorage()
		case http.MethodPut:
			// server-storage's placeholder: always a bad request.
			writeStatus(c.w, http.StatusBadRequest)
		default:
			c.methodNotAllowed("DELETE")
		}
		return
	case 1, 2:
	default:
		writeStatus(c.w, http.StatusNotFound)
		return
	}
	coll := rest[0]
	if !weave.ValidCollection(coll) {
		writeStatus(c.w, http.StatusNotFound)
		return
	}
	if len(rest) == 2 {
		id := rest[1]
		if !weave.ValidBSOID(id) {
			writeStatus(c.w, http.StatusNotFound)
			return
		}
		switch c.r.Method {
		case http.MethodGet, http.MethodHead:
			c.getItem(coll, id)
		case http.MethodPut:
			c.putItem(coll, id)
		case http.MethodDelete:
			c.deleteItem(coll, id)
		default:
			c.methodNotAllowed("GET, PUT, DELETE")
		}
		return
	}
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		c.getCollection(coll)
	case http.MethodPost, http.MethodPut:
		c.postCollection(coll)
	case http.MethodDelete:
		c.deleteCollection(coll)
	default:
		c.methodNotAllowed("GET, POST, PUT, DELETE")
	}
}

// filter is the parsed query of a collection GET or DELETE.
type filter struct {
	ids                    []string
	newer, older           weave.Timestamp
	indexAbove, indexBelow *int64
	limit, offset          int
	sort                   weave.Sort
	full                   bool
	// parentid/predecessorid (deprecated) select on equality.
	parentID, predecessorID *string
	none                    bool // a value no record can hold: nothing matches
	any                     bool // some filter was given
}

func parseFilter(q url.Values) (filter, error) {
	f := filter{sort: weave.SortNewest}
	bad := errors.New("bad query")
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "ids":
			f.any = true
			for _, id := range strings.Split(v, ",") {
				if id = strings.TrimSpace(id); id == "" {
					continue
				}
				if !weave.ValidBSOID(id) {
					return f, bad
				}
				f.ids = append(f.ids, id)
			}
			if len(f.ids) > maxIDs {
				return f, bad
			}
			if f.ids == nil {
				f.ids = []string{}
			}
		case "newer", "older":
			f.any = true
			t, err := weave.ParseTimestamp(v)
			if err != nil {
				return f, bad
			}
			if k == "newer" {
				f.newer = t
			} else {
				f.older = t
			}
		case "index_above", "index_below":
			f.any = true
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return f, bad
			}
			if k == "index_above" {
				f.indexAbove = &n
			} else {
				f.indexBelow = &n
			}
		case "limit", "offset":
			f.any = true
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return f, bad
			}
			if k == "limit" {
				f.limit = n
			} else {
				f.offset = n
			}
		case "sort":
			f.any = true
			switch v {
			case "oldest":
				f.sort = weave.SortOldest
			case "index":
				f.sort = weave.SortIndex
			}
		case "full":
			f.full = true
		case "parentid", "predecessorid":
			f.any = true
			if !storableID(v) {
				// Not an id any record can have (and one a database
				// might refuse as a parameter).
				f.none = true
			}
			if k == "parentid" {
				f.parentID = &v
			} else {
				f.predecessorID = &v
			}
		}
	}
	if f.limit == 0 {
		f.offset = 0 // offset only counts with a limit
	}
	return f, nil
}

// scan calls fn for each matching record in order, reading the store a
// page at a time, until fn returns false.
func (c *call) scan(coll string, f filter, idsOnly bool, fn func(weave.BSO) bool) error {
	if f.none || (f.ids != nil && len(f.ids) == 0) {
		return nil
	}
	q := weave.Query{IDs: f.ids, Newer: f.newer, Older: f.older, Sort: f.sort, Limit: scanPage,
		IDsOnly:  idsOnly && f.indexAbove == nil && f.indexBelow == nil,
		ParentID: f.parentID, PredecessorID: f.predecessorID}
	skip, left := f.offset, f.limit
	for {
		p, err := c.h.store.GetBSOs(c.ctx(), c.uid, coll, q)
		if err != nil {
			return err
		}
		for _, b := range p.BSOs {
			if f.indexAbove != nil && (b.SortIndex == nil || *b.SortIndex <= *f.indexAbove) {
				continue
			}
			if f.indexBelow != nil && (b.SortIndex == nil || *b.SortIndex >= *f.indexBelow) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if !fn(b) {
				return nil
			}
			if f.limit > 0 {
				if left--; left == 0 {
					return nil
				}
			}
		}
		if p.NextOffset == "" {
			return nil
		}
		q.Offset = p.NextOffset
	}
}

// wbo is a record as 1.1 renders it: parentid and predecessorid only
// when set (server-storage left out the fields a record had no value for),
// next to the id as in server-storage's field list.
type wbo struct {
	ID            string          `json:"id"`
	ParentID      string          `json:"parentid,omitempty"`
	PredecessorID string          `json:"predecessorid,omitempty"`
	Modified      weave.Timestamp `json:"modified"`
	SortIndex     *int64          `json:"sortindex,omitempty"`
	Payload       string          `json:"payload"`
}

func wboOf(b weave.BSO) wbo {
	return wbo{ID: b.ID, ParentID: b.ParentID, PredecessorID: b.PredecessorID, Modified: b.Modified, SortIndex: b.SortIndex, Payload: b.Payload}
}

func (c *call) getItem(coll, id string) {
	b, err := c.h.store.GetBSO(c.ctx(), c.uid, coll, id)
	if err != nil {
		c.fail(err)
		return
	}
	c.h.s.cfg.Observer.RecordsRead(1, int64(len(b.Payload)))
	c.okJSON(wboOf(b), -1)
}

// output formats of a multi-record GET.
const (
	fmtJSON = iota
	fmtNewlines
	fmtWhoisi
)

func outputFormat(accept string) int {
	best, bestQ := fmtJSON, -1.0
	for _, part := range strings.Split(accept, ",") {
		typ, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				q = n
			}
		}
		f := -1
		switch strings.ToLower(strings.TrimSpace(typ)) {
		case "application/json":
			f = fmtJSON
		case "application/newlines":
			f = fmtNewlines
		case "application/whoisi":
			f = fmtWhoisi
		}
		if f >= 0 && q > bestQ {
			best, bestQ = f, q
		}
	}
	return best
}

var contentTypes = [...]string{"application/json", "application/newlines", "application/whoisi"}

// listWriter frames records in the requested format, buffering the
// beginning of the answer so that small answers carry X-Weave-Records.
type listWriter struct {
	c       *call
	format  int
	buf     bytes.Buffer
	n       int
	started bool // headers sent, streaming
	err     error
}

func (lw *listWriter) add(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		lw.err = err
		return false
	}
	switch lw.format {
	case fmtJSON:
		if lw.n == 0 {
			lw.buf.WriteByte('[')
		} else {
			lw.buf.WriteByte(',')
		}
		lw.buf.Write(b)
	case fmtNewlines:
		// json.Marshal escapes newlines inside strings already.
		lw.buf.Write(b)
		lw.buf.WriteByte('\n')
	case fmtWhoisi:
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		lw.buf.Write(n[:])
		lw.buf.Write(b)
	}
	lw.n++
	if lw.buf.Len() >= bufferedOutput {
		lw.flush()
	}
	return lw.err == nil
}

func (lw *listWriter) header(records bool) {
	h := lw.c.w.Header()
	h.Set("Content-Type", contentTypes[lw.format])
	h.Set("X-Weave-Timestamp", lw.c.now.String())
	if records {
		h.Set("X-Weave-Records", strconv.Itoa(lw.n))
	}
	lw.c.w.WriteHeader(http.StatusOK)
}

func (lw *listWriter) flush() {
	if !lw.started {
		lw.header(false)
		lw.started = true
	}
	if _, err := lw.c.w.Write(lw.buf.Bytes()); err != nil {
		lw.err = err
	}
	lw.buf.Reset()
}

func (lw *listWriter) finish() {
	if lw.format == fmtJSON {
		if lw.n == 0 {
			lw.buf.WriteByte('[')
		}
		lw.buf.WriteByte(']')
	}
	if !lw.started {
		lw.header(true)
	}
	lw.c.w.Write(lw.buf.Bytes())
}

func (c *call) getCollection(coll string) {
	f, err := parseFilter(c.r.URL.Query())
	if err != nil {
		writeStatus(c.w, http.StatusBadRequest)
		return
	}
	lw := &listWriter{c: c, format: outputFormat(c.r.Header.Get("Accept"))}
	var bytesRead int64
	err = c.scan(coll, f, !f.full, func(b weave.BSO) bool {
		if f.full {
			bytesRead += int64(len(b.Payload))
			return lw.add(wboOf(b))
		}
		return lw.add(b.ID)
	})
	if err == nil {
		err = lw.err
	}
	if err != nil {
		if !lw.started {
			c.fail(err)
		}
		// Once streaming, a failure can only cut the answer short.
		return
	}
	c.h.s.cfg.Observer.RecordsRead(lw.n, bytesRead)
	lw.finish()
}

// parseWBO reads one record of a PUT or POST body. It returns the reason
// of an invalid record as server-storage words it.
func parseWBO(raw json.RawMessage) (weave.Update, string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return weave.Update{}, "invalid wbo"
	}
	var u weave.Update
	if v, ok := m["id"]; ok {
		var id string
		if json.Unmarshal(v, &id) != nil || !weave.ValidBSOID(id) {
			return u, "invalid id"
		}
		u.ID = id
	}
	if v, ok := m["payload"]; ok && string(v) != "null" {
		var p string
		if json.Unmarshal(v, &p) != nil {
			return u, "invalid payload"
		}
		if len(p) > maxPayload {
			return u, "payload too large"
		}
		u.Payload = weave.Some(p)
	}
	if v, ok := m["sortindex"]; ok && string(v) != "null" {
		n, ok := number(v)
		if !ok || n < weave.MinSortIndex || n > weave.MaxSortIndex {
			return u, "invalid sortindex"
		}
		u.SortIndex = weave.Some(n)
	}
	if v, ok := m["ttl"]; ok && string(v) != "null" {
		n, ok := number(v)
		if !ok || n < 0 || n > maxTTL {
			return u, "invalid ttl"
		}
		u.TTL = weave.Some(n)
	}
	for _, f := range []struct {
		key string
		dst *weave.Optional[string]
	}{{"parentid", &u.ParentID}, {"predecessorid", &u.PredecessorID}} {
		// Deprecated but kept. null is absent (server-storage skipped
		// it); a number counts as its text, as server-storage's str() made
		// it; "" clears.
		v, ok := m[f.key]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			var n json.Number
			if json.Unmarshal(v, &n) != nil {
				return u, "invalid " + f.key
			}
			s = n.String()
		}
		if !storableID(s) {
			return u, "invalid " + f.key
		}
		*f.dst = weave.Some(s)
	}
	return u, ""
}

// storableID reports whether s can be a parentid or predecessorid: at
// most 64 bytes of UTF-8 without NUL, which every database stores.
func storableID(s string) bool {
	return len(s) <= weave.MaxIDLength && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// number reads an integer sent as a JSON number or numeric string (1.1
// coerced both with int()).
func number(v json.RawMessage) (int64, bool) {
	var f float64
	if json.Unmarshal(v, &f) != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0, false
		}
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
			return 0, false
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return 0, false
	}
	return int64(f), true
}

// precondition reads X-If-Unmodified-Since; ok false when it was answered
// (400 for a bad value).
func (c *call) precondition() (weave.Precondition, bool) {
	v := c.r.Header.Get("X-If-Unmodified-Since")
	if v == "" {
		return weave.Precondition{}, true
	}
	t, err := weave.ParseTimestamp(v)
	if err != nil {
		writeStatus(c.w, http.StatusBadRequest)
		return weave.Precondition{}, false
	}
	// Round down to the 10 ms resolution the client saw.
	t -= t % 10
	return weave.Precondition{IfUnmodifiedSince: &t}, true
}

// collectionPrecondition checks X-If-Unmodified-Since against the
// collection, as server-storage did for single-item writes too.
func (c *call) collectionPrecondition(coll string, pre weave.Precondition) bool {
	if pre.IfUnmodifiedSince == nil {
		return true
	}
	m, err := c.h.store.CollectionModified(c.ctx(), c.uid, coll)
	if err == nil {
		err = pre.Check(m)
	}
	if err != nil {
		c.fail(err)
		return false
	}
	return true
}

// quotaLeft returns the bytes left under the quota (math.MaxInt64 without
// one); it answers 400 14 itself when none are.
func (c *call) quotaLeft() (int64, bool) {
	q := c.h.s.cfg.QuotaBytes
	if q <= 0 {
		return math.MaxInt64, true
	}
	used, err := c.h.store.Usage(c.ctx(), c.uid)
	if err != nil {
		c.fail(err)
		return 0, false
	}
	if used >= q {
		writeCode(c.w, codeOverQuota)
		return 0, false
	}
	return q - used, true
}

func (c *call) quotaHeader(left, written int64) {
	if c.h.s.cfg.QuotaBytes > 0 && left-written <= quotaWarnBytes {
		c.w.Header().Set("X-Weave-Quota-Remaining", strconv.FormatFloat(float64(max(left-written, 0))/1024, 'f', -1, 64))
	}
}

func (c *call) putItem(coll, id string) {
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxPayload*2))
	if err != nil {
		writeStatus(c.w, http.StatusRequestEntityTooLarge)
		return
	}
	if !json.Valid(body) {
		writeCode(c.w, codeJSON)
		return
	}
	c.putOne(coll, id, body)
}

// putOne stores one record; the URL's id wins over the body's.
func (c *call) putOne(coll, id string, body json.RawMessage) {
	u, reason := parseWBO(body)
	if reason != "" {
		writeCode(c.w, codeInvalidWBO)
		return
	}
	u.ID = id
	pre, ok := c.precondition()
	if !ok || !c.collectionPrecondition(coll, pre) {
		return
	}
	left, ok := c.quotaLeft()
	if !ok {
		return
	}
	ts, err := c.h.store.PutBSO(c.ctx(), c.uid, coll, u, weave.Precondition{})
	if err != nil {
		c.fail(err)
		return
	}
	n := int64(len(u.Payload.Value))
	c.h.s.cfg.Observer.RecordsWritten(1, n)
	c.quotaHeader(left, n)
	c.ok(ts, []byte(ts.String()))
}

func (c *call) postCollection(coll string) {
	br := bufio.NewReader(http.MaxBytesReader(c.w, c.r.Body, maxRequestBody))
	for {
		b, err := br.Peek(1)
		if err != nil {
			c.bodyError(err)
			return
		}
		if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' {
			br.ReadByte()
			continue
		}
		if b[0] == '{' {
			// One object is a PUT of that object (its id may not hold
			// '/', which the item URL could not carry either).
			c.postSingle(coll, br)
			return
		}
		break
	}
	dec := json.NewDecoder(br)
	tok, err := dec.Token()
	if err != nil {
		c.bodyError(err)
		return
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		writeCode(c.w, codeJSON)
		return
	}
	type result struct {
		Modified weave.Timestamp     `json:"modified"`
		Success  []string            `json:"success"`
		Failed   map[string][]string `json:"failed"`
	}
	res := result{Success: []string{}, Failed: map[string][]string{}}
	var updates []weave.Update
	pos := map[string]int{}
	var total int64
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			c.bodyError(err)
			return
		}
		u, reason := parseWBO(raw)
		if reason == "" && u.ID == "" {
			reason = "invalid id"
		}
		if reason != "" {
			res.Failed[u.ID] = append(res.Failed[u.ID], reason)
			continue
		}
		if i, dup := pos[u.ID]; dup {
			// The later copy wins, as a second write would.
			total -= int64(len(updates[i].Payload.Value))
			updates[i] = u
			total += int64(len(u.Payload.Value))
			continue
		}
		if len(updates) >= batchMaxCount {
			res.Failed[u.ID] = append(res.Failed[u.ID], "retry wbo")
			continue
		}
		if total+int64(len(u.Payload.Value)) >= batchMaxBytes {
			res.Failed[u.ID] = append(res.Failed[u.ID], "retry bytes")
			continue
		}
		pos[u.ID] = len(updates)
		updates = append(updates, u)
		total += int64(len(u.Payload.Value))
	}
	if _, err := dec.Token(); err != nil {
		c.bodyError(err)
		return
	}
	pre, ok := c.precondition()
	if !ok {
		return
	}
	left, ok := c.quotaLeft()
	if !ok {
		return
	}
	res.Modified = c.now
	if len(updates) > 0 {
		ts, err := c.h.store.PostBSOs(c.ctx(), c.uid, coll, updates, pre)
		if err != nil {
			c.fail(err)
			return
		}
		res.Modified = ts
		for _, u := range updates {
			res.Success = append(res.Success, u.ID)
		}
		c.h.s.cfg.Observer.RecordsWritten(len(updates), total)
	}
	c.quotaHeader(left, total)
	b, err := json.Marshal(res)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(res.Modified, b)
}

// postSingle handles a POST whose body is one object.
func (c *call) postSingle(coll string, body io.Reader) {
	b, err := io.ReadAll(io.LimitReader(body, maxPayload*2+1))
	if err != nil {
		c.bodyError(err)
		return
	}
	if len(b) > maxPayload*2 {
		writeStatus(c.w, http.StatusRequestEntityTooLarge)
		return
	}
	if !json.Valid(b) {
		writeCode(c.w, codeJSON)
		return
	}
	u, reason := parseWBO(b)
	if reason != "" || u.ID == "" || strings.Contains(u.ID, "/") {
		writeCode(c.w, codeInvalidWBO)
		return
	}
	c.putOne(coll, u.ID, b)
}

func (c *call) bodyError(err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeStatus(c.w, http.StatusRequestEntityTooLarge)
		return
	}
	writeCode(c.w, codeJSON)
}

func (c *call) deleteItem(coll, id string) {
	pre, ok := c.precondition()
	if !ok || !c.collectionPrecondition(coll, pre) {
		return
	}
	ts, err := c.h.store.DeleteBSO(c.ctx(), c.uid, coll, id, weave.Precondition{})
	if errors.Is(err, weave.ErrNotFound) {
		// server-storage answered 200 for absent items too.
		ts, err = c.now, nil
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(ts, []byte(ts.String()))
}

func (c *call) deleteCollection(coll string) {
	f, err := parseFilter(c.r.URL.Query())
	if err != nil {
		writeStatus(c.w, http.StatusBadRequest)
		return
	}
	pre, ok := c.precondition()
	if !ok {
		return
	}
	store, ctx, uid := c.h.store, c.ctx(), c.uid
	var ts weave.Timestamp
	switch {
	case !f.any:
		ts, err = store.DeleteCollection(ctx, uid, coll, pre)
	default:
		// Every filter applies to DELETE as to GET (server-storage): find
		// the ids, then delete them in chunks.
		ids := f.ids
		if f.none || f.newer != 0 || f.older != 0 || f.indexAbove != nil || f.indexBelow != nil || f.limit > 0 ||
			f.parentID != nil || f.predecessorID != nil {
			ids = nil
			err = c.scan(coll, f, true, func(b weave.BSO) bool {
				ids = append(ids, b.ID)
				return len(ids) < 100000
			})
			if err != nil {
				c.fail(err)
				return
			}
		}
		ts = c.now
		for len(ids) > 0 && err == nil {
			n := min(len(ids), 100)
			var t weave.Timestamp
			t, err = store.DeleteBSOs(ctx, uid, coll, ids[:n], pre)
			ids = ids[n:]
			if err == nil {
				ts = t
				// Later chunks must not fail the precondition on the
				// first chunk's own write.
				pre = weave.Precondition{}
			}
		}
	}
	if err != nil {
		c.fail(err)
		return
	}
	if ts == 0 {
		ts = c.now
	}
	c.ok(ts, []byte(ts.String()))
}

func (c *call) deleteStorage() {
	if c.r.Header.Get("X-Confirm-Delete") == "" {
		writeCode(c.w, codeOverwrite)
		return
	}
	pre, ok := c.precondition()
	if !ok {
		return
	}
	ts, err := c.h.store.DeleteStorage(c.ctx(), c.uid, pre)
	if err != nil {
		c.fail(err)
		return
	}
	if ts == 0 {
		ts = c.now
	}
	c.ok(ts, []byte(ts.String()))
}
