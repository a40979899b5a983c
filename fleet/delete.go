package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/weave-sync/weave"
)

// DeletedTarget is the move target recorded for a deleted user.
const DeletedTarget = "(deleted)"

// DeleteUser removes a user's Sync data from the node that holds it and
// leaves the user marked moved there (target DeletedTarget), so that the
// node answers 401 to a token it still holds (every serving process sees the
// mark within its --state-refresh; the caller refreshes its own Watcher to
// refuse at once). The user's record in the token database is left to the
// caller. The steps: lock (no write of a syncing client lands after the
// purge), purge, mark. A user being moved is refused: finish the move first.
func (m *Migrator) DeleteUser(ctx context.Context, u weave.TokenUser) error {
	if _, err := m.Dir.Migration(ctx, u.UID); err == nil {
		return fmt.Errorf("uid %d is being moved: finish the move first (`weave user migrate %d`)", u.UID, u.UID)
	}
	if u.Node == nil {
		return nil // its node is gone, and its data with it
	}
	shard, _, err := m.shard(ctx, u.NodeID)
	if err != nil {
		return err
	}
	if err := shard.LockUser(ctx, u.UID, "deleted"); err != nil && !errors.Is(err, weave.ErrUserMoved) {
		return err
	}
	if err := shard.PurgeUser(ctx, u.UID); err != nil {
		return err
	}
	return shard.MarkMoved(ctx, u.UID, DeletedTarget)
}

// DeleteAccount deletes the Sync data of every token record of an account
// (key "<fxa uid>@<domain>"), old uids too, and retires the account so it
// never gets a token again. It returns the uids whose data it removed.
func (m *Migrator) DeleteAccount(ctx context.Context, email string) ([]int64, error) {
	return m.deleteRecords(ctx, email, m.Dir.RetireUser)
}

// ReplaceAccount deletes the Sync data of every token record of an account
// and marks the records replaced rather than retired: the account's name
// may be taken again, and then starts on a fresh uid (a deleted Sync 1.1
// account, whose username is the key).
func (m *Migrator) ReplaceAccount(ctx context.Context, email string) ([]int64, error) {
	return m.deleteRecords(ctx, email, m.Dir.ReplaceUserRecords)
}

// deleteRecords closes an account's records with close, then deletes the
// data behind each.
func (m *Migrator) deleteRecords(ctx context.Context, email string, close func(context.Context, string) error) ([]int64, error) {
	recs, err := m.Dir.UserRecords(ctx, email)
	if err != nil {
		return nil, err
	}
	// Close first: from now on the token server (or node lookup) hands out
	// no token for these records, so no new uid can appear behind the
	// purge.
	if err := close(ctx, email); err != nil {
		return nil, err
	}
	var uids []int64
	for _, u := range recs {
		if err := m.DeleteUser(ctx, u); err != nil {
			return uids, fmt.Errorf("delete the data of uid %d: %w", u.UID, err)
		}
		uids = append(uids, u.UID)
	}
	return uids, nil
}

// Deleter carries out the deletion of accounts' Sync data for a service
// that deletes accounts (built-in accounts, Sync 1.1 accounts, their CLI
// commands).
type Deleter struct {
	// Migrator returns a Migrator on the token database for one deletion;
	// the Deleter closes it after.
	Migrator func() *Migrator
	// Nodes, when set, are the nodes this process serves: their shards
	// are used as they are, and the Watcher is refreshed after a
	// deletion, so that they refuse the deleted uids at once instead of
	// at the next refresh.
	Nodes *NodeSet
}

// DeleteAccount is Migrator.DeleteAccount: the account is retired.
func (d *Deleter) DeleteAccount(ctx context.Context, email string) error {
	return d.delete(ctx, email, (*Migrator).DeleteAccount)
}

// ReplaceAccount is Migrator.ReplaceAccount: the account's name may be
// taken again.
func (d *Deleter) ReplaceAccount(ctx context.Context, email string) error {
	return d.delete(ctx, email, (*Migrator).ReplaceAccount)
}

func (d *Deleter) delete(ctx context.Context, email string, del func(*Migrator, context.Context, string) ([]int64, error)) error {
	m := d.Migrator()
	if d.Nodes != nil {
		open := m.Open
		m.Open = func(ctx context.Context, n weave.Node) (Shard, error) {
			if node := d.Nodes.Node(n.URL); node != nil {
				return keepOpenShard{node.Shard}, nil
			}
			return open(ctx, n)
		}
	}
	defer m.Close()
	_, err := del(m, ctx, email)
	if d.Nodes != nil {
		if rerr := d.Nodes.cfg.Watcher.Refresh(ctx); err == nil {
			err = rerr
		}
	}
	return err
}

// keepOpenShard lends a served node's shard, whose Close belongs to someone
// else, to a Migrator or a cache (both close what they are given).
type keepOpenShard struct{ Shard }

func (keepOpenShard) Close() error { return nil }
