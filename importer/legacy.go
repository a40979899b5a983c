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
		r.Expires = weave.Timestamp(s.expiry(ttl, mod))
		if err := b.addBSO(cid, r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// expiry converts a bso.ttl into weave's expiry (ms, 0 for never).
func (s *Source) expiry(ttl sql.NullInt64, modified int64) int64 {
	switch {
	case !ttl.Valid:
		return 0 // Python's nullable ttl: the default, never
	case !s.ttlSeconds:
		return rsExpiry(ttl.Int64, modified)
	case ttl.Int64 == pythonMaxTTL:
		// Python writes its MAX_TTL itself, as an absolute second, for
		// every record written without a TTL (put or batch commit).
		return 0
	}
	return ttl.Int64 * 1000
}

// rsNever is syncstorage-rs's DEFAULT_BSO_TTL (2.1e9 s) in ms. Its writes
// without a TTL store it two ways, both meaning "never expires": a batch
// commit on MySQL stores it as the absolute expiry (2036-07-18), and every
// other write (a PUT or POST, and a batch commit on PostgreSQL) stores the
// write's time plus it (around 2092).
const rsNever = 2_100_000_000 * 1000

// rsEarliestWrite bounds the time of any syncstorage-rs write from below
// (2001-09-09, years before Sync existed).
const rsEarliestWrite = 1_000_000_000_000

// rsExpiry maps a syncstorage-rs expiry (ms) onto weave's (0: never). A
// record's expiry was set by its last write that carried a TTL or created
// it, so a "never" expiry is rsNever itself or rsNever after a write no
// later than the record's modified time. A client's TTL (at most
// 999999999 s) never lands on either today, so real expiries, even ones
// beyond 2036, are kept as they are.
func rsExpiry(expiry, modified int64) int64 {
	if w := expiry - rsNever; w == 0 || (w >= rsEarliestWrite && w <= modified) {
		return 0
	}
	return expiry
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
