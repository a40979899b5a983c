package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weave-sync/weave"
)

// DrainOptions tune Migrator.Drain.
type DrainOptions struct {
	// To are the URLs of the nodes that take the users; empty means every
	// other node that is up.
	To []string
	// Parallel is how many users move at once (default 1).
	Parallel int
	// Progress, when set, is called after each user (from one goroutine at
	// a time).
	Progress func(DrainProgress)
}

// DrainProgress is the state of a drain after one more user.
type DrainProgress struct {
	Total, Done, Failed int
	Last                Result
	Err                 error // the last user's error, if it failed
	Elapsed             time.Duration
}

// Drain marks the node at fromURL draining (so the token server gives it no
// new users) and moves each of its users to the least loaded target, first
// finishing journaled moves off the node. It stops early only when ctx ends;
// failed users are counted and reported, and running Drain again retries
// them.
func (m *Migrator) Drain(ctx context.Context, fromURL string, opts DrainOptions) (DrainProgress, error) {
	start := time.Now()
	from, err := m.Dir.NodeByURL(ctx, fromURL)
	if err != nil {
		return DrainProgress{}, fmt.Errorf("node %s: %w", fromURL, err)
	}
	if from.State == weave.NodeUp || from.State == weave.NodeBackoff {
		if err := m.Dir.SetNodeState(ctx, from.ID, weave.NodeDraining, from.RetryAfter, from.Backoff); err != nil {
			return DrainProgress{}, err
		}
	}
	targets, err := m.targets(ctx, from, opts.To)
	if err != nil {
		return DrainProgress{}, err
	}
	var resume []int64
	js, err := m.Dir.Migrations(ctx)
	if err != nil {
		return DrainProgress{}, err
	}
	journaled := map[int64]bool{}
	for _, j := range js {
		if j.FromNode == from.ID {
			resume = append(resume, j.UID)
			journaled[j.UID] = true
		}
	}
	uids, err := m.Dir.NodeUserIDs(ctx, from.ID)
	if err != nil {
		return DrainProgress{}, err
	}
	work := resume
	for _, u := range uids {
		if !journaled[u] {
			work = append(work, u)
		}
	}
	p := DrainProgress{Total: len(work)}
	par := max(opts.Parallel, 1)
	jobs := make(chan int64)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for uid := range jobs {
				to := ""
				if !journaled[uid] {
					to = targets.pick()
				}
				res, err := m.MigrateUser(ctx, uid, to)
				if err != nil && to != "" {
					targets.release(to)
				}
				mu.Lock()
				p.Done++
				p.Last, p.Err = res, err
				if err != nil {
					p.Failed++
					p.Last.UID = uid
				}
				p.Elapsed = time.Since(start)
				if opts.Progress != nil {
					opts.Progress(p)
				}
				mu.Unlock()
			}
		}()
	}
	for _, uid := range work {
		select {
		case jobs <- uid:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	p.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return p, err
	}
	if p.Failed > 0 {
		return p, fmt.Errorf("%d of %d users failed to move; run the drain again to retry them", p.Failed, p.Total)
	}
	return p, nil
}

// targetSet spreads users over target nodes by load / capacity.
type targetSet struct {
	mu    sync.Mutex
	nodes []weave.Node
}

func (m *Migrator) targets(ctx context.Context, from weave.Node, urls []string) (*targetSet, error) {
	ts := &targetSet{}
	if len(urls) > 0 {
		for _, u := range urls {
			n, err := m.Dir.NodeByURL(ctx, u)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", u, err)
			}
			if n.ID == from.ID {
				return nil, errors.New("a node cannot be drained into itself")
			}
			if n.State == weave.NodeDown || n.State == weave.NodeDraining {
				return nil, fmt.Errorf("node %s is %s: it takes no users", n.URL, n.State)
			}
			ts.nodes = append(ts.nodes, n)
		}
		return ts, nil
	}
	all, err := m.Dir.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range all {
		if n.ID != from.ID && n.State == weave.NodeUp {
			ts.nodes = append(ts.nodes, n)
		}
	}
	if len(ts.nodes) == 0 {
		return nil, errors.New("no other node is up to take the users (add one, or name targets with --to)")
	}
	return ts, nil
}

func (ts *targetSet) pick() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	best := -1
	var bestRatio float64
	for i, n := range ts.nodes {
		r := float64(n.CurrentLoad) / float64(max(n.Capacity, 1))
		if best < 0 || r < bestRatio {
			best, bestRatio = i, r
		}
	}
	ts.nodes[best].CurrentLoad++
	return ts.nodes[best].URL
}

func (ts *targetSet) release(url string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for i := range ts.nodes {
		if ts.nodes[i].URL == url {
			ts.nodes[i].CurrentLoad--
		}
	}
}
