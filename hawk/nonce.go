package hawk

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
)

// nonceShards spreads the cache over independent locks so concurrent
// requests rarely contend; it must be a power of two.
const nonceShards = 64

// nonceKey is a 128-bit keyed hash of (credential, ts, nonce), where the
// credential is the Hawk key the id resolved to. Storing a hash rather than
// the strings keeps an entry at 16 bytes;
// with random seeds, 128 bits make a false "replay" practically impossible
// and impossible to aim at.
type nonceKey [2]uint64

// nonceCache remembers (credential, ts, nonce) triples for as long as ts is inside
// the timestamp window; after that the timestamp check alone rejects a
// replay. Entries are grouped into buckets by ts, so forgetting is dropping
// whole maps. Memory is bounded by capacity: a full shard drops its oldest
// bucket, which weakens replay protection only for the oldest timestamps
// and only under a flood of validly signed requests.
type nonceCache struct {
	window int64 // seconds; a ts is live while |ts-now| <= window
	width  int64 // seconds of ts per bucket
	limit  int   // entries per shard
	seed1  maphash.Seed
	seed2  maphash.Seed
	shards [nonceShards]nonceShard
}

type nonceShard struct {
	mu      sync.Mutex
	buckets map[int64]map[nonceKey]struct{} // bucket index (ts/width) → keys
	count   int
	hint    int   // size of the last dropped bucket, to pre-size the next
	swept   int64 // last now at which stale buckets were dropped
	_       [64]byte
}

func newNonceCache(windowSeconds int64, capacity int) *nonceCache {
	c := &nonceCache{
		window: windowSeconds,
		width:  max(windowSeconds, 1),
		limit:  max(capacity/nonceShards, 1),
		seed1:  maphash.MakeSeed(),
		seed2:  maphash.MakeSeed(),
	}
	for i := range c.shards {
		c.shards[i].buckets = map[int64]map[nonceKey]struct{}{}
	}
	return c
}

func (c *nonceCache) key(id string, ts int64, nonce string) nonceKey {
	// Length-prefixing id makes the encoding unambiguous, so different
	// triples never feed the hash the same bytes.
	var hdr [16]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(ts))
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(id)))
	var k nonceKey
	for i, seed := range [2]maphash.Seed{c.seed1, c.seed2} {
		var h maphash.Hash
		h.SetSeed(seed)
		h.Write(hdr[:])
		h.WriteString(id)
		h.WriteString(nonce)
		k[i] = h.Sum64()
	}
	return k
}

// fresh records the triple and reports whether it was new. ts must already
// have passed the timestamp check against now (Unix seconds).
func (c *nonceCache) fresh(id string, ts int64, nonce string, now int64) bool {
	k := c.key(id, ts, nonce)
	s := &c.shards[k[0]&(nonceShards-1)]
	b := floorDiv(ts, c.width)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now != s.swept {
		s.sweep(now-c.window, c.width)
		s.swept = now
	}
	m := s.buckets[b]
	if _, dup := m[k]; dup {
		return false
	}
	if s.count >= c.limit {
		s.evictOldest()
		m = s.buckets[b] // may have been the evicted one
	}
	if m == nil {
		// Pre-sizing avoids re-growing a large map step by step each
		// time a bucket is replaced under steady load.
		m = make(map[nonceKey]struct{}, s.hint)
		s.buckets[b] = m
	}
	m[k] = struct{}{}
	s.count++
	return true
}

// sweep drops buckets whose newest ts is older than oldest live ts.
func (s *nonceShard) sweep(oldest, width int64) {
	for b, m := range s.buckets {
		if (b+1)*width-1 < oldest {
			s.count -= len(m)
			s.hint = len(m)
			delete(s.buckets, b)
		}
	}
}

func (s *nonceShard) evictOldest() {
	first := true
	var oldest int64
	for b := range s.buckets {
		if first || b < oldest {
			oldest, first = b, false
		}
	}
	if !first {
		s.hint = len(s.buckets[oldest])
		s.count -= s.hint
		delete(s.buckets, oldest)
	}
}

// len is the number of remembered entries (for tests).
func (c *nonceCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
