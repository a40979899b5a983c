package accounts

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave/accounts/onepw"
)

// stretcher bounds the server's scrypt runs: a few at a time (each takes
// 64 MiB and a core for a while), a bounded queue in front, and a bounded
// wait in it. A request past either bound is told to come back (503 errno
// 201 with Retry-After, FxA's "server busy") instead of holding its
// connection and memory in an unbounded line.
type stretcher struct {
	slots  chan struct{}
	queued atomic.Int64
	max    int64
	wait   time.Duration
}

func newStretcher(l Limits) *stretcher {
	n := l.StretchSlots
	if n <= 0 {
		n = min(4, max(1, runtime.GOMAXPROCS(0)))
	}
	q := l.StretchQueue
	if q <= 0 {
		q = 32
	}
	w := l.StretchWait
	if w <= 0 {
		w = 10 * time.Second
	}
	return &stretcher{slots: make(chan struct{}, n), max: int64(q), wait: w}
}

// errStretchBusy is FxA's 503 "server busy", with a Retry-After long enough
// for the queue to drain.
var errStretchBusy = &Error{Code: 503, Errno: ErrnoServerBusy, Message: "Service unavailable", RetryAfter: 5,
	Extra: map[string]any{"retryAfter": 5}}

// acquire takes a slot, waiting at most s.wait in a queue of at most s.max;
// the caller releases it.
func (s *stretcher) acquire(ctx context.Context) (release func(), err error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	default:
	}
	if s.queued.Add(1) > s.max {
		s.queued.Add(-1)
		return nil, errStretchBusy
	}
	defer s.queued.Add(-1)
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-t.C:
		return nil, errStretchBusy
	case <-ctx.Done():
		return nil, errStretchBusy
	}
}

// stretch runs the server stretch of authPW in a slot.
func (s *Service) stretch(ctx context.Context, authPW, salt []byte, p onepw.ScryptParams) (onepw.ServerKeys, error) {
	release, err := s.stretcher.acquire(ctx)
	if err != nil {
		return onepw.ServerKeys{}, err
	}
	defer release()
	return onepw.ServerStretch(authPW, salt, p)
}
