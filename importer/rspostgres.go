package importer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// syncstorage-rs on PostgreSQL keys everything by (user_id, collection_id)
// and stores times as TIMESTAMPTZ (TIMESTAMP in UTC in early versions,
// which EXTRACT reads the same way); batch ids are UUIDs, given to clients
// in their usual text form.

// pgMillis is the SQL for a timestamp column in ms since the epoch.
func pgMillis(col string) string {
	return `CAST(ROUND(EXTRACT(EPOCH FROM ` + col + `) * 1000) AS BIGINT)`
}

// readRSPostgres reads one user of a syncstorage-rs PostgreSQL database.
func (s *Source) readRSPostgres(ctx context.Context, tx *sql.Tx, b *userBuilder, now int64) error {
	uid := b.d.UID
	if err := readCollectionTimes(ctx, tx, b, `SELECT collection_id, `+pgMillis("modified")+` FROM user_collections WHERE user_id = $1`, uid); err != nil {
		return err
	}

	rows, err := tx.QueryContext(ctx, `SELECT collection_id, bso_id, sortindex, payload, `+pgMillis("modified")+`, `+pgMillis("expiry")+
		` FROM bsos WHERE user_id = $1`, uid)
	if err != nil {
		return fmt.Errorf("bsos: %w", err)
	}
	for rows.Next() {
		var cid, mod, expiry int64
		var r weave.UserBSO
		var sortIndex sql.NullInt64
		if err := rows.Scan(&cid, &r.ID, &sortIndex, &r.Payload, &mod, &expiry); err != nil {
			rows.Close()
			return fmt.Errorf("bsos: %w", err)
		}
		if sortIndex.Valid {
			r.SortIndex = &sortIndex.Int64
		}
		r.Modified = weave.Timestamp(mod)
		r.Expires = weave.Timestamp(rsExpiry(expiry, mod))
		if err := b.addBSO(cid, r); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("bsos: %w", err)
	}

	type key struct {
		cid int64
		id  string
	}
	open := map[key]*weave.UserBatch{}
	var order []key
	rows, err = tx.QueryContext(ctx, `SELECT collection_id, batch_id::text, `+pgMillis("expiry")+` FROM batches WHERE user_id = $1`, uid)
	if err != nil {
		return fmt.Errorf("batches: %w", err)
	}
	for rows.Next() {
		var k key
		var exp int64
		if err := rows.Scan(&k.cid, &k.id, &exp); err != nil {
			rows.Close()
			return fmt.Errorf("batches: %w", err)
		}
		if exp <= now {
			continue // expired: no client can use it any more
		}
		open[k] = &weave.UserBatch{ID: sqlstore.ForeignBatchID(k.id), Expiry: exp}
		order = append(order, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("batches: %w", err)
	}
	if len(open) == 0 {
		return nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT collection_id, batch_id::text, batch_bso_id, sortindex, payload, ttl FROM batch_bsos WHERE user_id = $1`, uid)
	if err != nil {
		return fmt.Errorf("batch_bsos: %w", err)
	}
	for rows.Next() {
		var k key
		var id string
		var sortIndex, ttl sql.NullInt64
		var payload sql.NullString
		if err := rows.Scan(&k.cid, &k.id, &id, &sortIndex, &payload, &ttl); err != nil {
			rows.Close()
			return fmt.Errorf("batch_bsos: %w", err)
		}
		if bt := open[k]; bt != nil {
			bt.Items = append(bt.Items, stagedItem(id, sortIndex, payload, ttl))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("batch_bsos: %w", err)
	}
	for _, k := range order {
		if err := b.addBatch(k.cid, *open[k]); err != nil {
			return err
		}
	}
	return nil
}
