package importer

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// The "legacy" layout is server-syncstorage's, which syncstorage-rs kept on
// MySQL (renaming its own columns to match in 2019): user_collections
// (userid, collection, last_modified), bso (userid, collection, id,
// sortindex, payload, modified, ttl), batch_uploads (batch, userid,
// collection) and batch_upload_items (batch, userid, id, sortindex,
// payload, ttl_offset). The differences: bso.ttl is in ms in syncstorage-rs
// and in seconds in Python, and Python may shard bso by uid and
// batch_upload_items by batch id.

// readLegacy reads one user of a legacy-layout database.
func (s *Source) readLegacy(ctx context.Context, tx *sql.Tx, b *userBuilder, now int64) error {
	uid := b.d.UID
	q := s.db.Q
	if err := readCollectionTimes(ctx, tx, b, q(`SELECT collection, last_modified FROM user_collections WHERE userid = ?`), uid); err != nil {
		return err
	}

	// A record is in bso, or in its uid's shard, or (a deployment that
	// switched sharding on) in both places, which must not disagree.
	seen := map[[2]string]string{}
	for _, table := range s.userBSOTables(uid) {
		if err := s.readLegacyBSOs(ctx, tx, b, table, seen); err != nil {
			return err
		}
	}
	if !s.batches {
		return nil
	}
	return s.readLegacyBatches(ctx, tx, b, now)
}

// userBSOTables are the tables that can hold uid's records.
func (s *Source) userBSOTables(uid int64) []string {
	return shardTables("bso", s.bsoPlain, s.bsoShards, uid)
}

// batchItemTables are the tables that can hold a batch's staged records.
func (s *Source) batchItemTables(batch int64) []string {
	return shardTables("batch_upload_items", s.buiPlain, s.buiShards, batch)
}

// shardTables names the tables of a row keyed by key: the unsharded table
// base if it exists, and base<key mod shards> when the source is sharded.
func shardTables(base string, plain bool, shards int, key int64) []string {
	var out []string
	if plain {
		out = append(out, base)
	}
	if shards > 0 {
		out = append(out, base+strconv.FormatInt(key%int64(shards), 10))
	}
	return out
}

func (s *Source) readLegacyBSOs(ctx context.Context, tx *sql.Tx, b *userBuilder, table string, seen map[[2]string]string) error {
	rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT collection, id, sortindex, payload, modified, ttl FROM `+table+` WHERE userid = ?`), b.d.UID)
	if err != nil {
		return fmt.Errorf("%s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var cid, mod int64
		var r weave.UserBSO
		var sortIndex, ttl sql.NullInt64
		if err := rows.Scan(&cid, &r.ID, &sortIndex, &r.Payload, &mod, &ttl); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		key := [2]string{strconv.FormatInt(cid, 10), r.ID}
		if other, dup := seen[key]; dup {
			return fmt.Errorf("record %q of collection %d is in both %s and %s; delete the stale copy in the source first", r.ID, cid, other, table)
		}
		seen[key] = table
		if sortIndex.Valid {
			r.SortIndex = &sortIndex.Int64
		}
		r.Modified = weave.Timestamp(mod)
		r.Expiry = s.expiry(ttl)
		if err := b.addBSO(cid, r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// expiry converts a bso.ttl into weave's expiry (ms, 0 for never).
// syncstorage-rs's "never" is 2.1e9 s after the write, which weave keeps
// as it is; Python's is the absolute second 2.1e9 (in 2036), which weave
// turns into never, as Python meant.
func (s *Source) expiry(ttl sql.NullInt64) int64 {
	switch {
	case !ttl.Valid:
		return 0 // Python's nullable ttl: the default, never
	case !s.ttlSeconds:
		return ttl.Int64
	case ttl.Int64 >= pythonMaxTTL:
		return 0
	}
	return ttl.Int64 * 1000
}

func (s *Source) readLegacyBatches(ctx context.Context, tx *sql.Tx, b *userBuilder, now int64) error {
	type open struct{ id, cid int64 }
	var batches []open
	rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT batch, collection FROM batch_uploads WHERE userid = ? AND batch > ?`), b.d.UID, now-batchLifetime)
	if err != nil {
		return fmt.Errorf("batch_uploads: %w", err)
	}
	for rows.Next() {
		var o open
		if err := rows.Scan(&o.id, &o.cid); err != nil {
			rows.Close()
			return fmt.Errorf("batch_uploads: %w", err)
		}
		batches = append(batches, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("batch_uploads: %w", err)
	}
	for _, o := range batches {
		bt := weave.UserBatch{ID: sqlstore.ForeignBatchID(LegacyBatchID(o.id)), Expiry: o.id + batchLifetime}
		for _, table := range s.batchItemTables(o.id) {
			if err := s.readLegacyBatchItems(ctx, tx, table, b.d.UID, o.id, &bt); err != nil {
				return err
			}
		}
		if err := b.addBatch(o.cid, bt); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) readLegacyBatchItems(ctx context.Context, tx *sql.Tx, table string, uid, batch int64, bt *weave.UserBatch) error {
	rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT id, sortindex, payload, ttl_offset FROM `+table+` WHERE batch = ? AND userid = ?`), batch, uid)
	if err != nil {
		return fmt.Errorf("%s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var sortIndex, ttl sql.NullInt64
		var payload sql.NullString
		if err := rows.Scan(&id, &sortIndex, &payload, &ttl); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		bt.Items = append(bt.Items, stagedItem(id, sortIndex, payload, ttl))
	}
	return rows.Err()
}

// LegacyBatchID is the batch id that syncstorage-rs (MySQL) and
// server-syncstorage gave clients for their batch number n: the standard
// base64 of its decimal digits.
func LegacyBatchID(n int64) string {
	return base64.StdEncoding.EncodeToString([]byte(strconv.FormatInt(n, 10)))
}
