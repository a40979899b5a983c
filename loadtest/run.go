package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave/tokenlib"
)

// Why a run stopped, as Report.StopReason.
const (
	StopDuration    = "duration"    // Config.Duration elapsed
	StopSessions    = "sessions"    // Config.Sessions were all started
	StopInterrupted = "interrupted" // the caller's context ended
	StopHardCap     = "hard-cap"    // MaxRunDuration elapsed
)

var (
	errDurationReached = errors.New(StopDuration)
	errHardCap         = errors.New(StopHardCap)
)

// verifyBudget bounds the read-back of Verify.
const verifyBudget = 10 * time.Minute

// runner is the state of one run, shared by its workers.
type runner struct {
	cfg    Config
	target *url.URL
	secret string // ModeDirect: the secret that signs tokens
	client *http.Client
	signer *jwtSigner // ModeTokenServer
	rec    *recorder
	mix    mix
	seed   int64
	pool   *pool

	nextSession atomic.Int64
	trackBudget atomic.Int64
}

// Run validates cfg, then plays sessions against the target until the
// duration has elapsed or the session count is reached (at the latest after
// MaxRunDuration), writing a progress line to progress (nil: none) and
// returning the report. When ctx ends, Run stops starting sessions, lets the
// ones in flight finish for a short grace period and returns the report of
// what ran (StopReason "interrupted"). Errors are returned only for a
// configuration that cannot run; request failures are in the report.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg = cfg.withDefaults()
	target, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, target: target, rec: newRecorder(), mix: mixes[cfg.Mix](), seed: cfg.Seed}
	if r.seed == 0 {
		r.seed = time.Now().UnixNano()&(1<<62-1) | 1 // positive, so it can be passed back as a seed
	}
	switch cfg.Mode {
	case ModeTokenServer:
		if r.signer, err = loadSigner(cfg.KeyFile); err != nil {
			return nil, err
		}
	case ModeDirect:
		r.secret = signingSecret(cfg.MasterSecret)
		if cfg.DerivedSecret {
			if r.secret, err = tokenlib.DerivedNodeSecret(r.secret, target.String()); err != nil {
				return nil, err
			}
		}
	}
	r.client = newHTTPClient(cfg)
	defer r.client.CloseIdleConnections()
	r.trackBudget.Store(cfg.VerifyMaxRecords)
	r.pool = newPool(cfg.Users, r.newUser)

	start := time.Now()
	limit, cause := MaxRunDuration, errHardCap
	if cfg.Duration > 0 {
		limit, cause = cfg.Duration, errDurationReached
	}
	stopCtx, stopCancel := context.WithDeadlineCause(ctx, start.Add(limit), cause)
	defer stopCancel()

	// Requests run on their own context: at the stop the sessions in flight
	// get a grace period to finish, so the tail of the run is not a burst of
	// cancelled requests, and then they are cut.
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	workersDone := make(chan struct{})
	go func() {
		select {
		case <-stopCtx.Done():
		case <-workersDone:
			return
		}
		t := time.NewTimer(drainGrace(cfg))
		defer t.Stop()
		select {
		case <-t.C:
			hardCancel()
		case <-workersDone:
		}
	}()

	var cpuBefore time.Duration
	var rss *rssSampler
	if cfg.ServerPID > 0 {
		if cpuBefore, err = readCPU(cfg.ServerPID); err != nil {
			return nil, err
		}
		rss = startRSSSampler(cfg.ServerPID)
	}
	prog := startProgress(progress, r.rec, start, cfg.ProgressInterval)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(stopCtx, hardCtx, w)
		}()
	}
	wg.Wait()
	close(workersDone)
	elapsed := time.Since(start)
	var cpuAfter time.Duration
	var cpuErr error
	var peakRSS float64
	if cfg.ServerPID > 0 {
		cpuAfter, cpuErr = readCPU(cfg.ServerPID)
		peakRSS = rss.finish()
	}
	prog.stop()

	reason := StopSessions
	if stopCtx.Err() != nil {
		switch cause := context.Cause(stopCtx); {
		case errors.Is(cause, errDurationReached):
			reason = StopDuration
		case errors.Is(cause, errHardCap):
			reason = StopHardCap
		default:
			reason = StopInterrupted
		}
	}
	rep := r.report(start, elapsed, reason)
	if cfg.ServerPID > 0 {
		if cpuErr != nil {
			rep.ServerCPUError = cpuErr.Error() // e.g. the server exited during the run
		} else {
			rep.ServerCPU = serverCPU(cfg.ServerPID, cpuBefore, cpuAfter, rep.Sessions.Completed, elapsed)
			rep.ServerCPU.PeakRSSMiB = peakRSS
		}
	}

	if cfg.Verify {
		users := r.pool.created()
		if progress != nil {
			fmt.Fprintf(progress, "verifying the records of %d users…\n", len(users))
		}
		vctx, vcancel := context.WithTimeout(ctx, verifyBudget)
		rep.Verify = r.verify(vctx, users, cfg.Concurrency)
		if vctx.Err() != nil {
			rep.Verify.Incomplete = true
		}
		vcancel()
		rep.Unexpected = r.rec.unexpectedList()
	}
	return rep, nil
}

// drainGrace is how long sessions in flight may continue after the stop.
func drainGrace(cfg Config) time.Duration {
	return min(cfg.HTTPTimeout, 10*time.Second)
}

func (r *runner) worker(stopCtx, hardCtx context.Context, w int) {
	// Ramp-up: worker w starts at w/concurrency of the ramp.
	if r.cfg.RampUp > 0 && w > 0 {
		if !sleep(stopCtx, r.cfg.RampUp*time.Duration(w)/time.Duration(r.cfg.Concurrency)) {
			return
		}
	}
	for stopCtx.Err() == nil {
		n := r.nextSession.Add(1) - 1
		if (r.cfg.Sessions > 0 && n >= r.cfg.Sessions) || n >= MaxSessions {
			return
		}
		u := r.pool.acquire(stopCtx)
		if u == nil {
			return
		}
		r.rec.sessionsStarted.Add(1)
		began := time.Now()
		err := r.runSession(hardCtx, u, n)
		if err == nil {
			r.rec.sessionDone(time.Since(began))
		}
		r.sessionOutcome(err)
		r.pool.release(u)
		if r.cfg.ThinkTime > 0 && !sleep(stopCtx, r.cfg.ThinkTime) {
			return
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
