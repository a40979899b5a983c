package memcache

import (
	"sync"

	"github.com/weave-sync/weave"
)

// hints remembers, per user, collection timestamps this process has seen
// lately, to skip the memcached round trip of a read the cache would have
// to pass on anyway: a GET ?newer=T of a collection known to have changed
// after T (Firefox reads only collections that info/collections showed
// changed). A hint is never served: it only sends a read straight to the
// database, which is always correct. A live collection's timestamp only
// grows, so a hint can only be wrong after the collection was deleted, and
// then the read merely misses the cache's empty answer.
//
// Two generations bound the memory: when the current one is full it
// becomes the old one and the old one is dropped.
type hints struct {
	mu       sync.Mutex
	cur, old map[int64][]collTS
}

type collTS struct {
	coll string
	ts   weave.Timestamp
}

// hintUsers is users per generation: about 300 bytes each for a Firefox
// profile's ten collections.
const hintUsers = 4096

// seen records every collection timestamp of uid.
func (h *hints) seen(uid int64, colls map[string]weave.Timestamp) {
	cs := make([]collTS, 0, len(colls))
	for c, ts := range colls {
		cs = append(cs, collTS{c, ts})
	}
	h.mu.Lock()
	h.put(uid, cs)
	h.mu.Unlock()
}

// wrote records that coll of uid was written at ts.
func (h *hints) wrote(uid int64, coll string, ts weave.Timestamp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.get(uid)
	for i := range cs {
		if cs[i].coll == coll {
			// Copy on write: readers may hold the old slice.
			cs = append([]collTS(nil), cs...)
			cs[i].ts = max(cs[i].ts, ts)
			h.put(uid, cs)
			return
		}
	}
	h.put(uid, append(cs[:len(cs):len(cs)], collTS{coll, ts}))
}

// changedAfter reports whether coll of uid is known to have changed after t.
func (h *hints) changedAfter(uid int64, coll string, t weave.Timestamp) bool {
	h.mu.Lock()
	cs := h.get(uid)
	h.mu.Unlock()
	for _, c := range cs {
		if c.coll == coll {
			return c.ts > t
		}
	}
	return false
}

// forget drops what is known of uid.
func (h *hints) forget(uid int64) {
	h.mu.Lock()
	delete(h.cur, uid)
	delete(h.old, uid)
	h.mu.Unlock()
}

func (h *hints) get(uid int64) []collTS {
	if cs, ok := h.cur[uid]; ok {
		return cs
	}
	return h.old[uid]
}

func (h *hints) put(uid int64, cs []collTS) {
	if h.cur == nil || len(h.cur) >= hintUsers {
		h.old, h.cur = h.cur, make(map[int64][]collTS)
	}
	h.cur[uid] = cs
}
