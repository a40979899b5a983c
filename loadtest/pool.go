package loadtest

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// pool hands users to workers: each user runs one session at a time, users
// take turns in FIFO order, and a user backing off (X-Weave-Backoff,
// Retry-After) waits in a heap until its time is up. Users are created on
// first use, so a large pool costs nothing until it is used.
type pool struct {
	mu      sync.Mutex
	users   []*user
	ready   []int // FIFO of user indexes
	waiting userHeap
	changed chan struct{} // closed and replaced when a user is released
	create  func(int) *user
}

func newPool(n int, create func(int) *user) *pool {
	p := &pool{users: make([]*user, n), ready: make([]int, n), changed: make(chan struct{}), create: create}
	for i := range p.ready {
		p.ready[i] = i
	}
	return p
}

// acquire returns the next user free to start a session, waiting for
// backoffs to expire, or nil when ctx ends first.
func (p *pool) acquire(ctx context.Context) *user {
	for {
		p.mu.Lock()
		now := time.Now()
		for p.waiting.Len() > 0 && !p.waiting[0].readyAt.After(now) {
			p.ready = append(p.ready, heap.Pop(&p.waiting).(*user).index)
		}
		if len(p.ready) > 0 {
			i := p.ready[0]
			p.ready = p.ready[1:]
			if p.users[i] == nil {
				p.users[i] = p.create(i)
			}
			u := p.users[i]
			p.mu.Unlock()
			return u
		}
		wait := time.Hour // every user busy: wait for a release
		if p.waiting.Len() > 0 {
			wait = p.waiting[0].readyAt.Sub(now)
		}
		changed := p.changed
		p.mu.Unlock()

		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// release gives a user back after its session.
func (p *pool) release(u *user) {
	p.mu.Lock()
	if u.readyAt.After(time.Now()) {
		heap.Push(&p.waiting, u)
	} else {
		p.ready = append(p.ready, u.index)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// created returns the users that ran at least one session.
func (p *pool) created() []*user {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*user
	for _, u := range p.users {
		if u != nil {
			out = append(out, u)
		}
	}
	return out
}

// userHeap orders backing-off users by the time they may sync again.
type userHeap []*user

func (h userHeap) Len() int           { return len(h) }
func (h userHeap) Less(i, j int) bool { return h[i].readyAt.Before(h[j].readyAt) }
func (h userHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *userHeap) Push(x any)        { *h = append(*h, x.(*user)) }
func (h *userHeap) Pop() any {
	old := *h
	u := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return u
}
