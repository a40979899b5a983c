// Package memcache is a weave.Store decorator that keeps what every Firefox
// sync reads — a user's collection and storage timestamps, usage and
// counts, and the meta/global and crypto/keys records — in memcached, in
// front of the database, which stays the only source of truth: every write
// goes to the database first, nothing lives only in the cache, and every
// other call passes through.
//
// A primary pool serves reads. An optional mirror pool receives every
// write's marks and invalidations exactly as the primary does, but no reads;
// Store.Warm fills either pool from the database, so an operator can warm a
// new pool and then make it the primary without a cold start.
//
// # Records
//
// Each pool keeps one item per user, "<prefix><epoch>:<uid>", holding the
// cached parts (each with the time it was read from the database) and the
// marks of writes in progress, and every change to it is a compare-and-swap
// (gets/cas) against the version read. A read hits when the part it needs
// is present, younger than TTL, and no live mark covers it; it fills a
// missing part with a compare-and-swap against the version it read *before*
// reading the database (an absent item is first created empty, so even the
// first fill is a compare-and-swap). A write:
//
//  1. marks: adds a mark {id, expiry PendingTTL, collection} and removes
//     every part the write can change (all timestamps, counts and usage;
//     the hot record of its collection), keeping them aside when no other
//     write was in progress;
//  2. runs in the database;
//  3. finishes, before the caller is answered: removes its mark and drops
//     the parts the write changed. When its mark was the only one added
//     since step 1 (a sequence number in the item tells), the parts kept
//     aside were exact just before the write, so it stores them back after
//     a write that certainly changed nothing (a failed precondition), and
//     after a write with timestamp T it stores them with the collection and
//     the storage at T. This keeps info/collections a hit across the
//     writes of a sync.
//
// # Why no read goes back in time
//
// Claim: whenever an item has no live mark, each part in it equals the
// database's current value. By induction over the changes of the item:
// a fill compare-and-swaps against version v read at time t0, with no mark,
// and read the database after t0; any write that committed after t0 added
// its mark after t0 (its mark precedes its commit, and there was none at
// t0), so the item changed and the fill fails. Hence a stored fill holds
// the value of a moment after the last commit, which is still the current
// one. While a mark is live, readers ignore the parts it covers (and the
// database may change them); step 3 then removes or exactly updates them.
// With several writes overlapping, each finishes by dropping, so when the
// last mark goes nothing it did not update is left.
//
// Each lost compare-and-swap means another change of the item went in, so
// a mark retries until its deadline (four round-trip timeouts); a write
// whose mark lost every try until then does not run, and fails with a
// retryable 503
// (weave.UnavailableError): memcached answers, so other processes read
// the item, and an unmarked write would let them serve what it changes.
//
// So a read that hits returns the database's value at the moment of the
// hit, and a read that misses or bypasses reads the database after it
// started: every read returns a value no older than any write acknowledged
// before it began (the writer's own included: step 3 precedes the answer)
// and no older than any read that ended before it began. Readers of several
// processes need no coordination but the item. The race "reader A reads v1
// from the database, writer B commits v2 and invalidates, A then stores v1"
// cannot happen: B's mark changes the item A read, so A's compare-and-swap
// fails, and a late-arriving one fails as well.
//
// Stores below must read what was committed before the read started (no
// read replicas with lag).
//
// # Faults
//
// No error of memcached ever reaches a caller: every round trip is bounded
// by Timeout, and a failed one takes the pool out of service for reads
// until a background probe gets an answer (within about a second of the
// pool answering again), so a dead, hung or slow pool costs a read at most
// about one timeout, then nothing. Writes still try a pool that is out of
// service, once per step (so a hung pool costs a write at most two
// timeouts, a stopped one nothing): skipping it would leave other
// processes, which may well reach it, serving the old data. While a pool
// is healthy a failed step is tried once more, on a new connection, since
// connections opened before a memcached restart fail once.
//
// The rule for trusting a pool again: a process that could not confirm the
// invalidation of a user in a pool (the finish failed, or was skipped while
// the pool was out of service) bypasses that pool for that user until a
// repair drops the user's cached parts there. If it remembers more such
// users than MaxDirtyUsers, it distrusts the whole pool until it has
// incremented the pool's epoch key (which every read fetches with the user
// item), which abandons every item written before. A restarted memcached is
// empty, hence consistent; its missing epoch key is recreated with a random
// value, so items of an old epoch are never reused.
//
// What the marks buy under faults: when a write's mark reached memcached,
// every process ignores the covered parts until the mark is removed or
// expires (PendingTTL), and by then they are gone, so a lost finish cannot
// leave old data behind for anyone. The one case the protocol cannot cover
// is a write whose mark did not reach memcached while other processes do
// reach it: memcached was down when the write began and is back before it
// ends (a restart), or the mark's round trips failed or timed out for this
// process only. Nothing then keeps the others off the parts the write
// changes: from its commit until its finish they may serve, and fill, the
// parts from before it, while reads that go to the database (the writer's
// own process's among them, since it bypasses a pool it saw fail) return
// the new ones, so a read may return older data than a read that ended
// before it began. The finish drops those parts before the write is
// answered. If the finish fails too (the process reaches the database but
// not memcached at all), the others may serve them after the answer, until
// that process reaches memcached again and repairs them (it probes at
// least every second), or for at most TTL, which bounds the age of every
// cached part; the process itself no longer serves them. So every read
// that goes back in time overlaps a write during which its process saw a
// round trip fail, and ends before that process has confirmed its
// invalidations again (runLoad in the tests checks exactly this).
//
// Cached counts and usage follow writes exactly, but records also expire
// by their TTL without any write: such an expiry shows in the figures
// within UsageTTL.
package memcache
