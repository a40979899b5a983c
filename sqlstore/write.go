package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/weave-sync/weave"
)

// maxRows bounds the rows of one multi-row statement, far below every
// database's placeholder limit (SQLite 32766, MySQL and PostgreSQL 65535).
const maxRows = 200

// shape says which fields of an Update are present: the columns an upsert
// may overwrite on an existing row. Updates of one shape share a statement.
type shape uint8

const (
	hasPayload shape = 1 << iota
	hasSortIndex
	hasTTL
	// The Sync 1.1 fields; batches (1.5 only) never stage them.
	hasParentID
	hasPredecessorID
	fullShape = hasPayload | hasSortIndex | hasTTL | hasParentID | hasPredecessorID
)

func shapeOf(u *weave.Update) shape {
	var sh shape
	if u.Payload.Set {
		sh |= hasPayload
	}
	if u.SortIndex.Set {
		sh |= hasSortIndex
	}
	if u.TTL.Set {
		sh |= hasTTL
	}
	if u.ParentID.Set {
		sh |= hasParentID
	}
	if u.PredecessorID.Set {
		sh |= hasPredecessorID
	}
	return sh
}

// bsoFields are the bsos columns an update writes, by the field that sets
// them, expiry last (see upsertSet). Only a payload changes the record's
// modified time (spec §18 #10).
var bsoFields = []struct {
	field   shape
	columns []string
}{
	{hasPayload, []string{"payload", "payload_size", "modified"}},
	{hasSortIndex, []string{"sortindex"}},
	{hasParentID, []string{"parentid"}},
	{hasPredecessorID, []string{"predecessorid"}},
	{hasTTL, []string{"expiry"}},
}

// upsertSet is the upsert's assignments to an existing record for an update
// of this shape: the fields the update sets are overwritten; the others are
// kept, unless the record has expired: an expired record must read as a
// new one, so it takes the new record's defaults the INSERT brought for
// them. Each kept column compares the record's expiry with now (one
// parameter each, reviveCount of them), and expiry comes last so that on
// MySQL the comparisons read the old value.
func (sh shape) upsertSet(d Dialect) []string {
	var set []string
	for _, f := range bsoFields {
		for _, c := range f.columns {
			if sh&f.field != 0 {
				set = append(set, c+" = "+d.Inserted(c))
			} else {
				set = append(set, c+" = CASE WHEN bsos.expiry > ? THEN bsos."+c+" ELSE "+d.Inserted(c)+" END")
			}
		}
	}
	return set
}

// reviveCount is how many kept columns upsertSet writes for this shape.
func (sh shape) reviveCount() int {
	n := 0
	for _, f := range bsoFields {
		if sh&f.field == 0 {
			n += len(f.columns)
		}
	}
	return n
}

func (sh shape) stagedColumns() []string {
	var cols []string
	if sh&hasPayload != 0 {
		cols = append(cols, "payload", "payload_size", "payload_set")
	}
	if sh&hasSortIndex != 0 {
		cols = append(cols, "sortindex", "sortindex_set")
	}
	if sh&hasTTL != 0 {
		cols = append(cols, "ttl", "ttl_set")
	}
	return cols
}

// mergeUpdates folds updates of the same id into one, later fields winning,
// which is what applying them one after the other does. Statements must
// not touch a row twice (PostgreSQL refuses).
func mergeUpdates(us []weave.Update) []weave.Update {
	if len(us) < 2 {
		return us
	}
	seen := make(map[string]int, len(us))
	var out []weave.Update
	for i := range us {
		j, dup := seen[us[i].ID]
		if !dup {
			seen[us[i].ID] = i
			continue
		}
		if out == nil {
			out = make([]weave.Update, len(us))
			copy(out, us)
		}
		mergeInto(&out[j], &us[i])
		out[i].ID = "" // marks a merged-away entry
	}
	if out == nil {
		return us
	}
	n := 0
	for i := range out {
		if out[i].ID != "" {
			out[n] = out[i]
			n++
		}
	}
	return out[:n]
}

func mergeInto(dst, src *weave.Update) {
	if src.Payload.Set {
		dst.Payload = src.Payload
	}
	if src.SortIndex.Set {
		dst.SortIndex = src.SortIndex
	}
	if src.TTL.Set {
		dst.TTL = src.TTL
	}
	if src.ParentID.Set {
		dst.ParentID = src.ParentID
	}
	if src.PredecessorID.Set {
		dst.PredecessorID = src.PredecessorID
	}
}

// wtx is one attempt of a write transaction, after its user row is locked.
type wtx struct {
	s   *Store
	tx  *sql.Tx
	ctx context.Context
	uid int64
	// storage is the user's storage timestamp before this write.
	storage weave.Timestamp
	// cid is the collection the write is about (0 for none) and
	// collection its timestamp before this write, 0 if absent: read with
	// the lock, so preconditions cost no statement of their own.
	cid        int64
	collection weave.Timestamp
	// t is this write's timestamp T.
	t weave.Timestamp
	// now is the wall clock in ms that expiries compare with.
	now int64
	// clock is now on the 10 ms grid: what TTLs count from.
	clock weave.Timestamp
}

type mayDeferKey struct{}

// MayDefer reports whether an Exec run with ctx is one whose result its
// caller does not read, inside a transaction that ends with a COMMIT or
// ROLLBACK through database/sql: a driver may then hold it back and send
// it with the transaction's next statement, or its COMMIT, one round trip
// for several. Its error, if any, then comes from that later call, and
// fails the transaction as it would have. Write transactions of Store
// (wtx) run all their Execs so (DeferExecs).
func MayDefer(ctx context.Context) bool {
	v, _ := ctx.Value(mayDeferKey{}).(bool)
	return v
}

// DeferExecs marks ctx for Execs whose results are not read (MayDefer).
func DeferExecs(ctx context.Context) context.Context {
	return context.WithValue(ctx, mayDeferKey{}, true)
}

// OutlivesTx reports whether ctx, the context of a statement inside a
// transaction, may outlive txCtx, the transaction's own: a driver that
// sends the transaction's BEGIN with that statement then binds it to both
// (BindToTx). sqlstore runs a transaction's statements with its context,
// or one derived from it only by values, whose Done is the same.
func OutlivesTx(ctx, txCtx context.Context) bool {
	return txCtx.Done() != nil && ctx.Done() != txCtx.Done()
}

// BindToTx is ctx, ended also when txCtx ends, with the same error (a
// deadline that passed is what makes a write answer 503).
func BindToTx(ctx, txCtx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if dl, ok := txCtx.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, dl)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	stop := context.AfterFunc(txCtx, func() {
		if !errors.Is(txCtx.Err(), context.DeadlineExceeded) {
			cancel() // its deadline is ctx's own
		}
	})
	return ctx, func() { stop(); cancel() }
}

type nextQueryKey struct{}

type nextQuery struct {
	query string
	args  []any
}

// ThenQuery marks ctx for a query inside a transaction that, unless it
// fails, the caller follows at once with query and args: a read whose
// arguments do not depend on the first query's result. A driver may send
// both in one round trip and answer the second from what it got; when the
// caller then runs something else instead (the first matched nothing),
// that read ran for nothing, which is harmless for a read. Store's write
// lock runs the locked state so (NextQuery) where it is a second
// statement (Dialect.LockingJoins).
func ThenQuery(ctx context.Context, query string, args ...any) context.Context {
	return context.WithValue(ctx, nextQueryKey{}, nextQuery{query, args})
}

// NextQuery reports the query that ThenQuery marked ctx with.
func NextQuery(ctx context.Context) (query string, args []any, ok bool) {
	n, ok := ctx.Value(nextQueryKey{}).(nextQuery)
	return n.query, n.args, ok
}

// errNoUser ends a write early when the user has no storage row and the
// write does not create one.
var errNoUser = errors.New("sqlstore: no such user")

// write runs fn in one write transaction that first locks the user's
// storage row (creating it when create is set; otherwise a missing user
// ends the write with errNoUser), refuses users being moved away, reads the
// timestamp of collection cid, and picks the write's timestamp:
// T = max(now truncated to 10 ms, storage timestamp + 10 ms), so timestamps
// strictly increase per user without conflicts.
//
// T does not run ahead of the clock: when the user's previous write took
// the current 10 ms tick, the write lets its transaction go and waits for
// the next tick (back-to-back writes would otherwise push T, and every
// X-Weave-Timestamp, further ahead with each write). Only a clock that went
// back or stands still, or writers racing for the same tick, leave T ahead.
func (s *Store) write(ctx context.Context, uid, cid int64, create bool, fn func(w *wtx) error) error {
	defer s.ws.flush(ctx)
	for attempt := 0; ; attempt++ {
		var wait time.Duration
		err := s.db.GroupWriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			// No write reads the result of an Exec (see MayDefer).
			ctx = DeferExecs(ctx)
			w := &wtx{s: s, tx: tx, ctx: ctx, uid: uid, cid: cid}
			move, err := w.lock()
			if errors.Is(err, sql.ErrNoRows) {
				if !create {
					return errNoUser
				}
				// Insert-or-keep then lock: of two first writes of a user, the
				// second waits for the first instead of failing on the key.
				if _, err = w.exec(s.q.insertUser, uid); err != nil {
					return err
				}
				move, err = w.lock()
			}
			if err != nil {
				return err
			}
			if err := checkMove(move); err != nil { // migrate_user.go
				return err
			}
			now := s.now()
			w.now = now.UnixMilli()
			w.clock = weave.TimestampAt(now)
			// Rounding keeps T on the 10 ms grid even if imported data is not.
			next := w.storage - w.storage%10 + 10
			if next > w.clock && next-w.clock <= 10 && attempt < maxClockWaits {
				wait = time.Duration(int64(next)-w.now) * time.Millisecond
				return errWaitTick
			}
			w.t = max(w.clock, next)
			return fn(w)
		})
		if !errors.Is(err, errWaitTick) {
			return err
		}
		select {
		case <-ctx.Done():
			return s.db.Classify(ctx.Err())
		case <-time.After(wait):
		}
	}
}

// maxClockWaits bounds how often one write waits for the next tick: a
// clock that stands still must not stall writes.
const maxClockWaits = 3

// errWaitTick ends a write's transaction to wait for the next tick.
var errWaitTick = errors.New("sqlstore: waiting for the next 10 ms tick")

// lock locks the user's storage row and reads, as of after the lock, the
// storage and collection timestamps and the user's move state ("" for
// none). Where a locking read over a join sees the newest rows of every
// table (Dialect.LockingJoins) that is one statement; elsewhere the joined
// values are read by a second statement, whose snapshot comes after the
// lock.
func (w *wtx) lock() (move string, err error) {
	var state sql.NullString
	var newest, coll sql.NullInt64
	if w.s.db.Dialect.LockingJoins() {
		err = w.queryRow(w.s.q.lockUserJoined, w.cid, w.uid).Scan(&w.storage, &newest, &state, &coll)
	} else {
		// The locked state's statement may go with the lock's (ThenQuery).
		ctx := ThenQuery(w.ctx, w.s.q.lockedUserState, w.uid, w.uid, w.uid, w.cid)
		err = w.s.ws.txQueryRow(ctx, w.tx, w.s.q.lockUser, w.uid).Scan(&w.storage)
		if err == nil {
			err = w.queryRow(w.s.q.lockedUserState, w.uid, w.uid, w.uid, w.cid).Scan(&newest, &state, &coll)
		}
	}
	w.storage = storageTimestamp(w.storage, newest)
	w.collection = weave.Timestamp(coll.Int64)
	return state.String, err
}

// storageTimestamp is a user's storage timestamp: the newest of the
// user_storage row's and the collections'. Writes that stamp a collection
// leave the row alone (one statement less per write); writes that remove
// collections set the row, so that the timestamp never goes back.
func storageTimestamp(row weave.Timestamp, newestCollection sql.NullInt64) weave.Timestamp {
	return max(row, weave.Timestamp(newestCollection.Int64))
}

// exec runs a statement, prepared when the store caches it.
func (w *wtx) exec(query string, args ...any) (sql.Result, error) {
	return w.s.ws.txExec(w.ctx, w.tx, query, args...)
}

// execOnce runs a statement of a rarely recurring text, never prepared.
func (w *wtx) execOnce(query string, args ...any) (sql.Result, error) {
	return w.tx.ExecContext(w.ctx, query, args...)
}

// execN runs a statement generated for n rows.
func (w *wtx) execN(n int, query string, args ...any) (sql.Result, error) {
	if cacheable(n) {
		return w.exec(query, args...)
	}
	return w.execOnce(query, args...)
}

func (w *wtx) queryRow(query string, args ...any) *sql.Row {
	return w.s.ws.txQueryRow(w.ctx, w.tx, query, args...)
}

// checkCollection evaluates a precondition against the write's collection.
func (w *wtx) checkCollection(pre weave.Precondition) error {
	if pre.IfUnmodifiedSince == nil {
		return nil
	}
	return pre.Check(w.collection)
}

// checkQuota enforces a write's quota (weave.Quota). Writes to live
// records call it after their changes; staging calls it before, with the
// payload bytes it is about to stage. The usage is read under the user's
// lock, so it counts every earlier write of the user and no later one.
func (w *wtx) checkQuota(q *weave.Quota, staged int64) error {
	if q == nil || q.Bytes <= 0 {
		return nil
	}
	var used int64
	if err := w.queryRow(w.s.q.usage, w.uid, w.now).Scan(&used); err != nil {
		return err
	}
	q.Left = q.Bytes - used - staged
	if q.Left <= 0 {
		return &weave.OverQuotaError{Left: q.Left}
	}
	return nil
}

// payloadBytes sums the payload bytes that updates bring.
func payloadBytes(us []weave.Update) int64 {
	var n int64
	for i := range us {
		n += int64(len(us[i].Payload.Value))
	}
	return n
}

// touch gives the collection, and so the storage, the write's timestamp.
func (w *wtx) touch(cid int64) error {
	_, err := w.exec(w.s.q.touchCollection, w.uid, cid, int64(w.t))
	return err
}

// setStorage gives the storage row the write's timestamp, for writes that
// remove collections (see storageTimestamp).
func (w *wtx) setStorage() error {
	_, err := w.exec(w.s.q.setStorage, int64(w.t), w.uid)
	return err
}

// expiry is the absolute expiry of a TTL given in a write. It counts from
// the server's clock, not from T, which may be ahead of it.
func (w *wtx) expiry(ttl weave.Optional[int64]) int64 {
	if !ttl.Set || ttl.Null {
		return neverExpires
	}
	return int64(w.clock) + ttl.Value*1000
}

// upsert writes updates (ids unique) into a collection with partial-update
// semantics, in one statement per shape and chunk.
func (w *wtx) upsert(cid int64, us []weave.Update) error {
	var groups [fullShape + 1][]int
	for i := range us {
		sh := shapeOf(&us[i])
		groups[sh] = append(groups[sh], i)
	}
	for sh := range groups {
		idx := groups[sh]
		if w.s.descendingInserts && len(idx) > 1 {
			// A new record takes the next rowid, and a read walks the
			// records newest first, ids descending within a write: inserted
			// in that order, the read's rowid lookups each go to the next
			// row, which SQLite does without a search from the root.
			slices.SortFunc(idx, func(a, b int) int { return strings.Compare(us[b].ID, us[a].ID) })
		}
		for len(idx) > 0 {
			n := w.s.ws.chunk(len(idx))
			args := make([]any, 0, 10*n+7)
			for _, i := range idx[:n] {
				u := &us[i]
				var si any
				if u.SortIndex.Set && !u.SortIndex.Null {
					si = u.SortIndex.Value
				}
				payload := ""
				if u.Payload.Set && !u.Payload.Null {
					payload = u.Payload.Value
				}
				// Absent fields get a new record's defaults; the upsert
				// leaves them alone on existing rows.
				args = append(args, w.uid, cid, u.ID, si, payload, len(payload), int64(w.t), w.expiry(u.TTL),
					optionalID(u.ParentID), optionalID(u.PredecessorID))
			}
			for range shape(sh).reviveCount() {
				args = append(args, w.now)
			}
			if _, err := w.execN(n, w.s.text(textKey{kind: textUpsertBSOs, shape: shape(sh), n: n}), args...); err != nil {
				return err
			}
			idx = idx[n:]
		}
	}
	return nil
}

// optionalID is the column value of a Sync 1.1 id field: NULL unless the
// update sets it to a non-empty id.
func optionalID(o weave.Optional[string]) any {
	if !o.Set || o.Null || o.Value == "" {
		return nil
	}
	return o.Value
}

// PutBSO implements weave.Store.
func (s *Store) PutBSO(ctx context.Context, uid int64, collection string, u weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	cid, _, err := s.collectionID(ctx, collection, true)
	if err != nil {
		return 0, err
	}
	var t weave.Timestamp
	err = s.write(ctx, uid, cid, true, func(w *wtx) error {
		if pre.IfUnmodifiedSince != nil {
			var ts weave.Timestamp
			err := w.queryRow(s.q.itemModified, uid, cid, u.ID, w.now).Scan(&ts)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if err := pre.Check(ts); err != nil {
				return err
			}
		}
		if err := w.upsert(cid, []weave.Update{u}); err != nil {
			return err
		}
		if err := w.checkQuota(pre.Quota, 0); err != nil {
			return err
		}
		t = w.t
		return w.touch(cid)
	})
	return t, err
}

// PostBSOs implements weave.Store.
func (s *Store) PostBSOs(ctx context.Context, uid int64, collection string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	cid, _, err := s.collectionID(ctx, collection, true)
	if err != nil {
		return 0, err
	}
	us = mergeUpdates(us)
	var t weave.Timestamp
	err = s.write(ctx, uid, cid, true, func(w *wtx) error {
		if err := w.checkCollection(pre); err != nil {
			return err
		}
		if err := w.upsert(cid, us); err != nil {
			return err
		}
		if err := w.checkQuota(pre.Quota, 0); err != nil {
			return err
		}
		t = w.t
		return w.touch(cid)
	})
	return t, err
}

// DeleteBSO implements weave.Store.
func (s *Store) DeleteBSO(ctx context.Context, uid int64, collection, id string, pre weave.Precondition) (weave.Timestamp, error) {
	cid, ok, err := s.collectionID(ctx, collection, false)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, weave.ErrNotFound
	}
	var t weave.Timestamp
	err = s.write(ctx, uid, cid, false, func(w *wtx) error {
		var ts weave.Timestamp
		err := w.queryRow(s.q.itemModified, uid, cid, id, w.now).Scan(&ts)
		if errors.Is(err, sql.ErrNoRows) {
			return weave.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := pre.Check(ts); err != nil {
			return err
		}
		if _, err := w.exec(s.q.deleteBSO, uid, cid, id); err != nil {
			return err
		}
		t = w.t
		return w.touch(cid)
	})
	if errors.Is(err, errNoUser) {
		return 0, weave.ErrNotFound
	}
	return t, err
}

// DeleteBSOs implements weave.Store.
func (s *Store) DeleteBSOs(ctx context.Context, uid int64, collection string, ids []string, pre weave.Precondition) (weave.Timestamp, error) {
	return s.deleteIn(ctx, uid, collection, pre, func(w *wtx, cid int64) error {
		for len(ids) > 0 {
			n := w.s.ws.chunk(len(ids))
			// The expired-records statement with "expiry <= never" deletes
			// every listed record, expired or not.
			args := make([]any, 0, 3+n)
			args = append(args, uid, cid, neverExpires)
			for _, id := range ids[:n] {
				args = append(args, id)
			}
			if _, err := w.execN(n, s.text(textKey{kind: textDeleteExpired, n: n}), args...); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return w.touch(cid)
	})
}

// DeleteCollection implements weave.Store.
func (s *Store) DeleteCollection(ctx context.Context, uid int64, collection string, pre weave.Precondition) (weave.Timestamp, error) {
	return s.deleteIn(ctx, uid, collection, pre, func(w *wtx, cid int64) error {
		for _, q := range []string{s.q.deleteCollectionBSOs, s.q.deleteCollection} {
			if _, err := w.exec(q, uid, cid); err != nil {
				return err
			}
		}
		if _, err := w.exec(s.q.deleteCollectionStaged, uid, uid, cid); err != nil {
			return err
		}
		if _, err := w.exec(s.q.deleteCollectionBatches, uid, cid); err != nil {
			return err
		}
		// The storage keeps T although the collection is gone, so that the
		// storage timestamp never goes back (spec §18 #23).
		return w.setStorage()
	})
}

// deleteIn runs del in a write transaction of one of the user's
// collections once pre holds against the collection's timestamp, and
// returns the write's timestamp. A collection that does not exist, or that
// the user has nothing in, changes nothing: the storage timestamp is
// returned (0 for a user without storage).
func (s *Store) deleteIn(ctx context.Context, uid int64, collection string, pre weave.Precondition, del func(w *wtx, cid int64) error) (weave.Timestamp, error) {
	cid, ok, err := s.collectionID(ctx, collection, false)
	if err != nil {
		return 0, err
	}
	if !ok {
		return s.LastModified(ctx, uid)
	}
	var t weave.Timestamp
	err = s.write(ctx, uid, cid, false, func(w *wtx) error {
		if w.collection == 0 {
			t = w.storage
			return nil
		}
		if err := pre.Check(w.collection); err != nil {
			return err
		}
		t = w.t
		return del(w, cid)
	})
	if errors.Is(err, errNoUser) {
		return 0, nil
	}
	return t, err
}

// DeleteStorage implements weave.Store. The user's storage timestamp stays
// at T (the reference servers reset it to 0), so a client never sees the
// storage timestamp go back.
func (s *Store) DeleteStorage(ctx context.Context, uid int64, pre weave.Precondition) (weave.Timestamp, error) {
	var t weave.Timestamp
	err := s.write(ctx, uid, 0, true, func(w *wtx) error {
		if err := pre.Check(w.storage); err != nil {
			return err
		}
		for _, q := range []string{s.q.deleteUserBSOs, s.q.deleteUserColls, s.q.deleteUserStaged, s.q.deleteUserBatches} {
			if _, err := w.exec(q, uid); err != nil {
				return err
			}
		}
		t = w.t
		return w.setStorage()
	})
	return t, err
}
