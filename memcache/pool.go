package memcache

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/weave-sync/weave"
)

// Retry pacing of an unhealthy pool's probe.
const (
	minProbeBackoff = 100 * time.Millisecond
	maxProbeBackoff = time.Second
	// repairBatch is how many dirty users one repair pass handles before
	// looking at the pool's health again.
	repairBatch = 256
	// maxRecordBytes keeps records well under memcached's item size limit
	// (1 MB by default).
	maxRecordBytes = 256 << 10
	// maxBackoff caps the pause after a lost compare-and-swap.
	maxBackoff = 2 * time.Millisecond
)

// pool is one set of memcached servers with its own health and trust.
type pool struct {
	name     string
	mc       *memcache.Client
	cfg      *Config
	epochKey string
	// epoch is the last epoch seen in epochKey (0: not read yet). Keys of
	// user records contain it, so incrementing epochKey abandons every
	// record at once.
	epoch atomic.Uint64
	// dec spares decoding a record value read back unchanged.
	dec decoded

	// healthy is false after a failed round trip, until a probe answers.
	healthy atomic.Bool
	// nDirty mirrors len(dirty) so that reads skip the lock when it is 0.
	nDirty atomic.Int64
	// distrusted is true while untrustedMark != 0.
	distrusted atomic.Bool

	mu      sync.Mutex
	retryAt time.Time
	backoff time.Duration
	// dirty holds users whose invalidation was not confirmed; reads of
	// them bypass this pool until a repair confirms it.
	dirty   map[int64]*dirtyUser
	markSeq uint64
	// untrustedMark is the markSeq at which a dirty user could not be
	// remembered (dirty was full); until an epoch increment sent after it
	// succeeds, no read trusts this pool.
	untrustedMark uint64

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newPool(name string, servers []string, cfg *Config) (*pool, error) {
	sl := new(memcache.ServerList)
	if err := sl.SetServers(servers...); err != nil {
		return nil, err
	}
	mc := memcache.NewFromSelector(sl)
	mc.Timeout = cfg.Timeout
	mc.MaxIdleConns = cfg.MaxIdleConns
	p := &pool{
		name:     name,
		mc:       mc,
		cfg:      cfg,
		epochKey: cfg.Prefix + "epoch",
		backoff:  minProbeBackoff,
		dirty:    make(map[int64]*dirtyUser),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	p.healthy.Store(true)
	go p.loop()
	return p, nil
}

func (p *pool) close() error {
	close(p.stop)
	<-p.done
	return p.mc.Close()
}

func (p *pool) log() *slog.Logger { return p.cfg.Logger.With("pool", p.name) }

// protocolAnswer reports errors that are answers of a working server.
func protocolAnswer(err error) bool {
	return errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, memcache.ErrCASConflict) ||
		errors.Is(err, memcache.ErrNotStored)
}

// do runs one round trip, reports it, and takes the pool out of service
// when it fails: one slow or failed answer is enough, because every later
// request would wait for the same timeout.
func (p *pool) do(cmd string, f func() error) error {
	start := time.Now()
	err := f()
	d := time.Since(start)
	if err != nil && !protocolAnswer(err) {
		p.cfg.Observer.RoundTrip(p.name, cmd, d, err)
		// The idle connections likely broke with this one (a restarted
		// memcached closed them all): the next round trips dial afresh
		// instead of each failing on one of them, which after a restart
		// would fail a write's steps while memcached answers others.
		p.mc.Close()
		p.fail(cmd, err)
		return err
	}
	p.cfg.Observer.RoundTrip(p.name, cmd, d, nil)
	return err
}

func (p *pool) fail(cmd string, err error) {
	p.mu.Lock()
	was := p.healthy.Swap(false)
	if was {
		p.backoff = minProbeBackoff
		p.retryAt = time.Now().Add(p.backoff)
	}
	p.mu.Unlock()
	if was {
		p.log().Warn("memcache pool failed; bypassing it", "cmd", cmd, "err", err)
		p.cfg.Observer.PoolState(p.name, false, !p.distrusted.Load())
		p.wake()
	}
}

func (p *pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// readable reports whether reads of uid may use this pool.
func (p *pool) readable(uid int64) bool {
	if !p.healthy.Load() || p.distrusted.Load() {
		return false
	}
	if p.nDirty.Load() == 0 {
		return true
	}
	p.mu.Lock()
	_, dirty := p.dirty[uid]
	p.mu.Unlock()
	return !dirty
}

// dirtyUser is a user whose invalidation in a pool was not confirmed.
type dirtyUser struct {
	// seq is the markSeq of the last marking: a repair that started before
	// it does not clear the entry.
	seq uint64
	// marks are this process's write marks that may be left in the record;
	// the repair removes them so that readers need not wait for them to
	// expire.
	marks []uint64
}

// maxDirtyMarks bounds the marks remembered per dirty user; others expire.
const maxDirtyMarks = 8

// markDirty records that an invalidation of uid was not confirmed, and
// that the write mark id (0: none) may be left behind.
func (p *pool) markDirty(uid int64, id uint64) {
	p.mu.Lock()
	p.markSeq++
	d := p.dirty[uid]
	if d == nil && len(p.dirty) < p.cfg.MaxDirtyUsers {
		d = new(dirtyUser)
		p.dirty[uid] = d
	}
	if d != nil {
		d.seq = p.markSeq
		if id != 0 && len(d.marks) < maxDirtyMarks {
			d.marks = append(d.marks, id)
		}
	} else {
		if p.untrustedMark == 0 {
			p.log().Warn("memcache pool: too many unconfirmed invalidations; distrusting the whole pool until its keys are versioned")
		}
		p.untrustedMark = p.markSeq
		p.distrusted.Store(true)
	}
	p.nDirty.Store(int64(len(p.dirty)))
	p.mu.Unlock()
	p.wake()
}

// loop probes an unhealthy pool and repairs what failures left behind.
func (p *pool) loop() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if p.needsWork() {
			timer.Reset(minProbeBackoff / 2)
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-p.stop:
			return
		case <-p.kick:
		case <-timer.C:
		}
		p.work()
	}
}

func (p *pool) needsWork() bool {
	return !p.healthy.Load() || p.distrusted.Load() || p.nDirty.Load() > 0
}

// work runs one round of probing and repair.
func (p *pool) work() {
	if !p.healthy.Load() {
		p.mu.Lock()
		wait := time.Now().Before(p.retryAt)
		p.mu.Unlock()
		if wait {
			return
		}
		err := p.do("version", p.mc.Ping)
		p.mu.Lock()
		if err != nil {
			p.backoff = min(2*p.backoff, maxProbeBackoff)
			p.retryAt = time.Now().Add(p.backoff)
			p.mu.Unlock()
			return
		}
		p.healthy.Store(true)
		p.mu.Unlock()
		p.log().Info("memcache pool answers again")
		p.cfg.Observer.PoolState(p.name, true, !p.distrusted.Load())
	}
	if p.distrusted.Load() {
		p.bumpEpoch()
		return
	}
	p.repairDirty()
}

// bumpEpoch versions every key of the pool past the failures recorded so
// far, which makes the pool trustworthy again.
func (p *pool) bumpEpoch() {
	p.mu.Lock()
	m0 := p.markSeq
	p.mu.Unlock()
	var e uint64
	err := p.do("incr", func() (err error) {
		e, err = p.mc.Increment(p.epochKey, 1)
		return err
	})
	if errors.Is(err, memcache.ErrCacheMiss) {
		// No epoch (restart, eviction): a fresh random one is just as new.
		e, err = p.initEpoch()
	}
	if err != nil {
		return
	}
	p.epoch.Store(e)
	p.mu.Lock()
	for uid, d := range p.dirty {
		if d.seq <= m0 {
			delete(p.dirty, uid)
		}
	}
	p.nDirty.Store(int64(len(p.dirty)))
	if p.untrustedMark <= m0 {
		p.untrustedMark = 0
		p.distrusted.Store(false)
	}
	trusted := !p.distrusted.Load()
	p.mu.Unlock()
	if trusted {
		p.log().Info("memcache pool keys versioned past failures; trusted again", "epoch", e)
		p.cfg.Observer.PoolState(p.name, p.healthy.Load(), true)
	}
}

// repairDirty confirms the invalidation of remembered users.
func (p *pool) repairDirty() {
	type entry struct {
		uid   int64
		seq   uint64
		marks []uint64
	}
	p.mu.Lock()
	batch := make([]entry, 0, min(len(p.dirty), repairBatch))
	for uid, d := range p.dirty {
		if len(batch) == repairBatch {
			break
		}
		batch = append(batch, entry{uid, d.seq, slices.Clone(d.marks)})
	}
	p.mu.Unlock()
	for _, e := range batch {
		if !p.healthy.Load() {
			return
		}
		if !p.clear(e.uid, e.marks) {
			return
		}
		p.mu.Lock()
		if d := p.dirty[e.uid]; d != nil && d.seq == e.seq {
			delete(p.dirty, e.uid)
		}
		p.nDirty.Store(int64(len(p.dirty)))
		p.mu.Unlock()
	}
}

func (p *pool) userKey(epoch uint64, uid int64) string {
	return p.cfg.Prefix + strconv.FormatUint(epoch, 36) + ":" + strconv.FormatInt(uid, 10)
}

// initEpoch creates a missing epoch key with a random value, so that keys
// of any earlier epoch are never reused.
func (p *pool) initEpoch() (uint64, error) {
	e := rand.Uint64N(1<<62) + 1
	err := p.do("add", func() error {
		return p.mc.Add(&memcache.Item{Key: p.epochKey, Value: []byte(strconv.FormatUint(e, 10))})
	})
	if err == nil {
		return e, nil
	}
	if !errors.Is(err, memcache.ErrNotStored) {
		return 0, err
	}
	// Another process created it first.
	var it *memcache.Item
	if err := p.do("get", func() (err error) { it, err = p.mc.Get(p.epochKey); return err }); err != nil {
		if errors.Is(err, memcache.ErrCacheMiss) {
			return 0, errors.New("memcache: epoch key vanished")
		}
		return 0, err
	}
	return parseEpoch(it.Value)
}

func parseEpoch(b []byte) (uint64, error) {
	e, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || e == 0 {
		return 0, errors.New("memcache: malformed epoch key")
	}
	return e, nil
}

// load reads the current epoch and uid's record under it. it is nil when
// the record is absent.
func (p *pool) load(uid int64) (key string, it *memcache.Item, err error) {
	e := p.epoch.Load()
	key = p.userKey(e, uid)
	var items map[string]*memcache.Item
	err = p.do("get", func() (err error) {
		items, err = p.mc.GetMulti([]string{p.epochKey, key})
		return err
	})
	if err != nil {
		return "", nil, err
	}
	var cur uint64
	if ei := items[p.epochKey]; ei != nil {
		if cur, err = parseEpoch(ei.Value); err != nil {
			p.fail("get", err)
			return "", nil, err
		}
	} else if cur, err = p.initEpoch(); err != nil {
		return "", nil, err
	}
	if cur == e {
		return key, items[key], nil
	}
	p.epoch.Store(cur)
	key = p.userKey(cur, uid)
	err = p.do("get", func() (err error) { it, err = p.mc.Get(key); return err })
	if errors.Is(err, memcache.ErrCacheMiss) {
		return key, nil, nil
	}
	return key, it, err
}

func (p *pool) exptime() int32 {
	return int32((max(p.cfg.TTL, p.cfg.PendingTTL) + time.Second - 1) / time.Second)
}

func (p *pool) newItem(key string, r *record) *memcache.Item {
	return &memcache.Item{Key: key, Value: r.encode(), Flags: recordFormat, Expiration: p.exptime()}
}

// cas stores r over it if it is unchanged since it was read, and reports
// whether it was; err is set only when the round trip failed.
func (p *pool) cas(it *memcache.Item, r *record) (bool, error) {
	n := *it
	n.Value = r.encode()
	if len(n.Value) > maxRecordBytes {
		// Too big for memcached (a user with thousands of collections):
		// keep only the write marks, which is always correct.
		r.drop("")
		n.Value = r.encode()
	}
	n.Flags = recordFormat
	n.Expiration = p.exptime()
	err := p.do("cas", func() error { return p.mc.CompareAndSwap(&n) })
	if err == nil {
		p.dec.remember(n.Key, n.Value, r)
		return true, nil
	}
	if protocolAnswer(err) {
		return false, nil
	}
	return false, err
}

// view returns uid's record for a read. For a read that may fill it
// (create), an absent record is first created empty, so that every fill is
// a compare-and-swap against a version read before the database was: a
// fill can then never store data older than a write that finished before
// the fill started, even if the fill reaches the server late. Otherwise
// it is nil when the record is absent. rec is nil when the item cannot be
// decoded.
func (p *pool) view(uid int64, create bool) (it *memcache.Item, rec *record, err error) {
	key, it, err := p.load(uid)
	if err != nil {
		return nil, nil, err
	}
	if it == nil && !create {
		return nil, nil, nil
	}
	if it == nil {
		empty := &record{Seq: rand.Uint64()}
		err = p.do("add", func() error { return p.mc.Add(p.newItem(key, empty)) })
		if err != nil && !errors.Is(err, memcache.ErrNotStored) {
			return nil, nil, err
		}
		err = p.do("get", func() (err error) { it, err = p.mc.Get(key); return err })
		if errors.Is(err, memcache.ErrCacheMiss) {
			// Evicted at once (memcached full): do without the cache.
			return nil, nil, err
		}
		if err != nil {
			return nil, nil, err
		}
	}
	rec, ok := p.dec.decode(key, it.Flags, it.Value)
	if !ok {
		return it, nil, nil
	}
	return it, rec, nil
}

// markState is what a writer knows about its mark in one pool.
type markState int

const (
	// markUnknown: sending it failed; it may or may not be there.
	markUnknown markState = iota
	// markApplied: the mark is in the record.
	markApplied
	// markContended: the mark certainly is not in the record: every try
	// lost its compare-and-swap to other changes of the record. memcached
	// answers, so other processes read it, and a write without its mark
	// would let them serve what it changes (see doc.go): the write must
	// not run.
	markContended
)

// mark is one write's mark in one pool.
type mark struct {
	state markState
	key   string
	id    uint64
	seq   uint64
	// base holds the parts the mark dropped, when the write was alone:
	// they were exact then, so the writer can put them back after a write
	// that changed nothing, and update the timestamps after one that did.
	base *record
}

// begin marks a write to coll ("" for all collections) of uid as in
// progress: it drops every part the write can change and keeps readers
// and fills off them until end. A lost compare-and-swap means another
// change of the record went in, so the writers of one user make progress
// together and each retries until its deadline; one that lost every try
// until then is markContended.
func (p *pool) begin(uid int64, coll string) (m mark) {
	m = mark{id: rand.Uint64(), state: markUnknown}
	tries := p.tries()
	deadline := time.Now().Add(4 * p.cfg.Timeout)
	// lost: the last try ended with memcached's answer that the mark was
	// not stored (after a failed round trip the mark may be in).
	lost := false
	defer func() {
		if m.state == markUnknown && lost {
			m.state = markContended
		}
	}()
	for i := 0; time.Now().Before(deadline); i++ {
		lost = false
		key, it, err := p.load(uid)
		if err != nil {
			if tries--; tries > 0 {
				continue
			}
			return m
		}
		now := msOf(time.Now())
		mk := pending{ID: m.id, Until: now + p.cfg.PendingTTL.Milliseconds(), Coll: coll}
		if it == nil {
			r := &record{Seq: rand.Uint64(), Pending: []pending{mk}}
			item := p.newItem(key, r)
			err = p.do("add", func() error { return p.mc.Add(item) })
			if err == nil {
				p.dec.remember(key, item.Value, r)
				m.state, m.key, m.seq = markApplied, key, r.Seq
				return m
			}
			if !errors.Is(err, memcache.ErrNotStored) {
				if tries--; tries <= 0 {
					return m
				}
			} else {
				lost = true
			}
			continue
		}
		r, ok := p.dec.decode(key, it.Flags, it.Value)
		if !ok {
			r = &record{Seq: rand.Uint64()}
		}
		if r.hasMark(m.id) {
			// An earlier attempt got through without its answer: the mark
			// is in, but whether another came after it is unknown, so no
			// base (and seq 0 never matches).
			m.state, m.key = markApplied, key
			return m
		}
		r.prune(now)
		var base *record
		if !r.busy(now) {
			base = r.take(coll)
		} else {
			r.drop(coll)
		}
		r.Seq++
		r.Pending = append(r.Pending, mk)
		stored, err := p.cas(it, r)
		if err != nil {
			if tries--; tries > 0 {
				continue
			}
			return m
		}
		if stored {
			m.state, m.key, m.seq, m.base = markApplied, key, r.Seq, base
			return m
		}
		lost = true
		backoff(i)
	}
	return m
}

// tries is how many round trips of one write step may fail before the
// step gives up on a pool. Writes try even a pool that is out of service:
// other processes may be reading it, and a write that skipped it would
// leave them its old data. Two tries while the pool is healthy, since a
// connection pooled before a memcached restart fails once and the retry
// dials afresh; one while it is out of service, so that a hung pool costs a
// write one timeout per step.
func (p *pool) tries() int {
	if p.healthy.Load() {
		return 2
	}
	return 1
}

// effect is what a write did to the database, as far as the caller knows.
type effect struct {
	// written is false only when the write certainly changed nothing.
	written bool
	// coll is the collection written, "" for all.
	coll string
	// ts, when not 0, is the write's timestamp, given to the collection
	// coll and to the storage (and nothing else changed in the timestamps).
	ts weave.Timestamp
}

// end removes a write's mark after the write finished, dropping (or, for
// the timestamps, updating) every part the write changed. When that is not
// confirmed, the user stays dirty in this pool until a repair.
func (p *pool) end(uid int64, m mark, eff effect) {
	if !p.finish(uid, m, eff) {
		p.markDirty(uid, m.id)
	}
}

func (p *pool) finish(uid int64, m mark, eff effect) bool {
	return p.updateRecord(uid, func(key string, r *record) bool {
		now := msOf(time.Now())
		had := key == m.key && r.removeMark(m.id)
		r.prune(now)
		// The base is still exact only if this write was the only one
		// since its mark: the record's seq moved by no other mark, and the
		// mark was still there (not expired and pruned, not lost with an
		// evicted or replaced item).
		alone := had && m.base != nil && r.Seq == m.seq && !r.busy(now)
		switch {
		case !eff.written && !had:
			return false
		case !eff.written:
			if alone {
				r.restore(m.base)
			}
		default:
			r.drop(eff.coll)
			if alone && eff.ts != 0 {
				r.TS = m.base.TS.applyWrite(eff.coll, eff.ts)
			}
		}
		return true
	})
}

// clear drops every cached part of uid and the write marks ids of this
// process, and reports whether that is confirmed.
func (p *pool) clear(uid int64, ids []uint64) bool {
	return p.updateRecord(uid, func(_ string, r *record) bool {
		for _, id := range ids {
			r.removeMark(id)
		}
		r.prune(msOf(time.Now()))
		r.drop("")
		return true
	})
}

// updateRecord replaces uid's record, by compare-and-swap with retries, with
// what change makes of a fresh copy of it (change runs once per attempt and
// returns false to leave the record as it is). It reports whether the
// record is confirmed changed, or needed no change.
func (p *pool) updateRecord(uid int64, change func(key string, r *record) bool) bool {
	tries := p.tries()
	deadline := time.Now().Add(4 * p.cfg.Timeout)
	for i := 0; time.Now().Before(deadline); i++ {
		key, it, err := p.load(uid)
		if err != nil {
			if tries--; tries > 0 {
				continue
			}
			return false
		}
		if it == nil {
			// Nothing cached, and any fill will read the database after
			// now (see view).
			return true
		}
		r, ok := p.dec.decode(key, it.Flags, it.Value)
		if !ok {
			r = &record{Seq: rand.Uint64()}
		}
		if !change(key, r) {
			return true
		}
		stored, err := p.cas(it, r)
		if err != nil {
			if tries--; tries > 0 {
				continue
			}
			return false
		}
		if stored {
			return true
		}
		backoff(i)
	}
	return false
}

// backoff spreads the retries of writers that lost a compare-and-swap to
// each other.
func backoff(attempt int) {
	limit := min(time.Duration(attempt+1)*100*time.Microsecond, maxBackoff)
	time.Sleep(time.Duration(rand.Int64N(int64(limit))))
}
