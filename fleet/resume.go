package fleet

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/weave-sync/weave"
)

// Resumer finishes the journaled moves whose mover died (kill -9, OOM, a
// host reboot), which would otherwise leave their users locked (writes
// refused) on the old node until an operator reran the move. Every `weave
// serve` runs one; they share the token database, and ClaimMigration lets
// only one of them take a given move.
//
// A move is taken when its hold has not been renewed for After: a live
// mover renews it every Migrator.Heartbeat, so After must be many
// heartbeats. Should a mover only have stalled that long, it loses the move
// at its next journal write and stops. The age is read against this
// process's clock, so the token database's writers' clocks must agree to
// well within After.
type Resumer struct {
	// Migrator runs the resumed moves (its Heartbeat well below After).
	Migrator *Migrator
	// After is how long a move goes without renewal before it is taken;
	// zero means DefaultResumeAfter.
	After time.Duration
	// Log receives a line per resumed move (nil: discarded).
	Log *slog.Logger
	// OnResume, when set, is called after each resumed move (metrics).
	OnResume func(res Result, err error)
	// Now is the clock (nil: time.Now; tests).
	Now func() time.Time
}

func (r *Resumer) after() time.Duration {
	if r.After > 0 {
		return r.After
	}
	return DefaultResumeAfter
}

// Run looks for abandoned moves every quarter of After until ctx ends.
func (r *Resumer) Run(ctx context.Context) {
	Every(ctx, r.after()/4, func() { r.ResumeStale(ctx) })
}

// ResumeStale finishes, one after the other, every journaled move whose
// hold is older than After and that this process claims, and returns how
// many it finished.
func (r *Resumer) ResumeStale(ctx context.Context) int {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	js, err := r.Migrator.Dir.Migrations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("fleet: cannot list journaled user moves; will retry", "err", err)
		}
		return 0
	}
	done := 0
	for _, j := range js {
		staleBefore := now().Add(-r.after()).UnixMilli()
		if j.UpdatedAt >= staleBefore || ctx.Err() != nil {
			continue
		}
		c, err := r.Migrator.Dir.ClaimMigration(ctx, j.UID, staleBefore)
		if errors.Is(err, weave.ErrMoveTaken) || errors.Is(err, weave.ErrNotFound) {
			continue // another process took it, or it finished
		}
		if err != nil {
			log.Warn("fleet: cannot claim an interrupted user move; will retry", "uid", j.UID, "err", err)
			continue
		}
		idle := time.Duration(now().UnixMilli()-j.UpdatedAt) * time.Millisecond
		log.Info("fleet: resuming an interrupted user move", "uid", c.UID, "from_node", c.FromNode, "to_node", c.ToNode,
			"step", string(c.Step), "idle", idle.Round(time.Second))
		res, err := r.Migrator.run(ctx, c, true)
		if r.OnResume != nil {
			r.OnResume(res, err)
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("fleet: resumed user move failed; it is retried once its journal row is idle again", "uid", c.UID, "err", err)
			}
			continue
		}
		done++
		log.Info("fleet: resumed user move finished", "uid", res.UID, "from", res.From, "to", res.To, "writes_held", res.Locked.Round(time.Millisecond))
	}
	return done
}
