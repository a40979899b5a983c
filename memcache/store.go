package memcache

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/weave-sync/weave"
)

// maxHotPayload is the largest hot record payload cached; Firefox's
// meta/global and crypto/keys are about a kilobyte.
const maxHotPayload = 64 << 10

// expiryMargin keeps a cached hot record from being served in the last
// second before its expiry, so that clock differences between processes and
// the database cannot make an expired record visible.
const expiryMargin = int64(time.Second / time.Millisecond)

// Store is a weave.Store that caches what every sync reads in memcached, in
// front of another Store that holds the data.
type Store struct {
	inner     weave.Store
	cfg       Config
	primary   *pool
	mirror    *pool // nil without mirror servers
	hints     hints
	closeOnce sync.Once
	closeErr  error
}

var _ weave.Store = (*Store)(nil)

// New returns a Store caching inner in the pools of cfg. It does not
// contact memcached: a pool that is down is bypassed until it answers.
// The Store owns inner: Close closes it.
func New(inner weave.Store, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{inner: inner, cfg: cfg}
	if s.primary, err = newPool(Primary.String(), cfg.Servers, &s.cfg); err != nil {
		return nil, err
	}
	if len(cfg.MirrorServers) > 0 {
		if s.mirror, err = newPool(Mirror.String(), cfg.MirrorServers, &s.cfg); err != nil {
			s.primary.close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops the pools' background work and closes the inner store.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		err := s.primary.close()
		if s.mirror != nil {
			err = errors.Join(err, s.mirror.close())
		}
		s.closeErr = errors.Join(s.inner.Close(), err)
	})
	return s.closeErr
}

// Ping checks the inner store only: the service works without its cache.
func (s *Store) Ping(ctx context.Context) error { return s.inner.Ping(ctx) }

// PoolStatus describes a pool, for health pages and tests.
type PoolStatus struct {
	// Configured is false for a mirror that has no servers.
	Configured bool
	// Healthy is false while the pool is bypassed after a failed round
	// trip and not yet answering a probe.
	Healthy bool
	// Trusted is false while reads of every user bypass the pool.
	Trusted bool
	// DirtyUsers is the number of users whose reads bypass the pool until
	// their invalidation is confirmed.
	DirtyUsers int
}

// Status returns the state of a pool.
func (s *Store) Status(p Pool) PoolStatus {
	pl := s.pool(p)
	if pl == nil {
		return PoolStatus{}
	}
	return PoolStatus{
		Configured: true,
		Healthy:    pl.healthy.Load(),
		Trusted:    !pl.distrusted.Load(),
		DirtyUsers: int(pl.nDirty.Load()),
	}
}

func (s *Store) pool(p Pool) *pool {
	switch p {
	case Primary:
		return s.primary
	case Mirror:
		return s.mirror
	}
	return nil
}

func nowMs() int64 { return msOf(time.Now()) }

// cached serves one cacheable read from the primary pool:
//   - blocked reports that a write in progress covers the data;
//   - serve answers from a record holding fresh data (setting the caller's
//     results) and reports whether it could;
//   - direct reads the database for a read that must not fill the cache;
//   - load reads the database for a fill (nil: direct) and put stores what
//     it read into the record (nil: a miss reads the database and does not
//     fill).
//
// Errors of the database are returned as they are; errors of memcached are
// never returned: the read then goes to the database.
func (s *Store) cached(uid int64, op string, blocked, serve func(r *record, now int64) bool,
	direct, load func() error, put func(r *record, at int64)) error {
	p := s.primary
	if load == nil {
		load = direct
	}
	if !p.readable(uid) {
		s.cfg.Observer.Lookup(p.name, op, Bypass)
		return direct()
	}
	// A read that never fills does not create an absent record: that
	// would cost two more round trips for nothing.
	it, rec, err := p.view(uid, put != nil)
	now := nowMs()
	if err == nil && it == nil {
		s.cfg.Observer.Lookup(p.name, op, Miss)
		return direct()
	}
	if err != nil || rec == nil || blocked(rec, now) {
		s.cfg.Observer.Lookup(p.name, op, Bypass)
		return direct()
	}
	if serve(rec, now) {
		s.cfg.Observer.Lookup(p.name, op, Hit)
		return nil
	}
	s.cfg.Observer.Lookup(p.name, op, Miss)
	// now was taken after the record was read and before the database
	// is: the data is at least this fresh.
	if err := load(); err != nil {
		return err
	}
	if put == nil || !p.readable(uid) {
		return nil
	}
	rec.prune(nowMs())
	put(rec, now)
	// A lost compare-and-swap means a write or another fill came first;
	// either way this data is not needed.
	p.cas(it, rec)
	return nil
}

func busy(r *record, now int64) bool { return r.busy(now) }

// CollectionTimestamps implements weave.Store.
func (s *Store) CollectionTimestamps(ctx context.Context, uid int64) (colls map[string]weave.Timestamp, storage weave.Timestamp, err error) {
	err = s.cached(uid, "CollectionTimestamps", busy,
		func(r *record, now int64) bool {
			if !s.freshTS(r, now) {
				return false
			}
			colls, storage = r.TS.colls(), weave.Timestamp(r.TS.Storage)
			return true
		},
		func() (err error) {
			colls, storage, err = s.inner.CollectionTimestamps(ctx, uid)
			return err
		}, nil,
		func(r *record, at int64) {
			r.TS = newTSPart(colls, storage, at)
		})
	if err != nil {
		return nil, 0, err
	}
	s.hints.seen(uid, colls)
	return colls, storage, nil
}

func (s *Store) freshTS(r *record, now int64) bool {
	return r.TS != nil && fresh(r.TS.At, now, s.cfg.TTL)
}

// fillTS is the fill of the timestamps for LastModified and
// CollectionModified, which read the whole set so that the next call of
// any of the three is a hit.
func (s *Store) fillTS(ctx context.Context, uid int64, then func(map[string]weave.Timestamp, weave.Timestamp)) (load func() error, put func(*record, int64)) {
	var colls map[string]weave.Timestamp
	var storage weave.Timestamp
	load = func() (err error) {
		colls, storage, err = s.inner.CollectionTimestamps(ctx, uid)
		if err == nil {
			then(colls, storage)
		}
		return err
	}
	put = func(r *record, at int64) {
		r.TS = newTSPart(colls, storage, at)
	}
	return load, put
}

// LastModified implements weave.Store.
func (s *Store) LastModified(ctx context.Context, uid int64) (ts weave.Timestamp, err error) {
	load, put := s.fillTS(ctx, uid, func(_ map[string]weave.Timestamp, st weave.Timestamp) { ts = st })
	err = s.cached(uid, "LastModified", busy,
		func(r *record, now int64) bool {
			if !s.freshTS(r, now) {
				return false
			}
			ts = weave.Timestamp(r.TS.Storage)
			return true
		},
		func() (err error) {
			ts, err = s.inner.LastModified(ctx, uid)
			return err
		}, load, put)
	if err != nil {
		return 0, err
	}
	return ts, nil
}

// CollectionModified implements weave.Store.
func (s *Store) CollectionModified(ctx context.Context, uid int64, collection string) (ts weave.Timestamp, err error) {
	load, put := s.fillTS(ctx, uid, func(c map[string]weave.Timestamp, _ weave.Timestamp) { ts = c[collection] })
	err = s.cached(uid, "CollectionModified", busy,
		func(r *record, now int64) bool {
			if !s.freshTS(r, now) {
				return false
			}
			ts = weave.Timestamp(r.TS.Colls[collection])
			return true
		},
		func() (err error) {
			ts, err = s.inner.CollectionModified(ctx, uid, collection)
			return err
		}, load, put)
	if err != nil {
		return 0, err
	}
	return ts, nil
}

// cachedMap serves CollectionCounts and CollectionUsage.
func (s *Store) cachedMap(uid int64, op string, part func(r *record) **mapPart, direct func() (map[string]int64, error)) (m map[string]int64, err error) {
	if s.cfg.UsageTTL < 0 {
		return direct()
	}
	err = s.cached(uid, op, busy,
		func(r *record, now int64) bool {
			p := *part(r)
			if p == nil || !fresh(p.At, now, s.cfg.UsageTTL) {
				return false
			}
			m = p.M
			if m == nil {
				m = make(map[string]int64)
			}
			return true
		},
		func() (err error) {
			m, err = direct()
			return err
		}, nil,
		func(r *record, at int64) { *part(r) = &mapPart{M: maps.Clone(m), At: at} })
	if err != nil {
		return nil, err
	}
	return m, nil
}

// CollectionCounts implements weave.Store.
func (s *Store) CollectionCounts(ctx context.Context, uid int64) (map[string]int64, error) {
	return s.cachedMap(uid, "CollectionCounts", func(r *record) **mapPart { return &r.Counts },
		func() (map[string]int64, error) { return s.inner.CollectionCounts(ctx, uid) })
}

// CollectionUsage implements weave.Store.
func (s *Store) CollectionUsage(ctx context.Context, uid int64) (map[string]int64, error) {
	return s.cachedMap(uid, "CollectionUsage", func(r *record) **mapPart { return &r.CUsage },
		func() (map[string]int64, error) { return s.inner.CollectionUsage(ctx, uid) })
}

// Usage implements weave.Store.
func (s *Store) Usage(ctx context.Context, uid int64) (n int64, err error) {
	direct := func() (err error) {
		n, err = s.inner.Usage(ctx, uid)
		return err
	}
	if s.cfg.UsageTTL < 0 {
		return n, direct()
	}
	err = s.cached(uid, "Usage", busy,
		func(r *record, now int64) bool {
			if r.Usage == nil || !fresh(r.Usage.At, now, s.cfg.UsageTTL) {
				return false
			}
			n = r.Usage.N
			return true
		}, direct, nil,
		func(r *record, at int64) { r.Usage = &usagePart{N: n, At: at} })
	if err != nil {
		return 0, err
	}
	return n, nil
}

// GetBSO implements weave.Store. Only the hot records are cached.
func (s *Store) GetBSO(ctx context.Context, uid int64, collection, id string) (b weave.BSO, err error) {
	if !isHot(collection, id) {
		return s.inner.GetBSO(ctx, uid, collection, id)
	}
	key := hotKey(collection, id)
	var notFound bool
	err = s.cached(uid, "GetBSO",
		func(r *record, now int64) bool { return r.busyColl(now, collection) },
		func(r *record, now int64) bool {
			p := r.BSOs[key]
			if p == nil || !fresh(p.At, now, s.cfg.TTL) {
				return false
			}
			if !p.Found {
				notFound = true
				return true
			}
			if p.Expires != 0 && p.Expires <= now+expiryMargin {
				return false
			}
			b = p.bso(id)
			return true
		},
		func() (err error) {
			b, err = s.inner.GetBSO(ctx, uid, collection, id)
			if errors.Is(err, weave.ErrNotFound) {
				notFound = true
				return nil
			}
			return err
		}, nil,
		func(r *record, at int64) {
			var p *bsoPart
			switch {
			case notFound:
				p = &bsoPart{At: at}
			case len(b.Payload) <= maxHotPayload:
				p = newBSOPart(b, at)
			default:
				return
			}
			if r.BSOs == nil {
				r.BSOs = make(map[string]*bsoPart)
			}
			r.BSOs[key] = p
		})
	if err != nil {
		return weave.BSO{}, err
	}
	if notFound {
		return weave.BSO{}, weave.ErrNotFound
	}
	return b, nil
}

// GetBSOs implements weave.Store. Records are not cached, but a read of
// the records newer than a time the collection has not changed since (the
// cached timestamp says so) is answered with an empty page and that
// timestamp; any other read goes to the database, and never fills.
func (s *Store) GetBSOs(ctx context.Context, uid int64, collection string, q weave.Query) (page weave.Page, err error) {
	return s.getBSOs(ctx, uid, collection, q, func() (weave.Page, error) {
		return s.inner.GetBSOs(ctx, uid, collection, q)
	})
}

// StreamBSOs implements weave.BSOStreamer: as GetBSOs, the records coming
// from the database as it reads them (an empty page from the cache calls
// fn for none).
func (s *Store) StreamBSOs(ctx context.Context, uid int64, collection string, q weave.Query, fn func(*weave.BSO) error) (weave.Page, error) {
	page, err := s.getBSOs(ctx, uid, collection, q, func() (weave.Page, error) {
		return weave.StreamBSOs(ctx, s.inner, uid, collection, q, fn)
	})
	page.BSOs = nil
	return page, err
}

// getBSOs answers a collection read from the cache where it can, else with
// read.
func (s *Store) getBSOs(ctx context.Context, uid int64, collection string, q weave.Query, read func() (weave.Page, error)) (page weave.Page, err error) {
	direct := func() (err error) {
		page, err = read()
		return err
	}
	if q.Newer <= 0 || q.Offset != "" {
		// An offset must still be checked by the database.
		return page, direct()
	}
	if s.hints.changedAfter(uid, collection, q.Newer) {
		// The cache could only say "changed" too.
		s.cfg.Observer.Lookup(s.primary.name, "GetBSOs", Miss)
		return page, direct()
	}
	err = s.cached(uid, "GetBSOs",
		func(r *record, now int64) bool { return r.busyColl(now, collection) },
		func(r *record, now int64) bool {
			if !s.freshTS(r, now) {
				return false
			}
			ts := weave.Timestamp(r.TS.Colls[collection])
			if ts > q.Newer {
				return false
			}
			page = weave.Page{BSOs: []weave.BSO{}, Modified: ts}
			return true
		},
		direct, nil, nil)
	return page, err
}

// marks are one write's marks in the primary and mirror pools.
type marks [2]mark

// begin marks a write in every pool, concurrently so that a slow pool
// delays the write once, not once per pool.
func (s *Store) begin(uid int64, coll string) (ms marks) {
	if s.mirror == nil {
		ms[0] = s.primary.begin(uid, coll)
		return ms
	}
	var wg sync.WaitGroup
	wg.Go(func() { ms[1] = s.mirror.begin(uid, coll) })
	ms[0] = s.primary.begin(uid, coll)
	wg.Wait()
	return ms
}

// end finishes a write in every pool before the write is acknowledged, so
// that the writer's next read sees it.
func (s *Store) end(uid int64, ms marks, eff effect) {
	if s.mirror == nil {
		s.primary.end(uid, ms[0], eff)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.mirror.end(uid, ms[1], eff) })
	s.primary.end(uid, ms[0], eff)
	wg.Wait()
}

// ErrContended refuses a write whose mark kept losing its compare-and-swap
// (see doc.go): nothing was written. The contention is other writes and
// fills of the same user, which end within their round trips, so the
// client may come back in a second.
var ErrContended error = &weave.UnavailableError{Reason: "memcache: too many concurrent changes of the user's cache record", RetryAfter: time.Second}

// abort removes the marks of ms that went in, for a write that did not run.
func (s *Store) abort(uid int64, ms marks, coll string) {
	eff := effect{written: false, coll: coll}
	if ms[0].state != markContended {
		s.primary.end(uid, ms[0], eff)
	}
	if s.mirror != nil && ms[1].state != markContended {
		s.mirror.end(uid, ms[1], eff)
	}
}

// nothingWritten reports errors after which the inner store guarantees
// that the write changed nothing. Any other error may follow a commit
// (a lost connection, a deadline during COMMIT), so it counts as a write.
func nothingWritten(err error) bool {
	switch weave.ErrorKindOf(err) {
	case weave.KindPrecondition, weave.KindNotFound, weave.KindInvalid, weave.KindOverQuota, weave.KindConflict, weave.KindTooLarge:
		return true
	}
	return false
}

// write runs a write of coll ("" for the whole storage) in the inner store
// between marking it in the pools and finishing it there. stamps says
// that a successful write gives its timestamp to coll and the storage and
// changes no other timestamp.
func (s *Store) write(uid int64, coll string, stamps bool, f func() (weave.Timestamp, error)) (weave.Timestamp, error) {
	ms := s.begin(uid, coll)
	if ms[0].state == markContended || ms[1].state == markContended {
		// A pool that answers but where the mark could not go in: running
		// the write unmarked would let other processes serve what it
		// changes (doc.go), so it does not run. Marks that went in
		// elsewhere come out as after a write that changed nothing.
		s.abort(uid, ms, coll)
		return 0, ErrContended
	}
	ts, err := f()
	eff := effect{written: true, coll: coll}
	switch {
	case err == nil && stamps:
		eff.ts = ts
	case err != nil && nothingWritten(err):
		eff.written = false
	}
	s.end(uid, ms, eff)
	if eff.ts != 0 {
		s.hints.wrote(uid, coll, eff.ts)
	}
	return ts, err
}

// PutBSO implements weave.Store.
func (s *Store) PutBSO(ctx context.Context, uid int64, collection string, u weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	return s.write(uid, collection, true, func() (weave.Timestamp, error) {
		return s.inner.PutBSO(ctx, uid, collection, u, pre)
	})
}

// PostBSOs implements weave.Store.
func (s *Store) PostBSOs(ctx context.Context, uid int64, collection string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	return s.write(uid, collection, true, func() (weave.Timestamp, error) {
		return s.inner.PostBSOs(ctx, uid, collection, us, pre)
	})
}

// DeleteBSO implements weave.Store.
func (s *Store) DeleteBSO(ctx context.Context, uid int64, collection, id string, pre weave.Precondition) (weave.Timestamp, error) {
	return s.write(uid, collection, true, func() (weave.Timestamp, error) {
		return s.inner.DeleteBSO(ctx, uid, collection, id, pre)
	})
}

// DeleteBSOs implements weave.Store. On a missing collection the returned
// timestamp is the unchanged storage timestamp, which the timestamp update
// recognises (it is not newer) and turns into a drop.
func (s *Store) DeleteBSOs(ctx context.Context, uid int64, collection string, ids []string, pre weave.Precondition) (weave.Timestamp, error) {
	return s.write(uid, collection, true, func() (weave.Timestamp, error) {
		return s.inner.DeleteBSOs(ctx, uid, collection, ids, pre)
	})
}

// DeleteCollection implements weave.Store.
func (s *Store) DeleteCollection(ctx context.Context, uid int64, collection string, pre weave.Precondition) (weave.Timestamp, error) {
	return s.write(uid, collection, false, func() (weave.Timestamp, error) {
		return s.inner.DeleteCollection(ctx, uid, collection, pre)
	})
}

// DeleteStorage implements weave.Store.
func (s *Store) DeleteStorage(ctx context.Context, uid int64, pre weave.Precondition) (weave.Timestamp, error) {
	return s.write(uid, "", false, func() (weave.Timestamp, error) {
		return s.inner.DeleteStorage(ctx, uid, pre)
	})
}

// CreateBatch implements weave.Store. Staged records change nothing that
// is cached until CommitBatch.
func (s *Store) CreateBatch(ctx context.Context, uid int64, collection string, us []weave.Update, pre weave.Precondition) (string, weave.Timestamp, error) {
	return s.inner.CreateBatch(ctx, uid, collection, us, pre)
}

// AppendBatch implements weave.Store.
func (s *Store) AppendBatch(ctx context.Context, uid int64, collection, batch string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	return s.inner.AppendBatch(ctx, uid, collection, batch, us, pre)
}

// CommitBatch implements weave.Store.
func (s *Store) CommitBatch(ctx context.Context, uid int64, collection, batch string, us []weave.Update, pre weave.Precondition) (weave.Timestamp, error) {
	return s.write(uid, collection, true, func() (weave.Timestamp, error) {
		return s.inner.CommitBatch(ctx, uid, collection, batch, us, pre)
	})
}

// PurgeExpired implements weave.Store. Expired records are already
// invisible, so nothing cached changes.
func (s *Store) PurgeExpired(ctx context.Context, limit int) (int64, error) {
	return s.inner.PurgeExpired(ctx, limit)
}

// Forget drops everything cached for uid in every pool, as a write to all
// its data would. Callers use it when the user's data changed behind the
// cache: a user moved onto or off this node's database by the fleet tools.
func (s *Store) Forget(uid int64) {
	s.hints.forget(uid)
	_, _ = s.write(uid, "", false, func() (weave.Timestamp, error) { return 0, nil })
}
