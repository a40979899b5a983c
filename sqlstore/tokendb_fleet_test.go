package sqlstore_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// TestTokenDBMoveHold: a journaled move is held by one process at a time.
// Claimers race for an idle row and exactly one wins; a fresh row is not
// taken; every journal write with a hold that was taken over is refused and
// changes nothing, the re-point included; holds stay distinct when the clock
// does not move.
func TestTokenDBMoveHold(t *testing.T) { forEachBackend(t, testTokenDBMoveHold) }

func testTokenDBMoveHold(t *testing.T, b tokenBackend) {
	ctx := context.Background()
	var now atomic.Int64
	now.Store(1_700_000_000_000)
	tdb := b.openTokenDB(t, sqlstore.TokenDBOptions{Now: func() time.Time { return time.UnixMilli(now.Load()) }})
	n1 := mustAddNode(t, tdb, "https://n1.example.com", 10)
	u := mustAllocate(t, tdb, "hold@example.com", weave.NewTokenUser{Generation: 1})
	n2 := mustAddNode(t, tdb, "https://n2.example.com", 10)
	j, err := tdb.StartMigration(ctx, u.UID, n1.ID, n2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.ClaimMigration(ctx, u.UID, j.UpdatedAt); !errors.Is(err, weave.ErrMoveTaken) {
		t.Fatalf("claim of a row not yet idle: %v", err)
	}
	if _, err := tdb.ClaimMigration(ctx, u.UID+1, math.MaxInt64); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("claim of no move: %v", err)
	}

	// Eight claimers race for the idle row: one takes it.
	var wins atomic.Int64
	var held atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tdb.ClaimMigration(ctx, u.UID, j.UpdatedAt+1)
			switch {
			case err == nil:
				wins.Add(1)
				held.Store(c.UpdatedAt)
			case !errors.Is(err, weave.ErrMoveTaken):
				t.Errorf("claim: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claimers took the move", wins.Load())
	}
	first := held.Load()
	if first <= j.UpdatedAt {
		t.Fatalf("hold %d not newer than %d (the clock stood still)", first, j.UpdatedAt)
	}

	// The holder renews and steps; the clock still stands still.
	h, err := tdb.SetMigrationStep(ctx, u.UID, first, "")
	if err != nil || h <= first {
		t.Fatalf("renewal: %d, %v", h, err)
	}
	if h, err = tdb.SetMigrationStep(ctx, u.UID, h, weave.MoveStepLocked); err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.SetMigrationStep(ctx, u.UID, first, weave.MoveStepCopied); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("step with an old hold: %v", err)
	}

	// Taken over: the old holder's writes are refused, nothing changes.
	now.Add(1000)
	c, err := tdb.ClaimMigration(ctx, u.UID, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if c.Step != weave.MoveStepLocked || c.FromNode != n1.ID || c.ToNode != n2.ID {
		t.Errorf("claimed %+v", c)
	}
	if _, err := tdb.SetMigrationStep(ctx, u.UID, h, weave.MoveStepCopied); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("step after a take-over: %v", err)
	}
	if _, err := tdb.RepointUser(ctx, u.UID, n1.ID, n2.ID, h); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("re-point after a take-over: %v", err)
	}
	if got, _ := tdb.UserByUID(ctx, u.UID); got.NodeID != n1.ID {
		t.Errorf("a refused re-point moved the record to node %d", got.NodeID)
	}
	if err := tdb.FinishMigration(ctx, u.UID, h); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("finish after a take-over: %v", err)
	}
	if m, err := tdb.Migration(ctx, u.UID); err != nil || m.Step != weave.MoveStepLocked || m.UpdatedAt != c.UpdatedAt {
		t.Errorf("journal after refused writes: %+v, %v", m, err)
	}

	// The new holder finishes.
	if h, err = tdb.RepointUser(ctx, u.UID, n1.ID, n2.ID, c.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	if got, _ := tdb.UserByUID(ctx, u.UID); got.NodeID != n2.ID {
		t.Errorf("record on node %d after the re-point", got.NodeID)
	}
	if m, _ := tdb.Migration(ctx, u.UID); m.Step != weave.MoveStepRepointed || m.UpdatedAt != h {
		t.Errorf("journal after the re-point: %+v", m)
	}
	if err := tdb.FinishMigration(ctx, u.UID, h); err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.Migration(ctx, u.UID); !errors.Is(err, weave.ErrNotFound) {
		t.Errorf("journal after finishing: %v", err)
	}
}
