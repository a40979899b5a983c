package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"

	"github.com/weave-sync/weave"
)

// Single-statement reads go straight to the Read pool: one statement is one
// snapshot on every database, and a transaction would only add round trips.

// LastModified implements weave.Store.
func (s *Store) LastModified(ctx context.Context, uid int64) (weave.Timestamp, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	defer s.rs.flush(ctx)
	var ts weave.Timestamp
	var newest sql.NullInt64
	err := s.rs.queryRow(ctx, s.q.lastModified, uid).Scan(&ts, &newest)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return storageTimestamp(ts, newest), s.db.Classify(err)
}

// CollectionTimestamps implements weave.Store.
func (s *Store) CollectionTimestamps(ctx context.Context, uid int64) (map[string]weave.Timestamp, weave.Timestamp, error) {
	var buf [16]weave.CollectionTimestamp
	colls, storage, err := s.AppendCollectionTimestamps(ctx, uid, buf[:0])
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string]weave.Timestamp, len(colls))
	for _, c := range colls {
		out[c.Name] = c.Modified
	}
	return out, storage, nil
}

// AppendCollectionTimestamps implements weave.CollectionTimestampsAppender.
func (s *Store) AppendCollectionTimestamps(ctx context.Context, uid int64, dst []weave.CollectionTimestamp) ([]weave.CollectionTimestamp, weave.Timestamp, error) {
	var buf [16]collectionValue
	u := any(uid) // boxed once: an int64 above 255 costs an allocation each time
	rows, err := s.perCollectionRows(ctx, buf[:0], s.q.collectionTimestamps, u, u)
	if err != nil {
		return dst, 0, err
	}
	var storage weave.Timestamp
	for _, r := range rows {
		// Collection id 0 carries the storage row's timestamp; the storage
		// timestamp is the newest of all (see storageTimestamp).
		storage = max(storage, weave.Timestamp(r.v))
		if r.cid == 0 {
			continue
		}
		name, err := s.collectionName(ctx, r.cid)
		if err != nil {
			return dst, 0, err
		}
		dst = append(dst, weave.CollectionTimestamp{Name: name, Modified: weave.Timestamp(r.v)})
	}
	return dst, storage, nil
}

// CollectionCounts implements weave.Store.
func (s *Store) CollectionCounts(ctx context.Context, uid int64) (map[string]int64, error) {
	return s.perCollection(ctx, s.q.collectionCounts, uid)
}

// CollectionUsage implements weave.Store.
func (s *Store) CollectionUsage(ctx context.Context, uid int64) (map[string]int64, error) {
	return s.perCollection(ctx, s.q.collectionUsage, uid)
}

func (s *Store) perCollection(ctx context.Context, query string, uid int64) (map[string]int64, error) {
	rows, err := s.perCollectionRows(ctx, nil, query, uid, s.nowMs())
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		name, err := s.collectionName(ctx, r.cid)
		if err != nil {
			return nil, err
		}
		out[name] = r.v
	}
	return out, nil
}

type collectionValue struct{ cid, v int64 }

// perCollectionRows appends to out the (collection id, value) rows of
// query (out may be a caller's array on the stack). Names are looked up
// after the rows are closed, so that a lookup never needs a second
// connection while the first is held.
func (s *Store) perCollectionRows(ctx context.Context, out []collectionValue, query string, args ...any) ([]collectionValue, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.db.Classify(err)
	}
	if s.lane != nil {
		// On a lane connection the statement runs without ctx (see
		// readLane); taking the connection is what may wait, within the
		// Timeout.
		lc, err := s.lane.get(ctx)
		if err != nil {
			return nil, s.db.Classify(err)
		}
		if lc != nil {
			out, err := lc.read(ctx, query, args, out)
			s.lane.put(lc, err)
			return out, s.db.Classify(err)
		}
	}
	qctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	defer s.rs.flush(qctx)
	rows, err := s.rs.query(qctx, query, args...)
	if err != nil {
		return nil, s.db.Classify(err)
	}
	defer rows.Close()
	// One variable for every row: Scan's pointers make it escape, and a
	// fresh one per row would be an allocation each.
	var cid, v intColumn
	for rows.Next() {
		if err := rows.Scan(&cid, &v); err != nil {
			return nil, s.db.Classify(err)
		}
		out = append(out, collectionValue{cid.v, v.v})
	}
	return out, s.db.Classify(rows.Err())
}

// Usage implements weave.Store.
func (s *Store) Usage(ctx context.Context, uid int64) (int64, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	defer s.rs.flush(ctx)
	var n int64
	err := s.rs.queryRow(ctx, s.q.usage, uid, s.nowMs()).Scan(&n)
	return n, s.db.Classify(err)
}

// CollectionModified implements weave.Store.
func (s *Store) CollectionModified(ctx context.Context, uid int64, collection string) (weave.Timestamp, error) {
	cid, ok, err := s.collectionID(ctx, collection, false)
	if err != nil || !ok {
		return 0, err
	}
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	defer s.rs.flush(ctx)
	var ts weave.Timestamp
	err = s.rs.queryRow(ctx, s.q.collectionModified, uid, cid).Scan(&ts)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return ts, s.db.Classify(err)
}

// GetBSO implements weave.Store.
func (s *Store) GetBSO(ctx context.Context, uid int64, collection, id string) (weave.BSO, error) {
	cid, ok, err := s.collectionID(ctx, collection, false)
	if err != nil {
		return weave.BSO{}, err
	}
	if !ok {
		return weave.BSO{}, weave.ErrNotFound
	}
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	defer s.rs.flush(ctx)
	b := weave.BSO{ID: id}
	var si sql.NullInt64
	var modified, expiry int64
	var parent, pred sql.NullString
	err = s.rs.queryRow(ctx, s.q.getBSO, uid, cid, id, s.nowMs()).Scan(&modified, &si, &b.Payload, &expiry, &parent, &pred)
	if errors.Is(err, sql.ErrNoRows) {
		return weave.BSO{}, weave.ErrNotFound
	}
	if err != nil {
		return weave.BSO{}, s.db.Classify(err)
	}
	if si.Valid {
		b.SortIndex = &si.Int64
	}
	b.Modified = weave.Timestamp(modified)
	b.Expires = expiresOf(expiry)
	b.ParentID, b.PredecessorID = parent.String, pred.String
	return b, nil
}

func expiresOf(expiry int64) weave.Timestamp {
	if expiry == neverExpires {
		return 0
	}
	return weave.Timestamp(expiry)
}

// Sort orders, each with a tie-break on id so that paging is exact:
//
//	newest: modified DESC, id DESC
//	oldest: modified ASC, id ASC
//	index:  sortindex DESC (records without one last), id DESC
//
// An offset is a keyset position (the sort key and id of the last record
// returned), so later pages neither skip nor repeat records even when
// several share a modified time.
type order struct {
	key     string // the SQL sort key
	orderBy string
	after   string // keyset condition: (key, id) past the offset; its
	// leading bound on the key alone lets every planner start the index
	// range at the offset instead of filtering from the first record (a
	// deep page would otherwise read every record before it)
}

// noSortIndex orders records without a sortindex after every real one.
const noSortIndex = weave.MinSortIndex - 1

var orders = [...]order{
	weave.SortNewest: {"modified", "modified DESC, id DESC", "modified <= ? AND (modified < ? OR (modified = ? AND id < ?))"},
	weave.SortOldest: {"modified", "modified ASC, id ASC", "modified >= ? AND (modified > ? OR (modified = ? AND id > ?))"},
	weave.SortIndex: {"COALESCE(sortindex, -1000000000)",
		"COALESCE(sortindex, -1000000000) DESC, id DESC",
		"COALESCE(sortindex, -1000000000) <= ? AND (COALESCE(sortindex, -1000000000) < ? OR (COALESCE(sortindex, -1000000000) = ? AND id < ?))"},
}

// readKey identifies the text of a GetBSOs statement without an ids list.
type readKey struct {
	sort                                 weave.Sort
	newer, older, offset, limit, idsOnly bool
	parent, predecessor, lean            bool
	// count: COUNT(*) instead of the records (no order, no limit); skip:
	// an OFFSET after the LIMIT (see countBSOs).
	count, skip bool
	// header: the collection's timestamp comes as a row of its own before
	// the records (UNION ALL) instead of as a column of each record, so a
	// read that matches no record still gets it from the same statement
	// (MySQL: one round trip instead of two or three; see GetBSOs).
	header bool
}

func (s *Store) readText(k readKey, nIDs int) string {
	if nIDs == 0 {
		if t, ok := s.texts.Load(k); ok {
			return t.(string)
		}
	}
	o := orders[k.sort]
	var b strings.Builder
	// The collection's timestamp rides along as the first column: one
	// statement reads it and the records from one snapshot (the subquery
	// is evaluated once, and leaves the records' index order alone).
	if k.header {
		// Or as a first row of its own, marked by the timestamp column
		// being the only non-NULL one there and NULL in every record row;
		// the other columns are placeholders of the records' types. Both
		// parts are one statement, so one snapshot; MariaDB and MySQL run
		// the parts of a UNION ALL in order and stream them, the records
		// in their ORDER BY (which needs a LIMIT there, see below; scanBSOs
		// does not depend on where the header row comes).
		b.WriteString("(SELECT modified AS collection_modified, '' AS id, 0 AS modified, NULL AS sortindex")
		if !k.lean {
			b.WriteString(", 0 AS expiry, NULL AS parentid, NULL AS predecessorid")
		}
		if !k.idsOnly {
			b.WriteString(", '' AS payload")
		}
		b.WriteString(" FROM user_collections WHERE uid = ? AND collection_id = ?) UNION ALL (SELECT NULL, ")
	} else {
		b.WriteString("SELECT (SELECT modified FROM user_collections WHERE uid = ? AND collection_id = ?) AS collection_modified, ")
	}
	switch {
	case k.count:
		b.WriteString("COUNT(*)")
	default:
		b.WriteString("id, modified, sortindex")
		if !k.lean {
			b.WriteString(", expiry, parentid, predecessorid")
		}
		if !k.idsOnly {
			b.WriteString(", payload")
		}
	}
	b.WriteString(" FROM bsos WHERE uid = ? AND collection_id = ? AND expiry > ?")
	if k.newer {
		b.WriteString(" AND modified > ?")
	}
	if k.older {
		b.WriteString(" AND modified < ?")
	}
	if k.parent {
		b.WriteString(" AND parentid = ?")
	}
	if k.predecessor {
		b.WriteString(" AND predecessorid = ?")
	}
	if nIDs > 0 {
		b.WriteString(" AND id IN ")
		repeatTuple(&b, nIDs, 1)
	}
	if k.offset {
		b.WriteString(" AND ")
		b.WriteString(o.after)
	}
	if !k.count {
		b.WriteString(" ORDER BY ")
		b.WriteString(o.orderBy)
	}
	if k.limit {
		b.WriteString(" LIMIT ?")
	} else if k.header && !k.count {
		// MariaDB drops the ORDER BY of a UNION part that has no LIMIT:
		// a LIMIT no collection reaches keeps it (the largest bigint:
		// PostgreSQL's LIMIT takes no larger one).
		b.WriteString(" LIMIT 9223372036854775807")
	}
	if k.skip {
		b.WriteString(" OFFSET ?")
	}
	if k.header {
		b.WriteString(")")
	}
	t := s.db.Q(b.String())
	if nIDs == 0 {
		s.texts.Store(k, t)
	}
	return t
}

// GetBSOs implements weave.Store.
func (s *Store) GetBSOs(ctx context.Context, uid int64, collection string, q weave.Query) (weave.Page, error) {
	var out []weave.BSO
	if q.Limit > 0 && q.Limit < math.MaxInt32 {
		out = make([]weave.BSO, 0, min(q.Limit, 1000))
	}
	// Sort indexes are handed out from blocks rather than one allocation
	// per record.
	var block []int64
	page, err := s.readBSOs(ctx, uid, collection, q, func(b *weave.BSO) error {
		if b.SortIndex != nil {
			if len(block) == 0 {
				block = make([]int64, 64)
			}
			block[0] = *b.SortIndex
			b.SortIndex = &block[0]
			block = block[1:]
		}
		out = append(out, *b)
		return nil
	})
	if err != nil {
		return weave.Page{}, err
	}
	if out == nil {
		out = []weave.BSO{}
	}
	page.BSOs = out
	return page, nil
}

// StreamBSOs implements weave.BSOStreamer.
func (s *Store) StreamBSOs(ctx context.Context, uid int64, collection string, q weave.Query, fn func(*weave.BSO) error) (weave.Page, error) {
	// fn's error goes back as is, not classified as a database error.
	var fnErr error
	page, err := s.readBSOs(ctx, uid, collection, q, func(b *weave.BSO) error {
		fnErr = fn(b)
		return fnErr
	})
	if fnErr != nil {
		return weave.Page{}, fnErr
	}
	return page, err
}

// readBSOs reads a page of a collection, handing each record to emit as
// it is scanned.
func (s *Store) readBSOs(ctx context.Context, uid int64, collection string, q weave.Query, emit func(*weave.BSO) error) (weave.Page, error) {
	if q.Sort < weave.SortNewest || q.Sort > weave.SortIndex {
		q.Sort = weave.SortNewest
	}
	if q.Limit >= math.MaxInt32 {
		q.Limit = 0 // as good as unlimited, and Limit+1 must not overflow
	}
	if q.Offset == weave.StartOffset {
		q.Offset = ""
	}
	var off offset
	if q.Offset != "" {
		var err error
		if off, err = decodeOffset(q.Offset, q); err != nil {
			return weave.Page{}, err
		}
	}
	var page weave.Page
	cid, ok, err := s.collectionID(ctx, collection, false)
	if err != nil || !ok {
		return page, err
	}
	if q.IDs != nil && len(q.IDs) == 0 {
		// An empty ids list selects nothing, but the page still carries
		// the collection's timestamp.
		ts, err := s.CollectionModified(ctx, uid, collection)
		page.Modified = ts
		return page, err
	}

	k := readKey{sort: q.Sort, newer: q.Newer > 0, older: q.Older > 0, offset: q.Offset != "", limit: q.Limit > 0, idsOnly: q.IDsOnly,
		parent: q.ParentID != nil, predecessor: q.PredecessorID != nil, lean: q.Lean, header: s.timestampRow}
	args := readArgs(k, q, off, uid, cid, s.nowMs())
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	defer s.rs.flush(ctx)
	if q.CountOnly {
		return s.countBSOs(ctx, k, q, args)
	}
	query := s.readText(k, len(q.IDs))
	if k.limit {
		// One more than asked tells whether there is a next page.
		args = append(args, q.Limit+1)
	}

	var res scanResult // of the last statement
	read := func() error {
		return s.queryRows(ctx, query, len(q.IDs) == 0, args, func(rows *sql.Rows) (err error) {
			res, err = scanBSOs(rows, q, k.header, emit)
			return err
		})
	}
	if err := read(); err != nil {
		return weave.Page{}, err
	}
	page.Modified = res.modified
	// With the header row the statement gave the timestamp of the same
	// snapshot as the (absent) records: 0 when the collection has no row.
	if res.n == 0 && !k.header {
		// No row, so no timestamp: read it now, then decide. A timestamp
		// read after the records could be newer than records the read
		// missed, and a client trusting it would skip them (data loss); so
		// an empty page keeps a later timestamp only where no record can
		// hide behind it: when the collection is gone, or is no newer than
		// what the client asked to be newer than. Otherwise the records are
		// read again after the timestamp (nothing was emitted yet).
		ts, err := s.CollectionModified(ctx, uid, collection)
		if err != nil {
			return weave.Page{}, err
		}
		if ts != 0 && (q.Newer == 0 || ts > q.Newer) {
			if err := read(); err != nil {
				return weave.Page{}, err
			}
			page.Modified = res.modified
		}
		if res.n == 0 {
			page.Modified = ts
		}
	}
	if res.full {
		last := weave.BSO{ID: res.lastID, Modified: res.lastModified}
		if res.lastHasSortIndex {
			last.SortIndex = &res.lastSortIndex
		}
		page.NextOffset = encodeOffset(q.Sort, &last)
	}
	return page, nil
}

// readArgs are the arguments of a GetBSOs statement up to its LIMIT.
func readArgs(k readKey, q weave.Query, off offset, uid, cid, now int64) []any {
	args := make([]any, 0, 14+len(q.IDs))
	args = append(args, uid, cid, uid, cid, now)
	if k.newer {
		args = append(args, int64(q.Newer))
	}
	if k.older {
		args = append(args, int64(q.Older))
	}
	if k.parent {
		args = append(args, *q.ParentID)
	}
	if k.predecessor {
		args = append(args, *q.PredecessorID)
	}
	for _, id := range q.IDs {
		args = append(args, id)
	}
	if k.offset {
		args = append(args, off.key, off.key, off.key, off.id)
	}
	return args
}

// countBSOs answers a CountOnly read, each figure with the collection
// timestamp of the same statement. With a limit, the Limit-th record and
// the one after it are read first (LIMIT 2 OFFSET Limit-1): both there
// means more than Limit records match, and the first gives the next
// offset. Otherwise, and without a limit, COUNT(*) counts them. Neither
// statement takes a record's id or payload out of the database.
func (s *Store) countBSOs(ctx context.Context, k readKey, q weave.Query, args []any) (weave.Page, error) {
	k.idsOnly, k.lean, k.header = true, true, false
	if k.limit {
		sk := k
		sk.skip = true
		sargs := append(args[:len(args):len(args)], 2, q.Limit-1)
		edge := make([]weave.BSO, 0, 2)
		var ts weave.Timestamp
		err := s.queryRows(ctx, s.readText(sk, len(q.IDs)), len(q.IDs) == 0, sargs, func(rows *sql.Rows) error {
			res, err := scanBSOs(rows, weave.Query{IDsOnly: true, Lean: true}, false, func(b *weave.BSO) error {
				if b.SortIndex != nil {
					// scanBSOs reuses the variable it points at.
					si := *b.SortIndex
					b.SortIndex = &si
				}
				edge = append(edge, *b)
				return nil
			})
			ts = res.modified
			return err
		})
		if err != nil {
			return weave.Page{}, err
		}
		switch len(edge) {
		case 2:
			return weave.Page{Count: q.Limit, Modified: ts, NextOffset: encodeOffset(q.Sort, &edge[0])}, nil
		case 1:
			return weave.Page{Count: q.Limit, Modified: ts}, nil
		}
	}
	// Fewer than Limit records (at the time of the statement above), so
	// the count needs no bound.
	k.count, k.limit = true, false
	var n int64
	var ts sql.NullInt64
	err := s.queryRows(ctx, s.readText(k, len(q.IDs)), len(q.IDs) == 0, args, func(rows *sql.Rows) error {
		if !rows.Next() {
			return rows.Err()
		}
		return rows.Scan(&ts, &n)
	})
	if err != nil {
		return weave.Page{}, err
	}
	return weave.Page{Count: int(n), Modified: weave.Timestamp(ts.Int64)}, nil
}

// queryRows runs a read statement and hands its rows to scan; prepared
// statements serve the texts without an ids list, which repeat.
func (s *Store) queryRows(ctx context.Context, query string, prepared bool, args []any, scan func(*sql.Rows) error) error {
	var rows *sql.Rows
	var err error
	if prepared {
		rows, err = s.rs.query(ctx, query, args...)
	} else {
		rows, err = s.db.Read.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return s.db.Classify(err)
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return s.db.Classify(err)
	}
	return s.db.Classify(rows.Err())
}

// scanResult is what scanBSOs tells beyond the records it emitted.
type scanResult struct {
	n        int             // records emitted
	modified weave.Timestamp // the collection's timestamp the rows carry
	full     bool            // more records match than were emitted
	// The last record emitted's sort keys and id, for the next offset.
	lastID           string
	lastModified     weave.Timestamp
	lastSortIndex    int64
	lastHasSortIndex bool
}

// scanBSOs hands the records of a GetBSOs statement's rows to emit, and
// finds the collection timestamp they carry (with header, in a row of its
// own, the one whose timestamp column is not NULL). It stops at the first
// record past q.Limit, or past the q.MaxBytes budget, and reports full:
// more records match. emit gets one BSO reused for every row, its
// SortIndex pointing at a variable reused too.
func scanBSOs(rows *sql.Rows, q weave.Query, header bool, emit func(*weave.BSO) error) (res scanResult, _ error) {
	var (
		b                                weave.BSO
		collection, modified, si, expiry intColumn
		parent, pred                     sql.NullString
		sortIndex                        int64
	)
	dest := []any{&collection, &b.ID, &modified, &si, &expiry, &parent, &pred, &b.Payload}
	if q.Lean {
		// Without the Sync 1.1 columns (readText).
		dest = append(dest[:4], &b.Payload)
	}
	if q.IDsOnly {
		dest = dest[:len(dest)-1]
	}
	size := 0
	var ts int64
	seen := false // the header row
	for rows.Next() {
		past := (q.MaxBytes > 0 && size >= q.MaxBytes && res.n > 0) || (q.Limit > 0 && res.n >= q.Limit)
		if past && (!header || seen) {
			// This row is past the page: leave it, and the rest, unread.
			res.modified, res.full = weave.Timestamp(ts), true
			return res, nil
		}
		b = weave.BSO{}
		if err := rows.Scan(dest...); err != nil {
			return scanResult{}, err
		}
		if collection.valid {
			ts = collection.v
		}
		if header && collection.valid {
			seen = true
			if past {
				res.modified = weave.Timestamp(ts)
				return res, nil
			}
			continue
		}
		if past {
			res.full = true
			continue // looking for a header that came late
		}
		size += len(b.ID) + len(b.Payload)
		if si.valid {
			sortIndex = si.v
			b.SortIndex = &sortIndex
		}
		b.Modified = weave.Timestamp(modified.v)
		b.Expires = expiresOf(expiry.v)
		b.ParentID, b.PredecessorID = parent.String, pred.String
		res.lastID, res.lastModified = b.ID, b.Modified
		res.lastSortIndex, res.lastHasSortIndex = sortIndex, si.valid
		if err := emit(&b); err != nil {
			return scanResult{}, err
		}
		res.n++
	}
	res.modified = weave.Timestamp(ts)
	return res, rows.Err()
}

// intColumn scans an integer column, NULL as not valid. database/sql
// hands a Scanner the driver's value as is, where scanning an int64 into
// an *int64 or a sql.NullInt64 goes through reflection: with several
// integer columns per record, that was a tenth of a large read's CPU.
type intColumn struct {
	v     int64
	valid bool
}

func (c *intColumn) Scan(src any) error {
	switch x := src.(type) {
	case int64:
		c.v, c.valid = x, true
		return nil
	case nil:
		c.v, c.valid = 0, false
		return nil
	}
	// Whatever else a driver gives (text digits from MySQL's text
	// protocol, say) converts as it always did.
	var n sql.NullInt64
	err := n.Scan(src)
	c.v, c.valid = n.Int64, n.Valid
	return err
}
