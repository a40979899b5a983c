package http

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Request bodies are read whole (a POST is parsed, validated and written
// as one), so each body in flight is memory: the bytes, then the parsed
// records, held until the database has the write. Under a burst of
// uploads, above all on SQLite, whose one writer makes writes queue, a
// thousand concurrent POSTs held some 70 MB of bodies and parsed records
// and the process's RSS passed 270 MB. A budget of body bytes bounds that:
// a request reserves its body's size before reading it, and waits for room
// while the body is still in the kernel's socket buffers, not in ours.

// DefaultMaxBodyMemory is the default budget: one body of the default
// max_request_bytes and more, or some 90 typical Firefox uploads (~45 KB)
// at once, more than SQLite's one writer commits in a group or a server
// database's pool runs. With 1,000 concurrent molotov sessions on SQLite,
// peak RSS was 279 MiB without a budget, 153–158 MiB with 8 MiB and 144 MiB
// with 4 MiB, at the same sessions/s (docs/benchmarks.md, target 5).
const DefaultMaxBodyMemory = 4 << 20

// bodyWait is the longest a request waits for room in the budget before it
// gets 503 with Retry-After (the write has not started: retrying is safe).
const bodyWait = 10 * time.Second

// bodyBudget bounds the request body bytes held in memory at once.
type bodyBudget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration // bodyWait; shorter in tests
	held atomic.Int64  // bytes reserved now
}

// newBodyBudget returns a budget of size bytes; nil (no bound) for size < 0.
func newBodyBudget(size int64) *bodyBudget {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultMaxBodyMemory
	}
	return &bodyBudget{sem: semaphore.NewWeighted(size), size: size, wait: bodyWait}
}

// bodyUpfront is the most of a body's announced length reserved before any
// of it is read: all of a typical upload, so that one never waits halfway
// through its body (requests holding part of what they need and waiting
// for more could otherwise wait on each other). Beyond it, room is taken
// as the body arrives: Content-Length is a claim, and a client announcing
// megabytes and sending a byte must not hold megabytes of the budget.
const bodyUpfront = 64 << 10

// reserve takes n more bytes of room for a request already holding held,
// waiting at most b.wait, and returns how much it took for release. No
// request holds more than the whole budget.
func (b *bodyBudget) reserve(ctx context.Context, n, held int64) (int64, error) {
	if b == nil {
		return 0, nil
	}
	if n = min(n, b.size-held); n <= 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(ctx, n); err != nil {
		return 0, &apiError{status: http.StatusServiceUnavailable, reason: "busy: request bodies in memory at --max-body-memory", retryAfter: conflictRetryAfter}
	}
	b.held.Add(n)
	return n, nil
}

func (b *bodyBudget) release(n int64) {
	if b != nil && n > 0 {
		b.held.Add(-n)
		b.sem.Release(n)
	}
}
