package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/rand/v2"

	"github.com/weave-sync/weave"
)

// Batch ids are random 63-bit numbers (unique per user with overwhelming
// odds, and unguessable so they reveal nothing), shown to clients as 11
// base64url characters. Batches are keyed by (uid, id), so another user's
// id never resolves.

func encodeBatchID(id int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeBatchID(s string) (int64, bool) {
	if len(s) != 11 {
		return 0, false
	}
	var b [8]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(s)); err != nil || n != 8 {
		return 0, false
	}
	id := int64(binary.BigEndian.Uint64(b[:]))
	return id, id >= 0
}

// ForeignBatchID is the id under which this store keeps a batch that
// clients know by another server's batch id s (anything that is not one of
// ours): a batch imported from that server is stored under it, so that a
// client in the middle of an upload can still append to and commit it.
func ForeignBatchID(s string) int64 {
	sum := sha256.Sum256([]byte(s))
	return int64(binary.BigEndian.Uint64(sum[:8]) >> 1)
}

// CreateBatch implements weave.Store.
func (s *Store) CreateBatch(ctx context.Context, uid int64, collection string, us []weave.Update, pre weave.Precondition) (string, weave.Timestamp, error) {
	cid, _, err := s.collectionID(ctx, collection, true)
	if err != nil {
		return "", 0, err
	}
	us = mergeUpdates(us)
	var id int64
	var modified weave.Timestamp
	err = s.write(ctx, uid, cid, true, func(w *wtx) error {
		if err := w.checkCollection(pre); err != nil {
			return err
		}
		if err := w.checkQuota(pre.Quota, payloadBytes(us)); err != nil {
			return err
		}
		id = rand.Int64()
		if _, err := w.exec(s.q.insertBatch, uid, id, cid, w.now+s.batchLifetime.Milliseconds()); err != nil {
			return err
		}
		modified = w.collection
		return w.stage(id, us)
	})
	if err != nil {
		return "", 0, err
	}
	return encodeBatchID(id), modified, nil
}

// AppendBatch implements weave.Store.
func (s *Store) AppendBatch(ctx context.Context, uid int64, collection, batch string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	cid, id, err := s.batchTarget(ctx, collection, batch)
	if err != nil {
		return 0, err
	}
	us = mergeUpdates(us)
	var modified weave.Timestamp
	err = s.write(ctx, uid, cid, false, func(w *wtx) error {
		if err := w.openBatch(cid, id, pre); err != nil {
			return err
		}
		if err := w.checkQuota(pre.Quota, payloadBytes(us)); err != nil {
			return err
		}
		modified = w.collection
		return w.stage(id, us)
	})
	if errors.Is(err, errNoUser) {
		return 0, weave.ErrBatchNotFound
	}
	if err != nil {
		return 0, err
	}
	return modified, nil
}

// CommitBatch implements weave.Store. The commit's own updates are staged
// like an append, so they compose with (and win over) the staged ones, and
// then every staged record is applied with the commit's timestamp.
func (s *Store) CommitBatch(ctx context.Context, uid int64, collection, batch string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	cid, id, err := s.batchTarget(ctx, collection, batch)
	if err != nil {
		return 0, err
	}
	us = mergeUpdates(us)
	var t weave.Timestamp
	err = s.write(ctx, uid, cid, false, func(w *wtx) error {
		if err := w.openBatch(cid, id, pre); err != nil {
			return err
		}
		if err := w.stage(id, us); err != nil {
			return err
		}
		if err := w.apply(cid, id); err != nil {
			return err
		}
		if err := w.checkQuota(pre.Quota, 0); err != nil {
			return err
		}
		if _, err := w.exec(s.q.deleteStaged, uid, id); err != nil {
			return err
		}
		if _, err := w.exec(s.q.deleteBatch, uid, id); err != nil {
			return err
		}
		t = w.t
		return w.touch(cid)
	})
	if errors.Is(err, errNoUser) {
		return 0, weave.ErrBatchNotFound
	}
	return t, err
}

// batchTarget resolves the collection and batch id of an append or commit;
// an unknown collection cannot name an open batch, and an id not in our
// format can only name an imported one.
func (s *Store) batchTarget(ctx context.Context, collection, batch string) (cid, id int64, err error) {
	id, ok := decodeBatchID(batch)
	if !ok {
		id = ForeignBatchID(batch)
	}
	cid, ok, err = s.collectionID(ctx, collection, false)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, weave.ErrBatchNotFound
	}
	return cid, id, nil
}

// openBatch checks that the batch exists, belongs to the collection and has
// not expired, and that the collection meets pre.
func (w *wtx) openBatch(cid, id int64, pre weave.Precondition) error {
	var bcid, expiry int64
	err := w.queryRow(w.s.q.getBatch, w.uid, id).Scan(&bcid, &expiry)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (bcid != cid || expiry <= w.now)) {
		return weave.ErrBatchNotFound
	}
	if err != nil {
		return err
	}
	return w.checkCollection(pre)
}

// stage merges updates (ids unique) into the batch's staged rows: a field an
// update sets replaces the staged value and is marked set.
func (w *wtx) stage(id int64, us []weave.Update) error {
	var groups [fullShape + 1][]int
	for i := range us {
		sh := shapeOf(&us[i])
		groups[sh] = append(groups[sh], i)
	}
	for sh := range groups {
		idx := groups[sh]
		for len(idx) > 0 {
			n := w.s.ws.chunk(len(idx))
			args := make([]any, 0, 10*n)
			for _, i := range idx[:n] {
				u := &us[i]
				payload := ""
				if u.Payload.Set && !u.Payload.Null {
					payload = u.Payload.Value
				}
				var si, ttl any
				if u.SortIndex.Set && !u.SortIndex.Null {
					si = u.SortIndex.Value
				}
				if u.TTL.Set && !u.TTL.Null {
					ttl = u.TTL.Value
				}
				args = append(args, w.uid, id, u.ID,
					payload, len(payload), flag(u.Payload.Set),
					si, flag(u.SortIndex.Set),
					ttl, flag(u.TTL.Set))
			}
			if _, err := w.execN(n, w.s.text(textKey{kind: textUpsertStaged, shape: shape(sh), n: n}), args...); err != nil {
				return err
			}
			idx = idx[n:]
		}
	}
	return nil
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// apply writes a batch's staged rows into bsos with the write's timestamp,
// one INSERT ... SELECT per shape present, so that the records never pass
// through Go.
func (w *wtx) apply(cid, id int64) error {
	rows, err := w.s.ws.txQuery(w.ctx, w.tx, w.s.q.stagedShapes, w.uid, id)
	if err != nil {
		return err
	}
	var shapes []shape
	for rows.Next() {
		var p, si, ttl int64
		if err := rows.Scan(&p, &si, &ttl); err != nil {
			rows.Close()
			return err
		}
		var sh shape
		if p != 0 {
			sh |= hasPayload
		}
		if si != 0 {
			sh |= hasSortIndex
		}
		if ttl != 0 {
			sh |= hasTTL
		}
		shapes = append(shapes, sh)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, sh := range shapes {
		args := []any{cid, int64(w.t), int64(w.clock), w.uid, id}
		for range sh.reviveCount() {
			args = append(args, w.now)
		}
		if _, err := w.exec(w.s.text(textKey{kind: textApplyStaged, shape: sh}), args...); err != nil {
			return err
		}
	}
	return nil
}
