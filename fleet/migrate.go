package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/weave-sync/weave"
)

// Migrator moves users between nodes' shards while the fleet serves them.
//
// One move, journaled in the token database (user_migrations), each step
// idempotent so that running the move again after a crash finishes it:
//
//	started    journal row written (user untouched)
//	locked     the user is marked locked on the old shard: from here no
//	           write of the user commits there (503 + Retry-After)
//	copied     the old shard's data replaced the new shard's copy in one
//	           transaction and both shards' digests (counts and a SHA-256
//	           per collection and open batch) equal the exported data's
//	repointed  the token record points at the new node (same uid), in the
//	           transaction that journals the step
//	(done)     the old shard marks the user moved (401 from then on), waits
//	           Settle so every process has seen the mark, purges the old
//	           data and the journal row goes
//
// Until "repointed" the user's record names the old node, whose data is
// whole (only writes are refused); after it, the new node holds the verified
// copy and the old one only answers 503/401. So a crash at any point leaves
// the user whole on exactly one node, the one the token server hands out.
type Migrator struct {
	Dir Directory
	// Open returns the shard of a node; the Migrator keeps and closes it.
	Open func(ctx context.Context, n weave.Node) (Shard, error)
	// Settle is how long to wait after marking a user moved (or clearing
	// a stale mark on the new node) so that every process serving the
	// node has re-read the marks: at least twice the serving processes'
	// refresh interval. Zero means 2 × DefaultRefresh.
	Settle time.Duration
	// AfterStep, when set, runs after each completed step; an error stops
	// the move there as a crash would (tests).
	AfterStep func(uid int64, step weave.MoveStep) error
	// Heartbeat is how often a running move renews its hold on its journal
	// row, so that a Resumer can tell it from a dead one (see
	// weave.MoveJournal). Zero means DefaultHeartbeat.
	Heartbeat time.Duration

	mu     sync.Mutex
	shards map[int64]Shard
}

// ErrVerify: the copy did not match the source; the move was rolled back.
var ErrVerify = errors.New("fleet: copy verification failed")

// Close closes every shard the Migrator opened.
func (m *Migrator) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, s := range m.shards {
		errs = append(errs, s.Close())
	}
	m.shards = nil
	return errors.Join(errs...)
}

func (m *Migrator) shard(ctx context.Context, nodeID int64) (Shard, weave.Node, error) {
	n, err := m.Dir.NodeByID(ctx, nodeID)
	if err != nil {
		return nil, n, fmt.Errorf("node %d: %w", nodeID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.shards[nodeID]; ok {
		return s, n, nil
	}
	s, err := m.Open(ctx, n)
	if err != nil {
		return nil, n, fmt.Errorf("open shard of %s: %w", n.URL, err)
	}
	if m.shards == nil {
		m.shards = map[int64]Shard{}
	}
	m.shards[nodeID] = s
	return s, n, nil
}

func (m *Migrator) settle() time.Duration {
	if m.Settle > 0 {
		return m.Settle
	}
	return 2 * DefaultRefresh
}

func (m *Migrator) heartbeat() time.Duration {
	if m.Heartbeat > 0 {
		return m.Heartbeat
	}
	return DefaultHeartbeat
}

func (m *Migrator) after(uid int64, step weave.MoveStep) error {
	if m.AfterStep != nil {
		return m.AfterStep(uid, step)
	}
	return nil
}

// Result describes one finished move.
type Result struct {
	UID      int64
	From, To string
	Records  int64
	// Locked is how long the user's writes were refused.
	Locked time.Duration
	// Resumed is set when the move continued a journaled one.
	Resumed bool
}

// MigrateUser moves uid to the node at toURL, or finishes the journaled
// move of uid (toURL may then be "" or must name that move's target). A
// journaled move is taken over whoever holds it: an operator reruns a move
// whose mover died, and a mover still running stops at its next journal
// write.
func (m *Migrator) MigrateUser(ctx context.Context, uid int64, toURL string) (Result, error) {
	j, err := m.Dir.Migration(ctx, uid)
	resumed := err == nil
	switch {
	case resumed:
		if toURL != "" {
			to, err := m.Dir.NodeByURL(ctx, toURL)
			if err != nil {
				return Result{}, fmt.Errorf("node %s: %w", toURL, err)
			}
			if to.ID != j.ToNode {
				return Result{}, fmt.Errorf("uid %d has an unfinished move to node %d: run the move without --to to finish it first", uid, j.ToNode)
			}
		}
	case errors.Is(err, weave.ErrNotFound):
		if toURL == "" {
			return Result{}, errors.New("no target node given")
		}
		u, err := m.Dir.UserByUID(ctx, uid)
		if err != nil {
			return Result{}, err
		}
		to, err := m.Dir.NodeByURL(ctx, toURL)
		if err != nil {
			return Result{}, fmt.Errorf("node %s: %w", toURL, err)
		}
		if u.NodeID == to.ID {
			return Result{UID: uid, From: to.URL, To: to.URL}, nil
		}
		if to.State == weave.NodeDown || to.State == weave.NodeDraining {
			return Result{}, fmt.Errorf("node %s is %s: it takes no users", to.URL, to.State)
		}
		if j, err = m.Dir.StartMigration(ctx, uid, u.NodeID, to.ID); err != nil {
			return Result{}, err
		}
		// StartMigration returns a move journaled meanwhile as it is; the
		// claim below makes the hold this process's own either way.
		resumed = j.Step != weave.MoveStepStarted
	default:
		return Result{}, err
	}
	if j, err = m.Dir.ClaimMigration(ctx, uid, math.MaxInt64); err != nil {
		return Result{}, err
	}
	return m.run(ctx, j, resumed)
}

// run finishes the journaled move j, whose hold (j.UpdatedAt) the caller
// has just claimed. While it runs, a heartbeat renews the hold; when the
// hold is lost (another process took the move over, or the token database
// cannot be reached to renew it) the move stops, as a crash would, and the
// error wraps weave.ErrMoveTaken or the renewal's error.
func (m *Migrator) run(ctx context.Context, j weave.UserMigration, resumed bool) (res Result, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	h := &hold{uid: j.UID, at: j.UpdatedAt}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		m.renew(ctx, h, cancel)
	}()
	defer func() {
		cancel(nil)
		<-hbDone
		if c := context.Cause(ctx); err != nil && c != nil && !errors.Is(err, c) {
			err = fmt.Errorf("%w (move stopped: %w)", err, c)
		}
	}()
	return m.steps(ctx, j, h, resumed)
}

// hold is a mover's hold on a journal row (see weave.MoveJournal).
type hold struct {
	uid int64
	mu  sync.Mutex // serialises the journal writes of one move
	at  int64
}

// write runs a journal write with the current hold and keeps the new one.
func (h *hold) write(fn func(held int64) (int64, error)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	next, err := fn(h.at)
	if err != nil {
		return err
	}
	h.at = next
	return nil
}

// renew renews h every heartbeat until ctx ends; a failed renewal cancels
// the move (stopping is always safe: the journal says where it was).
func (m *Migrator) renew(ctx context.Context, h *hold, cancel context.CancelCauseFunc) {
	t := time.NewTicker(m.heartbeat())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := h.write(func(held int64) (int64, error) { return m.Dir.SetMigrationStep(ctx, h.uid, held, "") })
		if err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("renew the hold on uid %d's move: %w", h.uid, err))
			return
		}
	}
}

func (m *Migrator) steps(ctx context.Context, j weave.UserMigration, h *hold, resumed bool) (Result, error) {
	uid := j.UID
	src, from, err := m.shard(ctx, j.FromNode)
	if err != nil {
		return Result{}, err
	}
	dst, to, err := m.shard(ctx, j.ToNode)
	if err != nil {
		return Result{}, err
	}
	res := Result{UID: uid, From: from.URL, To: to.URL, Resumed: resumed}
	lockedAt := time.Now()
	if j.Step != weave.MoveStepStarted {
		// The lock's time is not journaled; the move's start is close.
		lockedAt = time.UnixMilli(j.StartedAt)
	}
	step := j.Step
	for step != "" {
		switch step {
		case weave.MoveStepStarted:
			lockedAt = time.Now()
			// Renewed first: a mover that lost the move must not lock
			// a user whose move another rolled back.
			if err := h.write(func(held int64) (int64, error) { return m.Dir.SetMigrationStep(ctx, uid, held, "") }); err != nil {
				return res, err
			}
			if err := src.LockUser(ctx, uid, to.URL); err != nil {
				return res, fmt.Errorf("lock uid %d on %s: %w", uid, from.URL, err)
			}
			step = weave.MoveStepLocked
		case weave.MoveStepLocked:
			n, err := m.copy(ctx, uid, src, dst)
			if err != nil {
				if errors.Is(err, ErrVerify) {
					// Roll back: the user stays where they are. The
					// hold is renewed first: a mover that lost the
					// move must not undo another's copy.
					if h.write(func(held int64) (int64, error) { return m.Dir.SetMigrationStep(ctx, uid, held, "") }) == nil {
						_ = dst.PurgeUser(ctx, uid)
						_ = src.UnlockUser(ctx, uid)
						_ = h.write(func(held int64) (int64, error) { return 0, m.Dir.FinishMigration(ctx, uid, held) })
					}
				}
				return res, fmt.Errorf("copy uid %d from %s to %s: %w", uid, from.URL, to.URL, err)
			}
			res.Records = n
			step = weave.MoveStepCopied
		case weave.MoveStepCopied:
			if err := h.write(func(held int64) (int64, error) { return m.Dir.RepointUser(ctx, uid, from.ID, to.ID, held) }); err != nil {
				return res, err
			}
			res.Locked = time.Since(lockedAt)
			if err := m.after(uid, weave.MoveStepRepointed); err != nil {
				return res, err
			}
			step = weave.MoveStepRepointed
			continue // RepointUser journaled the step
		case weave.MoveStepRepointed:
			if res.Locked == 0 {
				res.Locked = time.Since(lockedAt)
			}
			if err := src.MarkMoved(ctx, uid, to.URL); err != nil {
				return res, err
			}
			if err := m.after(uid, "marked"); err != nil {
				return res, err
			}
			if err := sleep(ctx, m.settle()); err != nil {
				return res, err
			}
			// Renewed first: a mover that lost the move while it slept
			// leaves the purge to the one that took it over.
			if err := h.write(func(held int64) (int64, error) { return m.Dir.SetMigrationStep(ctx, uid, held, "") }); err != nil {
				return res, err
			}
			if err := src.PurgeUser(ctx, uid); err != nil {
				return res, err
			}
			if err := h.write(func(held int64) (int64, error) { return 0, m.Dir.FinishMigration(ctx, uid, held) }); err != nil {
				return res, err
			}
			return res, nil
		default:
			return res, fmt.Errorf("uid %d: unknown journal step %q", uid, step)
		}
		if err := h.write(func(held int64) (int64, error) { return m.Dir.SetMigrationStep(ctx, uid, held, step) }); err != nil {
			return res, err
		}
		if err := m.after(uid, step); err != nil {
			return res, err
		}
	}
	return res, nil
}

// copy replaces dst's copy of uid with src's data and verifies both.
func (m *Migrator) copy(ctx context.Context, uid int64, src, dst Shard) (int64, error) {
	// A mover that lost its hold while another finished the move must not
	// copy the purged old shard over the new one.
	if st, _, err := src.MoveState(ctx, uid); err != nil {
		return 0, err
	} else if st == weave.MoveMoved {
		return 0, fmt.Errorf("uid %d is already marked moved on the old shard: %w", uid, weave.ErrMoveTaken)
	}
	data, err := src.ExportUser(ctx, uid)
	if err != nil {
		return 0, err
	}
	stale, _, err := dst.MoveState(ctx, uid)
	if err != nil {
		return 0, err
	}
	if err := dst.ImportUser(ctx, data); err != nil {
		return 0, err
	}
	want := weave.DigestUserData(data)
	for _, side := range []struct {
		name string
		s    Shard
	}{{"new", dst}, {"old", src}} {
		got, err := side.s.DigestUser(ctx, uid)
		if err != nil {
			return 0, err
		}
		if !maps.Equal(got, want) {
			return 0, fmt.Errorf("%w: %s shard differs: %s", ErrVerify, side.name, diffDigests(want, got))
		}
	}
	if stale == weave.MoveMoved {
		// The user once left the new node, whose processes still 401
		// them until they re-read the (now cleared) mark.
		if err := sleep(ctx, m.settle()); err != nil {
			return 0, err
		}
	}
	var n int64
	for _, c := range data.Collections {
		n += int64(len(c.BSOs))
	}
	return n, nil
}

func diffDigests(want, got map[string]weave.CollectionDigest) string {
	var keys []string
	for k := range want {
		if got[k] != want[k] {
			keys = append(keys, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return fmt.Sprintf("collections %q", keys)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
