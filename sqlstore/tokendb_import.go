package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/weave-sync/weave"
)

// ImportUserRecords inserts token records brought from another token server
// (one account's records), keeping each record's uid, generation,
// client_state, keys_changed_at, created_at and replaced_at, and assigning
// them to node nodeID; live records add to the node's load. It runs in one
// transaction. A record whose uid already exists for the same email is left
// alone (an import run again); a uid held by another account is an error.
// It returns how many records it inserted.
func (t *TokenDB) ImportUserRecords(ctx context.Context, nodeID int64, recs []weave.TokenUser) (int, error) {
	svc, err := t.service(ctx)
	if err != nil {
		return 0, err
	}
	inserted := 0
	err = t.db.WriteTx(ctx, func(tx *sql.Tx) error {
		inserted = 0
		if err := t.lockService(ctx, tx, svc); err != nil {
			return err
		}
		live := 0
		for _, r := range recs {
			var email string
			err := tx.QueryRowContext(ctx, t.db.Q(`SELECT email FROM token_users WHERE uid = ?`), r.UID).Scan(&email)
			switch {
			case err == nil:
				if email != r.Email {
					return fmt.Errorf("uid %d is already taken by another account", r.UID)
				}
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if _, err := tx.ExecContext(ctx, t.db.Q(`INSERT INTO token_users
				(uid, service, email, generation, client_state, keys_changed_at, created_at, replaced_at, nodeid)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				r.UID, svc, r.Email, r.Generation, r.ClientState, tokenNullIfZero(r.KeysChangedAt),
				r.CreatedAt, tokenNullIfZero(r.ReplacedAt), nodeID); err != nil {
				return err
			}
			inserted++
			if r.ReplacedAt == 0 {
				live++
			}
		}
		if live > 0 {
			if _, err := tx.ExecContext(ctx, t.db.Q(`UPDATE token_nodes SET current_load = current_load + ? WHERE id = ?`), live, nodeID); err != nil {
				return err
			}
		}
		if q := t.db.Dialect.SyncIdentity("token_users", "uid"); inserted > 0 && q != "" {
			// New users must never reuse an imported uid.
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("token db: import user records: %w", t.db.Classify(err))
	}
	return inserted, nil
}
