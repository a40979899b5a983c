package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
)

// purgeChunk is how many expired rows one purge transaction removes, small
// enough that no lock is held for long.
const purgeChunk = 1000

// PurgeExpired implements weave.Store. It removes expired BSOs, then
// expired batches with their staged records, each in transactions of at
// most purgeChunk rows; limit (≤ 0: no limit) bounds the BSOs plus batches
// removed, which is what it returns. Deleting expired rows changes nothing
// visible, so no timestamp moves and no user row is locked.
func (s *Store) PurgeExpired(ctx context.Context, limit int) (int64, error) {
	var total int64
	left := func() int {
		if limit <= 0 {
			return purgeChunk
		}
		return min(purgeChunk, limit-int(total))
	}
	for n := left(); n > 0; n = left() {
		deleted, more, err := s.purgeBSOs(ctx, n)
		total += deleted
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
	}
	for n := min(left(), 100); n > 0; n = min(left(), 100) {
		// Batches may carry thousands of staged rows: fewer per transaction.
		deleted, more, err := s.purgeBatches(ctx, n)
		total += deleted
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
	}
	return total, nil
}

type bsoKeyRow struct {
	uid, cid int64
	id       string
}

// purgeBSOs deletes up to n expired BSOs; more reports that there may be
// others.
func (s *Store) purgeBSOs(ctx context.Context, n int) (deleted int64, more bool, err error) {
	err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		deleted, more = 0, false
		now := s.nowMs()
		rows, err := tx.QueryContext(ctx, s.q.expiredBSOs, now, n)
		if err != nil {
			return err
		}
		var keys []bsoKeyRow
		for rows.Next() {
			var k bsoKeyRow
			if err := rows.Scan(&k.uid, &k.cid, &k.id); err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		more = len(keys) == n
		slices.SortFunc(keys, func(a, b bsoKeyRow) int {
			if a.uid != b.uid {
				return cmp.Compare(a.uid, b.uid)
			}
			return cmp.Compare(a.cid, b.cid)
		})
		// One statement per (user, collection); the expiry is checked again
		// in case a write renewed the record meanwhile.
		for len(keys) > 0 {
			j := 1
			for j < len(keys) && j < maxRows && keys[j].uid == keys[0].uid && keys[j].cid == keys[0].cid {
				j++
			}
			args := make([]any, 0, 3+j)
			args = append(args, keys[0].uid, keys[0].cid, now)
			for _, k := range keys[:j] {
				args = append(args, k.id)
			}
			res, err := tx.ExecContext(ctx, s.text(textKey{kind: textDeleteExpired, n: j}), args...)
			if err != nil {
				return err
			}
			if ra, err := res.RowsAffected(); err == nil {
				deleted += ra
			}
			keys = keys[j:]
		}
		return nil
	})
	return deleted, more, err
}

// purgeBatches deletes up to n expired batches and their staged records.
func (s *Store) purgeBatches(ctx context.Context, n int) (deleted int64, more bool, err error) {
	err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		deleted, more = 0, false
		now := s.nowMs()
		rows, err := tx.QueryContext(ctx, s.q.expiredBatches, now, n)
		if err != nil {
			return err
		}
		var keys [][2]int64
		for rows.Next() {
			var k [2]int64
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		more = len(keys) == n
		for _, k := range keys {
			res, err := tx.ExecContext(ctx, s.q.purgeBatch, k[0], k[1], now)
			if err != nil {
				return err
			}
			if ra, _ := res.RowsAffected(); ra == 0 {
				continue // committed or deleted meanwhile
			}
			if _, err := tx.ExecContext(ctx, s.q.deleteStaged, k[0], k[1]); err != nil {
				return err
			}
			deleted++
		}
		return nil
	})
	return deleted, more, err
}
