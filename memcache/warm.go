package memcache

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/weave-sync/weave"
)

// WarmStats counts what Warm did.
type WarmStats struct {
	// Users is the number of users handled.
	Users int
	// Filled users got at least one figure from the database.
	Filled int
	// Skipped users were already warm, had a write in progress, or lost a
	// race with a write or a reader's fill (which is as good).
	Skipped int
}

// ErrPoolUnavailable is returned by Warm when the pool fails or is not
// trusted; nothing already filled is wrong, and Warm can be run again.
var ErrPoolUnavailable = errors.New("memcache: pool unavailable")

// Warm fills pool with the collection timestamps and hot records of users
// read from the inner store, so that an operator can fill a new pool (the
// mirror) before making it the primary. total is the number of users if
// known (0 otherwise), passed to progress, which is called after every user
// from one goroutine. Fills follow the same rules as a reader's, so Warm
// is safe while the service runs, and cheap to run again: users already
// warm cost one memcached read and no database query.
func (s *Store) Warm(ctx context.Context, pool Pool, users iter.Seq[int64], total int, progress func(done, total int)) (WarmStats, error) {
	p := s.pool(pool)
	if p == nil {
		return WarmStats{}, fmt.Errorf("memcache: warm: pool %s is not configured", pool)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		filled bool
		err    error
	}
	uids := make(chan int64)
	results := make(chan result)
	var wg sync.WaitGroup
	for range s.cfg.WarmConcurrency {
		wg.Go(func() {
			for uid := range uids {
				filled, err := s.warmUser(ctx, p, uid)
				results <- result{filled, err}
			}
		})
	}
	go func() {
		defer close(uids)
		for uid := range users {
			select {
			case uids <- uid:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()

	var st WarmStats
	var first error
	for r := range results {
		switch {
		case r.err != nil:
			if first == nil {
				first = r.err
				cancel()
			}
			continue
		case r.filled:
			st.Filled++
		default:
			st.Skipped++
		}
		st.Users++
		if progress != nil {
			progress(st.Users, total)
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	return st, first
}

// warmUser fills what is missing of uid's record in p.
func (s *Store) warmUser(ctx context.Context, p *pool, uid int64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !p.healthy.Load() || p.distrusted.Load() {
		return false, ErrPoolUnavailable
	}
	if !p.readable(uid) {
		return false, nil
	}
	it, rec, err := p.view(uid, true)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrPoolUnavailable, err)
	}
	now := nowMs()
	if rec == nil || rec.busy(now) {
		return false, nil
	}
	filled := false
	if !s.freshTS(rec, now) {
		colls, storage, err := s.inner.CollectionTimestamps(ctx, uid)
		if err != nil {
			return false, err
		}
		rec.TS = newTSPart(colls, storage, now)
		filled = true
	}
	for k := range hotBSOs {
		if b := rec.BSOs[k]; b != nil && fresh(b.At, now, s.cfg.TTL) {
			continue
		}
		coll, id, _ := strings.Cut(k, "/")
		b, err := s.inner.GetBSO(ctx, uid, coll, id)
		var part *bsoPart
		switch {
		case errors.Is(err, weave.ErrNotFound):
			part = &bsoPart{At: now}
		case err != nil:
			return false, err
		case len(b.Payload) <= maxHotPayload:
			part = newBSOPart(b, now)
		default:
			continue
		}
		if rec.BSOs == nil {
			rec.BSOs = make(map[string]*bsoPart)
		}
		rec.BSOs[k] = part
		filled = true
	}
	if !filled {
		return false, nil
	}
	rec.prune(nowMs())
	stored, err := p.cas(it, rec)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrPoolUnavailable, err)
	}
	return stored, nil
}
