package sqlstore

// Token database support for moving users between nodes: re-pointing a
// user record and the journal of moves in progress (tokens migration 0002).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/weave-sync/weave"
)

var _ weave.MoveJournal = (*TokenDB)(nil)

// StartMigration journals a move of uid from one node to another, or returns
// the move already journaled for uid (whatever its nodes: a crashed move is
// finished before a new one starts).
func (t *TokenDB) StartMigration(ctx context.Context, uid, from, to int64) (weave.UserMigration, error) {
	var m weave.UserMigration
	err := t.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		m, err = t.migrationTx(ctx, tx, uid, true)
		if err == nil {
			return nil
		}
		if !errors.Is(err, weave.ErrNotFound) {
			return err
		}
		now := t.nowMS()
		m = weave.UserMigration{UID: uid, FromNode: from, ToNode: to, Step: weave.MoveStepStarted, StartedAt: now, UpdatedAt: now}
		_, err = tx.ExecContext(ctx, t.db.Q(`INSERT INTO user_migrations (uid, from_node, to_node, step, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`),
			uid, from, to, string(weave.MoveStepStarted), now, now)
		return err
	})
	if err != nil {
		return weave.UserMigration{}, fmt.Errorf("token db: start migration of %d: %w", uid, t.db.Classify(err))
	}
	return m, nil
}

func (t *TokenDB) migrationTx(ctx context.Context, q tokenQueryer, uid int64, lock bool) (weave.UserMigration, error) {
	var m weave.UserMigration
	var step string
	query := `SELECT uid, from_node, to_node, step, started_at, updated_at FROM user_migrations WHERE uid = ?`
	if lock {
		query += t.db.Dialect.ForUpdate()
	}
	err := q.QueryRowContext(ctx, t.db.Q(query), uid).Scan(&m.UID, &m.FromNode, &m.ToNode, &step, &m.StartedAt, &m.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return m, weave.ErrNotFound
	}
	m.Step = weave.MoveStep(step)
	return m, err
}

// Migration returns the journaled move of uid, or weave.ErrNotFound.
func (t *TokenDB) Migration(ctx context.Context, uid int64) (weave.UserMigration, error) {
	ctx, cancel := t.db.withTimeout(ctx)
	defer cancel()
	m, err := t.migrationTx(ctx, t.db.Read, uid, false)
	return m, t.db.Classify(err)
}

// Migrations lists every journaled move, by uid.
func (t *TokenDB) Migrations(ctx context.Context) ([]weave.UserMigration, error) {
	ctx, cancel := t.db.withTimeout(ctx)
	defer cancel()
	rows, err := t.db.Read.QueryContext(ctx, `SELECT uid, from_node, to_node, step, started_at, updated_at FROM user_migrations ORDER BY uid`)
	if err != nil {
		return nil, t.db.Classify(err)
	}
	defer rows.Close()
	var out []weave.UserMigration
	for rows.Next() {
		var m weave.UserMigration
		var step string
		if err := rows.Scan(&m.UID, &m.FromNode, &m.ToNode, &step, &m.StartedAt, &m.UpdatedAt); err != nil {
			return nil, t.db.Classify(err)
		}
		m.Step = weave.MoveStep(step)
		out = append(out, m)
	}
	return out, t.db.Classify(rows.Err())
}

// ClaimMigration takes uid's journaled move if its updated_at is before
// staleBefore: the row lock (a write transaction on SQLite) makes two
// claimers take turns, and the second sees the first one's fresh hold.
func (t *TokenDB) ClaimMigration(ctx context.Context, uid, staleBefore int64) (weave.UserMigration, error) {
	var m weave.UserMigration
	err := t.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		if m, err = t.migrationTx(ctx, tx, uid, true); err != nil {
			return err
		}
		if m.UpdatedAt >= staleBefore {
			return weave.ErrMoveTaken
		}
		next := t.nextHold(m.UpdatedAt)
		if _, err := tx.ExecContext(ctx, t.db.Q(`UPDATE user_migrations SET updated_at = ? WHERE uid = ?`), next, uid); err != nil {
			return err
		}
		m.UpdatedAt = next
		return nil
	})
	if err != nil {
		return weave.UserMigration{}, fmt.Errorf("token db: claim migration of %d: %w", uid, t.db.Classify(err))
	}
	return m, nil
}

// nextHold is a hold newer than held: the clock, or held+1 when the clock
// has not moved on (or went back), so that every hold is distinct.
func (t *TokenDB) nextHold(held int64) int64 {
	return max(t.nowMS(), held+1)
}

// setStepTx journals step ("" keeps the step) if held is still the hold of
// uid's move, and returns the new hold.
func (t *TokenDB) setStepTx(ctx context.Context, tx *sql.Tx, uid, held int64, step weave.MoveStep) (int64, error) {
	next := t.nextHold(held)
	var res sql.Result
	var err error
	if step == "" {
		res, err = tx.ExecContext(ctx, t.db.Q(`UPDATE user_migrations SET updated_at = ? WHERE uid = ? AND updated_at = ?`), next, uid, held)
	} else {
		res, err = tx.ExecContext(ctx, t.db.Q(`UPDATE user_migrations SET step = ?, updated_at = ? WHERE uid = ? AND updated_at = ?`), string(step), next, uid, held)
	}
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n != 1 {
		return 0, weave.ErrMoveTaken
	}
	return next, nil
}

// SetMigrationStep records the last completed step of uid's move (step ""
// only renews the hold) while the caller holds it.
func (t *TokenDB) SetMigrationStep(ctx context.Context, uid, held int64, step weave.MoveStep) (int64, error) {
	var next int64
	err := t.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		next, err = t.setStepTx(ctx, tx, uid, held, step)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("token db: migration of %d: %w", uid, t.db.Classify(err))
	}
	return next, nil
}

// FinishMigration removes uid's move from the journal while the caller
// holds it.
func (t *TokenDB) FinishMigration(ctx context.Context, uid, held int64) error {
	err := t.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, t.db.Q(`DELETE FROM user_migrations WHERE uid = ? AND updated_at = ?`), uid, held)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return weave.ErrMoveTaken
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("token db: finish migration of %d: %w", uid, t.db.Classify(err))
	}
	return nil
}

// RepointUser moves the record uid from node from to node to (same uid),
// moving one unit of load with it, and journals the step "repointed" in the
// same transaction, while the caller holds the move. A record already on to
// is left alone (a resumed move).
func (t *TokenDB) RepointUser(ctx context.Context, uid, from, to, held int64) (int64, error) {
	svc, err := t.service(ctx)
	if err != nil {
		return 0, err
	}
	var next int64
	err = t.db.WriteTx(ctx, func(tx *sql.Tx) error {
		// The hold first: a mover that lost it must not re-point.
		var err error
		if next, err = t.setStepTx(ctx, tx, uid, held, weave.MoveStepRepointed); err != nil {
			return err
		}
		var cur int64
		err = tx.QueryRowContext(ctx, t.db.Q(`SELECT nodeid FROM token_users WHERE uid = ? AND service = ?`+t.db.Dialect.ForUpdate()), uid, svc).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("uid %d: %w", uid, weave.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if cur == to {
			return nil
		}
		if cur != from {
			return fmt.Errorf("uid %d is on node %d, not %d", uid, cur, from)
		}
		if _, err := tx.ExecContext(ctx, t.db.Q(`UPDATE token_users SET nodeid = ? WHERE uid = ?`), to, uid); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, t.db.Q(`UPDATE token_nodes SET current_load = current_load - 1 WHERE id = ? AND current_load > 0`), from); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, t.db.Q(`UPDATE token_nodes SET current_load = current_load + 1 WHERE id = ?`), to)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("token db: repoint user: %w", t.db.Classify(err))
	}
	return next, nil
}

// NodeUserIDs returns the uids of the live (not replaced) records on a
// node, ascending.
func (t *TokenDB) NodeUserIDs(ctx context.Context, nodeID int64) ([]int64, error) {
	svc, err := t.service(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := t.db.withTimeout(ctx)
	defer cancel()
	rows, err := t.db.Read.QueryContext(ctx, t.db.Q(`SELECT uid FROM token_users WHERE nodeid = ? AND service = ? AND replaced_at IS NULL ORDER BY uid`), nodeID, svc)
	if err != nil {
		return nil, t.db.Classify(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var uid int64
		if err := rows.Scan(&uid); err != nil {
			return nil, t.db.Classify(err)
		}
		out = append(out, uid)
	}
	return out, t.db.Classify(rows.Err())
}

// SetNodeDatabaseURL records the shard database of a node that has none
// (a node ensured by `weave serve` for itself), so that operator tools can
// reach its shard. A node with a database URL keeps it; the one it has is
// returned.
func (t *TokenDB) SetNodeDatabaseURL(ctx context.Context, id int64, dsn string) (string, error) {
	var cur string
	err := t.updateNode(ctx, id, func(tx *sql.Tx, n weave.Node) error {
		cur = n.DatabaseURL
		if cur != "" {
			return nil
		}
		cur = dsn
		_, err := tx.ExecContext(ctx, t.db.Q(`UPDATE token_nodes SET database_url = ? WHERE id = ?`), dsn, id)
		return err
	})
	return cur, err
}

// NodeStates lists every node of the service without counting users: the
// cheap read that serving processes repeat every second.
func (t *TokenDB) NodeStates(ctx context.Context) ([]weave.Node, error) {
	svc, err := t.service(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := t.db.withTimeout(ctx)
	defer cancel()
	rows, err := t.db.Read.QueryContext(ctx, t.db.Q(`SELECT `+nodeCols+` FROM token_nodes n WHERE n.service = ? ORDER BY n.id`), svc)
	if err != nil {
		return nil, fmt.Errorf("token db: node states: %w", t.db.Classify(err))
	}
	defer rows.Close()
	var out []weave.Node
	for rows.Next() {
		var ns nodeScan
		if err := rows.Scan(ns.dest()...); err != nil {
			return nil, fmt.Errorf("token db: node states: %w", t.db.Classify(err))
		}
		out = append(out, *ns.node())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("token db: node states: %w", t.db.Classify(err))
	}
	return out, nil
}
