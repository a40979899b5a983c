// Package fleet runs a fleet of storage nodes: it serves several nodes from
// one process (routing by Host and path prefix), applies the operator-set
// node states (read from the token database and refreshed continuously, so a
// change reaches every process within seconds), and moves users between
// nodes' shards while they keep syncing (Migrator).
//
// Node states at the storage node:
//   - down: every storage request of the node's users gets 503 with
//     Retry-After (the node's retry_after, else DefaultRetryAfter);
//   - backoff: storage responses carry X-Weave-Backoff;
//   - draining: served normally (the token server assigns no new users).
//
// User moves at the storage node (see Migrator for the sequence): a user
// locked on the node gets 503 + Retry-After for writes (checked inside each
// write's transaction by the store, so the lock is exact), reads are still
// served; a user marked moved gets 401 from the node, so that Firefox fetches
// a new token and lands on the user's new node.
package fleet

import (
	"context"
	"time"

	"github.com/weave-sync/weave"
)

// Shard is the store of one node: a weave.Store whose users can be moved.
type Shard interface {
	weave.Store
	weave.UserMover
}

// Directory is the token database as the fleet needs it: nodes, user
// records and the journal of moves (implemented by *sqlstore.TokenDB).
type Directory interface {
	weave.TokenDB
	weave.MoveJournal
	NodeUserIDs(ctx context.Context, nodeID int64) ([]int64, error)
	// UserRecords lists the newest records of an account, replaced ones
	// too, newest first.
	UserRecords(ctx context.Context, email string) ([]weave.TokenUser, error)
}

// Defaults.
const (
	// DefaultRefresh is how often node states and move marks are re-read.
	DefaultRefresh = time.Second
	// DefaultRetryAfter is the Retry-After of a down node without its own.
	DefaultRetryAfter = 5 * time.Minute
	// DefaultBackoff is the X-Weave-Backoff of a backoff node without its
	// own.
	DefaultBackoff = 5 * time.Minute
	// DefaultHeartbeat is how often a running move renews its hold on its
	// journal row.
	DefaultHeartbeat = 10 * time.Second
	// DefaultResumeAfter is how long a journaled move may go without its
	// hold being renewed before a Resumer finishes it: many heartbeats, so
	// that a slow token database does not make a live mover look dead.
	DefaultResumeAfter = 3 * time.Minute
)
