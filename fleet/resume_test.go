package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
)

// Small thresholds: a live mover renews every resumeBeat, a move idle for
// resumeAfter is taken. The ratio is what a loaded machine must not break:
// a renewal is a write to the token database, and at load 20-25 one write
// (an fsync queued behind other tests' fsyncs, a goroutine not scheduled)
// took longer than the 400 ms once allowed, so that a live mover lost its
// move (TestResumeLeavesLiveMoverAlone/postgres and /sqlite, each seen once).
const (
	resumeBeat  = 40 * time.Millisecond
	resumeAfter = 2 * time.Second
)

// resumers starts n Resumers, as n serve processes sharing the token
// database would run them, each with its own Migrator; resumed counts the
// moves they finished and failed the ones that failed.
func (w *world) resumers(ctx context.Context, n int, resumed, failed *atomic.Int64) {
	var wg sync.WaitGroup
	for range n {
		m := w.migrator()
		m.Heartbeat = resumeBeat
		r := &fleet.Resumer{Migrator: m, After: resumeAfter, OnResume: func(res fleet.Result, err error) {
			if err != nil {
				w.t.Logf("resume of uid %d: %v", res.UID, err)
				failed.Add(1)
				return
			}
			if !res.Resumed {
				w.t.Errorf("uid %d: result not marked resumed", res.UID)
			}
			resumed.Add(1)
		}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Run(ctx)
		}()
	}
	w.t.Cleanup(wg.Wait)
}

// waitJournal waits until uid's move left the journal.
func (w *world) waitJournal(uid int64, within time.Duration) time.Duration {
	w.t.Helper()
	start := time.Now()
	for {
		_, err := w.tokens.Migration(w.ctx, uid)
		if errors.Is(err, weave.ErrNotFound) {
			return time.Since(start)
		}
		if err != nil {
			w.t.Fatal(err)
		}
		if time.Since(start) > within {
			w.t.Fatalf("uid %d: move still journaled after %v", uid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writer keeps writing to uid on the node the token database names and
// remembers every acknowledged write; stop ends it and checks that every
// one of them is on the user's node.
func (w *world) writer(uid int64, coll string) (stop func()) {
	var acked []string
	var refused int
	quit := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(quit) }); <-done }
	// A test that stops early (Fatal) never calls stop: the writer must
	// not outlive it and touch closed databases.
	w.t.Cleanup(halt)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			// Not nodeOf: Fatal is for the test's own goroutine.
			u, err := w.tokens.UserByUID(w.ctx, uid)
			if err != nil {
				w.t.Errorf("writer: node of uid %d: %v", uid, err)
				return
			}
			id := fmt.Sprintf("w%05d", i)
			_, err = w.shards[u.NodeID].PutBSO(w.ctx, uid, coll, weave.Update{ID: id, Payload: weave.Some(id)}, weave.Precondition{})
			switch {
			case err == nil:
				acked = append(acked, id)
			case errors.Is(err, weave.ErrUnavailable), errors.Is(err, weave.ErrUserMoved):
				refused++
				time.Sleep(5 * time.Millisecond)
			default:
				w.t.Errorf("write: %v", err)
				return
			}
		}
	}()
	return func() {
		w.t.Helper()
		halt()
		s := w.shards[w.nodeOf(uid)]
		for _, id := range acked {
			if _, err := s.GetBSO(w.ctx, uid, coll, id); err != nil {
				w.t.Errorf("uid %d: acknowledged write %s lost: %v", uid, id, err)
			}
		}
		w.t.Logf("uid %d: %d writes acknowledged, %d refused", uid, len(acked), refused)
	}
}

// without drops the digests of a collection (the one a writer changes) and
// of the storage as a whole (its timestamp moves with the writes).
func without(d map[string]weave.CollectionDigest, coll string) map[string]weave.CollectionDigest {
	d = maps.Clone(d)
	delete(d, coll)
	delete(d, "")
	return d
}

// TestResumeInterruptedMoves: a move whose mover died after each journaled
// step (and right after journaling it) is finished by the Resumers within
// the threshold, by exactly one of the two, with the user whole on the node
// the token database names, every acknowledged write there, and the old
// copy gone.
func TestResumeInterruptedMoves(t *testing.T) {
	steps := []weave.MoveStep{weave.MoveStepStarted, weave.MoveStepLocked, weave.MoveStepCopied, weave.MoveStepRepointed, "marked"}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b, 2)
			ctx, cancel := context.WithCancel(w.ctx)
			defer cancel()
			var resumed, failed atomic.Int64
			for _, step := range steps {
				uid := w.user(fmt.Sprintf("dies-%s@example.com", step))
				w.openBatch(uid)
				want := without(w.digest(w.nodes[0].ID, uid), "history")
				stop := w.writer(uid, "history")
				time.Sleep(20 * time.Millisecond)
				if step == weave.MoveStepStarted {
					// Died right after journaling the move.
					if _, err := w.tokens.StartMigration(w.ctx, uid, w.nodes[0].ID, w.nodes[1].ID); err != nil {
						t.Fatal(err)
					}
				} else {
					m := w.migrator()
					m.Heartbeat = resumeBeat
					w.crashAfter(m, uid, step)
				}
				before := resumed.Load()
				if before == 0 && step == steps[0] {
					w.resumers(ctx, 2, &resumed, &failed)
				}
				took := w.waitJournal(uid, 20*resumeAfter)
				t.Logf("died after %s: finished %v later", step, took.Round(time.Millisecond))
				time.Sleep(30 * time.Millisecond) // writes on the new node
				stop()
				if got := resumed.Load() - before; got != 1 {
					t.Errorf("died after %s: resumed %d times", step, got)
				}
				if w.nodeOf(uid) != w.nodes[1].ID {
					t.Fatalf("died after %s: user on node %d", step, w.nodeOf(uid))
				}
				if got := without(w.digest(w.nodes[1].ID, uid), "history"); !maps.Equal(got, want) {
					t.Errorf("died after %s: not whole on the new node:\n got %v\nwant %v", step, got, want)
				}
				if d, _ := w.shards[w.nodes[0].ID].ExportUser(w.ctx, uid); d.Exists {
					t.Errorf("died after %s: old data left", step)
				}
				if st, _, _ := w.shards[w.nodes[0].ID].MoveState(w.ctx, uid); st != weave.MoveMoved {
					t.Errorf("died after %s: old node marks the user %q", step, st)
				}
			}
			if n := failed.Load(); n != 0 {
				t.Errorf("%d resumed moves failed", n)
			}
		})
	}
}

// TestResumeLeavesLiveMoverAlone: a mover whose step takes several times
// the threshold keeps its move (its heartbeat renews the hold); a mover
// stalled that long without renewing loses it to a Resumer, which finishes
// the move, and then stops without touching the user.
func TestResumeLeavesLiveMoverAlone(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b, 2)
			ctx, cancel := context.WithCancel(w.ctx)
			defer cancel()
			var resumed, failed atomic.Int64
			w.resumers(ctx, 2, &resumed, &failed)

			// Live: slow, but renewing.
			uid := w.user("slow@example.com")
			want := w.digest(w.nodes[0].ID, uid)
			m := w.migrator()
			m.Heartbeat = resumeBeat
			m.AfterStep = afterStep(weave.MoveStepLocked, func() error {
				// Past the threshold, and through several of the
				// Resumers' scans (every resumeAfter/4).
				time.Sleep(2 * resumeAfter)
				return nil
			})
			res, err := m.MigrateUser(w.ctx, uid, w.nodes[1].URL)
			if err != nil || res.Resumed {
				t.Fatalf("live mover: %+v %v", res, err)
			}
			if n := resumed.Load() + failed.Load(); n != 0 {
				t.Fatalf("a live mover's move was resumed %d times", n)
			}
			w.checkWhole(uid, want)

			// Stalled: no renewal while it sleeps.
			uid = w.user("stalled@example.com")
			want = w.digest(w.nodes[0].ID, uid)
			m = w.migrator()
			m.Heartbeat = time.Hour
			m.AfterStep = afterStep(weave.MoveStepLocked, func() error {
				w.waitJournal(uid, 20*resumeAfter)
				return nil
			})
			if _, err := m.MigrateUser(w.ctx, uid, w.nodes[1].URL); !errors.Is(err, weave.ErrMoveTaken) {
				t.Errorf("stalled mover: %v", err)
			}
			if n := resumed.Load(); n != 1 {
				t.Errorf("stalled mover's move resumed %d times", n)
			}
			if w.nodeOf(uid) != w.nodes[1].ID {
				t.Fatalf("user on node %d", w.nodeOf(uid))
			}
			w.checkWhole(uid, want)
			if d, _ := w.shards[w.nodes[0].ID].ExportUser(w.ctx, uid); d.Exists {
				t.Errorf("old data left")
			}
			if _, err := w.tokens.Migration(w.ctx, uid); !errors.Is(err, weave.ErrNotFound) {
				t.Errorf("journal: %v", err)
			}
		})
	}
}
