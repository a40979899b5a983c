package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Group commit. On SQLite every commit waits for an fsync of the WAL
// (synchronous=FULL), one commit at a time on the single write connection:
// under concurrent writes the fsyncs, not the statements, set the pace. So
// the writes of Store queue for one goroutine, the committer, which runs
// all the writes waiting when it becomes free in one transaction, each in
// a savepoint of its own (a write alone needs none), and commits them with
// one fsync:
//
//   - a member that fails is rolled back to its savepoint alone and gets
//     its own error; the others are unaffected, as if it had never run;
//   - members run one after the other in the order they queued, each
//     seeing the writes of those before it, exactly as serial transactions
//     on the one connection would: their results (timestamps, conflicts,
//     quota) are what they would have been serially;
//   - nobody hears of success before the shared COMMIT returned, so an
//     acknowledged write is durable; a failed COMMIT fails every member;
//   - a member's request context only decides whether it runs: once
//     running, its statements use the group's context, since a statement
//     interrupted inside a transaction may roll back the whole transaction.

// maxGroup bounds the members of one group: the writes a failed commit
// takes down with it, and the wait of the first member for the last.
const maxGroup = 64

// errGroupAborted is what members get whose work was lost with their
// group's transaction through no fault of their own (another member's
// statement ended the transaction): they run again, in another group, as
// far as DB.MaxRetries allows; past that they fail with the cause.
var errGroupAborted = errors.New("sqlstore: group transaction aborted")

// groupMember is one write waiting for, or running in, a group.
type groupMember struct {
	ctx    context.Context
	fn     func(ctx context.Context, tx *sql.Tx) error
	done   chan error
	queued time.Time
}

// memberPanic carries a member's panic back to its own goroutine.
type memberPanic struct{ v any }

func (p memberPanic) Error() string { return fmt.Sprint("sqlstore: write panicked: ", p.v) }

type committer struct {
	db      *DB
	queue   chan *groupMember
	stop    chan struct{}
	stopped chan struct{}
	groups  atomic.Uint64
	members atomic.Uint64
	wait    atomic.Int64 // nanoseconds
}

// GroupStats counts the groups committed (or failed) so far and their
// members, and the writes queued now. Wait is the members' total time
// from queueing to their group's outcome: what the committer adds to
// a write's latency, its own statements and the shared commit included.
type GroupStats struct {
	Groups, Members uint64
	Queued          int
	Wait            time.Duration
}

// GroupStats reports the group committer's counters (zero without
// GroupCommit).
func (db *DB) GroupStats() GroupStats {
	c := db.grouper()
	if c == nil {
		return GroupStats{}
	}
	return GroupStats{Groups: c.groups.Load(), Members: c.members.Load(), Queued: len(c.queue), Wait: time.Duration(c.wait.Load())}
}

func (db *DB) grouper() *committer {
	if !db.GroupCommit {
		return nil
	}
	db.groupOnce.Do(func() {
		db.group = &committer{
			db:      db,
			queue:   make(chan *groupMember, 1024),
			stop:    make(chan struct{}),
			stopped: make(chan struct{}),
		}
		go db.group.run()
	})
	return db.group
}

// stopGroup ends the committer after the group it runs, if any.
func (db *DB) stopGroup() {
	if db.group == nil {
		return
	}
	db.groupStop.Do(func() {
		close(db.group.stop)
		<-db.group.stopped
	})
}

// GroupWriteTx is WriteTx for writes that may share their transaction and
// its commit with concurrent ones (see Group commit above) when
// db.GroupCommit is set. fn must run its statements with the context it is
// given, and have no effects outside the transaction; it may run more than
// once. Errors are classified as by WriteTx.
func (db *DB) GroupWriteTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	c := db.grouper()
	if c == nil {
		return db.retry(ctx, true, func(ctx context.Context) error {
			return db.tryTx(ctx, db.Write, nil, func(tx *sql.Tx) error { return fn(ctx, tx) })
		})
	}
	return db.retry(ctx, true, func(ctx context.Context) error { return c.submit(ctx, fn) })
}

// submit queues fn and waits for the outcome of its group.
func (c *committer) submit(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	m := &groupMember{ctx: ctx, fn: fn, done: make(chan error, 1), queued: time.Now()}
	select {
	case c.queue <- m:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stopped:
		return sql.ErrConnDone
	}
	// Wait for the verdict even when ctx ends meanwhile: once running,
	// the write commits or not with its group.
	var err error
	select {
	case err = <-m.done:
	case <-c.stopped:
		// The committer answers every member it took before it stops.
		select {
		case err = <-m.done:
		default:
			return sql.ErrConnDone
		}
	}
	var p memberPanic
	if errors.As(err, &p) {
		panic(p.v)
	}
	return err
}

func (c *committer) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.stop:
			c.drainStopped()
			return
		case m := <-c.queue:
			c.commit(m)
		}
	}
}

// drainStopped fails the members still queued when the committer stops.
func (c *committer) drainStopped() {
	for {
		select {
		case m := <-c.queue:
			m.done <- sql.ErrConnDone
		default:
			return
		}
	}
}

// commit runs first and whatever else is queued as one group.
func (c *committer) commit(first *groupMember) {
	members := []*groupMember{first}
gather:
	for len(members) < maxGroup {
		select {
		case m := <-c.queue:
			members = append(members, m)
		default:
			break gather
		}
	}
	// Members whose requests gave up while queued do not run.
	live := members[:0]
	for _, m := range members {
		if err := m.ctx.Err(); err != nil {
			m.done <- err
			continue
		}
		live = append(live, m)
	}
	if len(live) == 0 {
		return
	}
	c.groups.Add(1)
	c.members.Add(uint64(len(live)))
	errs := c.runGroup(live)
	end := time.Now()
	var wait time.Duration
	for i, m := range live {
		wait += end.Sub(m.queued)
		m.done <- errs[i]
	}
	c.wait.Add(int64(wait))
}

// runGroup runs the members in one transaction and returns each one's
// outcome.
func (c *committer) runGroup(members []*groupMember) []error {
	errs := make([]error, len(members))
	timeout := c.db.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	failAll := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	tx, err := c.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return failAll(err)
	}
	if len(members) == 1 {
		// Alone, a write has the transaction to itself: no savepoint.
		if errs[0] = runMember(ctx, tx, members[0]); errs[0] != nil {
			_ = tx.Rollback()
			return errs
		}
		members = nil
	}
	for i, m := range members {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT member"); err != nil {
			errs[i] = err
			return c.abort(tx, errs, i)
		}
		if errs[i] = runMember(ctx, tx, m); errs[i] == nil {
			if _, err := tx.ExecContext(ctx, "RELEASE member"); err != nil {
				errs[i] = err
				return c.abort(tx, errs, i)
			}
			continue
		}
		// Undo this member alone. If that fails, its error ended the
		// whole transaction (SQLite rolls back on some I/O errors).
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO member"); err != nil {
			return c.abort(tx, errs, i)
		}
		if _, err := tx.ExecContext(ctx, "RELEASE member"); err != nil {
			return c.abort(tx, errs, i)
		}
	}
	if err := tx.Commit(); err != nil {
		c.cleanUp()
		return failAll(err)
	}
	return errs
}

// abort rolls back a group whose transaction member i ended: i keeps its
// error; every other member, done or not, runs again elsewhere.
func (c *committer) abort(tx *sql.Tx, errs []error, i int) []error {
	_ = tx.Rollback()
	c.cleanUp()
	lost := fmt.Errorf("%w: %w", errGroupAborted, errs[i])
	for j := range errs {
		if j != i && (j > i || errs[j] == nil) {
			errs[j] = lost
		}
	}
	return errs
}

// cleanUp ends a transaction that a failed COMMIT may have left open on
// the write connection (SQLite keeps it open after a deferred constraint
// failed, and may after I/O errors), so the next BEGIN does not fail. With
// GroupCommit the Write pool has its one connection, free now.
func (c *committer) cleanUp() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = c.db.Write.ExecContext(ctx, "ROLLBACK") // fails harmlessly when none is open
}

func runMember(ctx context.Context, tx *sql.Tx, m *groupMember) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = memberPanic{p}
		}
	}()
	return m.fn(ctx, tx)
}
