package sqlstore

// Moving users between shards: weave.UserMover on Store. The user_moves
// table (storage migration 0002) holds the move state of users leaving this
// shard. Every write checks it right after locking the user's user_storage
// row (Store.write), and LockUser sets it while holding that same row lock,
// so no write can commit on this shard after LockUser returns.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weave-sync/weave"
)

var _ weave.UserMover = (*Store)(nil)

// The Retry-After of a write refused because its user is being moved (a
// copy takes about a second) or has just moved (the node turns to 401 for
// the user within its state refresh, about a second).
const (
	lockedRetryAfter = 2 * time.Second
	movedRetryAfter  = 1 * time.Second
)

// moveText keys the move statements in Store.texts (apart from textKey).
type moveText uint8

const (
	mtState moveText = iota
	mtUpsertMove
)

func (s *Store) moveQuery(k moveText) string {
	if t, ok := s.texts.Load(k); ok {
		return t.(string)
	}
	var q string
	switch k {
	case mtState:
		q = `SELECT state, target FROM user_moves WHERE uid = ?`
	case mtUpsertMove:
		q = `INSERT INTO user_moves (uid, state, target, updated_at) VALUES (?, ?, ?, ?)` +
			s.db.Dialect.Upsert([]string{"uid"}, []string{"state", "target", "updated_at"})
	}
	q = s.db.Q(q)
	s.texts.Store(k, q)
	return q
}

// checkMove refuses the write of a user being moved away from this store,
// given the move state read with the user's row lock, so that it sees a
// LockUser that committed before the lock was granted.
func checkMove(state string) error {
	switch weave.MoveState(state) {
	case "":
		return nil
	case weave.MoveMoved:
		return &weave.UnavailableError{Reason: "user moved to another node", RetryAfter: movedRetryAfter}
	default:
		return &weave.UnavailableError{Reason: "user is being moved to another node", RetryAfter: lockedRetryAfter}
	}
}

// LockUser implements weave.UserMover.
func (s *Store) LockUser(ctx context.Context, uid int64, target string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q.insertUser, uid); err != nil {
			return err
		}
		var m int64
		if err := tx.QueryRowContext(ctx, s.q.lockUser, uid).Scan(&m); err != nil {
			return err
		}
		var state, old string
		err := tx.QueryRowContext(ctx, s.moveQuery(mtState), uid).Scan(&state, &old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case weave.MoveState(state) == weave.MoveMoved:
			return fmt.Errorf("sqlstore: lock user %d: %w (to %s)", uid, weave.ErrUserMoved, old)
		}
		_, err = tx.ExecContext(ctx, s.moveQuery(mtUpsertMove), uid, string(weave.MoveLocked), target, s.nowMs())
		return err
	})
}

// UnlockUser implements weave.UserMover.
func (s *Store) UnlockUser(ctx context.Context, uid int64) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM user_moves WHERE uid = ? AND state = ?`), uid, string(weave.MoveLocked))
		return err
	})
}

// MarkMoved implements weave.UserMover.
func (s *Store) MarkMoved(ctx context.Context, uid int64, target string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.moveQuery(mtUpsertMove), uid, string(weave.MoveMoved), target, s.nowMs())
		return err
	})
}

// ClearMoveState implements weave.UserMover.
func (s *Store) ClearMoveState(ctx context.Context, uid int64) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM user_moves WHERE uid = ?`), uid)
		return err
	})
}

// MoveState implements weave.UserMover.
func (s *Store) MoveState(ctx context.Context, uid int64) (weave.MoveState, string, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var state, target string
	err := s.db.Read.QueryRowContext(ctx, s.moveQuery(mtState), uid).Scan(&state, &target)
	if errors.Is(err, sql.ErrNoRows) {
		return weave.MoveNone, "", nil
	}
	if err != nil {
		return "", "", s.db.Classify(err)
	}
	return weave.MoveState(state), target, nil
}

// MoveStates implements weave.UserMover.
func (s *Store) MoveStates(ctx context.Context, since int64) (map[int64]weave.MoveState, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT uid, state FROM user_moves WHERE updated_at >= ?`), since)
	if err != nil {
		return nil, s.db.Classify(err)
	}
	defer rows.Close()
	out := make(map[int64]weave.MoveState)
	for rows.Next() {
		var uid int64
		var st string
		if err := rows.Scan(&uid, &st); err != nil {
			return nil, s.db.Classify(err)
		}
		out[uid] = weave.MoveState(st)
	}
	return out, s.db.Classify(rows.Err())
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// nullString is NULL for "".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func intPtr(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ExportUser implements weave.UserMover.
func (s *Store) ExportUser(ctx context.Context, uid int64) (weave.UserData, error) {
	d := weave.UserData{UID: uid}
	collNames := map[int64]string{}
	name := func(cid int64) (string, error) {
		if n, ok := collNames[cid]; ok {
			return n, nil
		}
		n, err := s.collectionName(ctx, cid)
		if err == nil {
			collNames[cid] = n
		}
		return n, err
	}
	// Resolve every collection id first, outside the snapshot.
	if err := s.refreshCollectionNames(ctx); err != nil {
		return d, err
	}
	err := s.db.ReadTx(ctx, func(tx *sql.Tx) error {
		d = weave.UserData{UID: uid}
		var newest sql.NullInt64
		err := tx.QueryRowContext(ctx, s.q.lastModified, uid).Scan(&d.Modified, &newest)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		d.Modified = storageTimestamp(d.Modified, newest)
		d.Exists = true
		byID := map[int64]int{}
		rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT collection_id, modified FROM user_collections WHERE uid = ?`), uid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cid int64
			var c weave.UserCollection
			if err := rows.Scan(&cid, &c.Modified); err != nil {
				rows.Close()
				return err
			}
			if c.Name, err = name(cid); err != nil {
				rows.Close()
				return err
			}
			byID[cid] = len(d.Collections)
			d.Collections = append(d.Collections, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.db.Q(`SELECT collection_id, id, sortindex, payload, modified, expiry, parentid, predecessorid FROM bsos WHERE uid = ? ORDER BY collection_id, id`), uid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cid int64
			var b weave.UserBSO
			var si sql.NullInt64
			var parent, pred sql.NullString
			if err := rows.Scan(&cid, &b.ID, &si, &b.Payload, &b.Modified, &b.Expires, &parent, &pred); err != nil {
				rows.Close()
				return err
			}
			b.SortIndex = intPtr(si)
			b.ParentID, b.PredecessorID = parent.String, pred.String
			if int64(b.Expires) == neverExpires {
				b.Expires = 0
			}
			i, ok := byID[cid]
			if !ok {
				// BSOs without their collection row are invisible to
				// reads; carry them anyway, under a collection at 0.
				n, err := name(cid)
				if err != nil {
					rows.Close()
					return err
				}
				i = len(d.Collections)
				byID[cid] = i
				d.Collections = append(d.Collections, weave.UserCollection{Name: n})
			}
			d.Collections[i].BSOs = append(d.Collections[i].BSOs, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		batchIdx := map[int64]int{}
		rows, err = tx.QueryContext(ctx, s.db.Q(`SELECT id, collection_id, expiry FROM batches WHERE uid = ? ORDER BY id`), uid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var b weave.UserBatch
			var cid int64
			if err := rows.Scan(&b.ID, &cid, &b.Expiry); err != nil {
				rows.Close()
				return err
			}
			if b.Collection, err = name(cid); err != nil {
				rows.Close()
				return err
			}
			batchIdx[b.ID] = len(d.Batches)
			d.Batches = append(d.Batches, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.db.Q(`SELECT batch_id, id, payload, payload_set, sortindex, sortindex_set, ttl, ttl_set FROM batch_bsos WHERE uid = ? ORDER BY batch_id, id`), uid)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var bid int64
			var it weave.StagedItem
			var ps, ss, ts int
			var si, ttl sql.NullInt64
			if err := rows.Scan(&bid, &it.ID, &it.Payload, &ps, &si, &ss, &ttl, &ts); err != nil {
				return err
			}
			it.PayloadSet, it.SortIndexOK, it.TTLSet = ps != 0, ss != 0, ts != 0
			it.SortIndex, it.TTL = intPtr(si), intPtr(ttl)
			i, ok := batchIdx[bid]
			if !ok {
				continue // staged rows of a purged batch
			}
			d.Batches[i].Items = append(d.Batches[i].Items, it)
		}
		return rows.Err()
	})
	if err != nil {
		return weave.UserData{}, s.db.Classify(err)
	}
	weave.SortUserData(&d)
	return d, nil
}

// refreshCollectionNames loads every collection name into the cache.
func (s *Store) refreshCollectionNames(ctx context.Context) error {
	rows, err := s.db.Read.QueryContext(ctx, s.q.allCollections)
	if err != nil {
		return s.db.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return s.db.Classify(err)
		}
		s.colls.add(id, name)
	}
	return s.db.Classify(rows.Err())
}

// deleteUserRows removes every row of the user but its move state.
func (s *Store) deleteUserRows(ctx context.Context, tx *sql.Tx, uid int64) error {
	for _, q := range []string{s.q.deleteUserStaged, s.q.deleteUserBatches, s.q.deleteUserBSOs, s.q.deleteUserColls,
		s.db.Q(`DELETE FROM user_storage WHERE uid = ?`)} {
		if _, err := tx.ExecContext(ctx, q, uid); err != nil {
			return err
		}
	}
	return nil
}

// ImportUser implements weave.UserMover.
func (s *Store) ImportUser(ctx context.Context, d weave.UserData) error {
	cids := map[string]int64{}
	for _, c := range d.Collections {
		id, _, err := s.collectionID(ctx, c.Name, true)
		if err != nil {
			return err
		}
		cids[c.Name] = id
	}
	for _, b := range d.Batches {
		id, _, err := s.collectionID(ctx, b.Collection, true)
		if err != nil {
			return err
		}
		cids[b.Collection] = id
	}
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if err := s.deleteUserRows(ctx, tx, d.UID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM user_moves WHERE uid = ?`), d.UID); err != nil {
			return err
		}
		if !d.Exists {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO user_storage (uid, modified) VALUES (?, ?)`), d.UID, d.Modified); err != nil {
			return err
		}
		ins := bulkInserter{ctx: ctx, tx: tx, db: s.db}
		for _, c := range d.Collections {
			cid := cids[c.Name]
			if err := ins.add(`user_collections (uid, collection_id, modified)`, d.UID, cid, c.Modified); err != nil {
				return err
			}
		}
		if err := ins.flush(); err != nil {
			return err
		}
		for _, c := range d.Collections {
			cid := cids[c.Name]
			for _, b := range c.BSOs {
				exp := int64(b.Expires)
				if exp == 0 {
					exp = neverExpires
				}
				if err := ins.add(`bsos (uid, collection_id, id, sortindex, payload, payload_size, modified, expiry, parentid, predecessorid)`,
					d.UID, cid, b.ID, nullInt(b.SortIndex), b.Payload, len(b.Payload), b.Modified, exp,
					nullString(b.ParentID), nullString(b.PredecessorID)); err != nil {
					return err
				}
			}
		}
		if err := ins.flush(); err != nil {
			return err
		}
		for _, b := range d.Batches {
			if err := ins.add(`batches (uid, id, collection_id, expiry)`, d.UID, b.ID, cids[b.Collection], b.Expiry); err != nil {
				return err
			}
		}
		if err := ins.flush(); err != nil {
			return err
		}
		for _, b := range d.Batches {
			for _, it := range b.Items {
				if err := ins.add(`batch_bsos (uid, batch_id, id, payload, payload_size, payload_set, sortindex, sortindex_set, ttl, ttl_set)`,
					d.UID, b.ID, it.ID, it.Payload, len(it.Payload), boolInt(it.PayloadSet), nullInt(it.SortIndex), boolInt(it.SortIndexOK),
					nullInt(it.TTL), boolInt(it.TTLSet)); err != nil {
					return err
				}
			}
		}
		return ins.flush()
	})
	return s.db.Classify(err)
}

// bulkInserter batches rows of one table into multi-row INSERTs.
type bulkInserter struct {
	ctx   context.Context
	tx    *sql.Tx
	db    *DB
	table string
	width int
	rows  int
	args  []any
}

func (b *bulkInserter) add(table string, args ...any) error {
	if b.table != table || b.rows >= maxRows {
		if err := b.flush(); err != nil {
			return err
		}
		b.table, b.width = table, len(args)
	}
	b.args = append(b.args, args...)
	b.rows++
	return nil
}

func (b *bulkInserter) flush() error {
	if b.rows == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO ")
	sb.WriteString(b.table)
	sb.WriteString(" VALUES ")
	repeatTuple(&sb, b.width, b.rows)
	_, err := b.tx.ExecContext(b.ctx, b.db.Q(sb.String()), b.args...)
	b.rows, b.args = 0, b.args[:0]
	return err
}

// DigestUser implements weave.UserMover.
func (s *Store) DigestUser(ctx context.Context, uid int64) (map[string]weave.CollectionDigest, error) {
	d, err := s.ExportUser(ctx, uid)
	if err != nil {
		return nil, err
	}
	return weave.DigestUserData(d), nil
}

// PurgeUser implements weave.UserMover.
func (s *Store) PurgeUser(ctx context.Context, uid int64) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error { return s.deleteUserRows(ctx, tx, uid) })
}
