package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weave-sync/weave/memcache"
)

type cacheMetrics struct {
	lookups   *prometheus.CounterVec   // pool, op, outcome
	latency   *prometheus.HistogramVec // pool, cmd
	errors    *prometheus.CounterVec   // pool, cmd
	healthy   *prometheus.GaugeVec     // pool
	trusted   *prometheus.GaugeVec     // pool
	seenPools sync.Map                 // pool name → struct{}
}

func newCacheMetrics(f factory) *cacheMetrics {
	return &cacheMetrics{
		lookups: f.counterVec("weave_cache_lookups_total",
			"Cacheable reads by memcached pool, store operation and outcome (hit, miss, bypass).",
			"pool", "op", "outcome"),
		latency: f.histogramVec("weave_cache_roundtrip_duration_seconds",
			"memcached round trips by pool and command.",
			[]float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}, "pool", "cmd"),
		errors: f.counterVec("weave_cache_roundtrip_errors_total",
			"memcached round trips that failed (each takes the pool out of service until a probe succeeds).",
			"pool", "cmd"),
		healthy: f.gaugeVec("weave_cache_pool_healthy",
			"1 while a memcached pool is in service, 0 while it is skipped after an error.", "pool"),
		trusted: f.gaugeVec("weave_cache_pool_trusted",
			"1 while a memcached pool's contents are trusted, 0 while reads bypass it for every user.", "pool"),
	}
}

// CacheObserver returns the memcache.Observer to put in memcache.Config:
// it feeds the weave_cache_… metrics.
func (m *Metrics) CacheObserver() memcache.Observer {
	if m == nil {
		return memcache.NopObserver{}
	}
	return cacheObserver{m.cache}
}

type cacheObserver struct{ c *cacheMetrics }

// seen gives a pool its state gauges on first use: memcache only reports
// state changes, and a pool starts healthy and trusted.
func (o cacheObserver) seen(pool string) {
	if _, loaded := o.c.seenPools.LoadOrStore(pool, struct{}{}); !loaded {
		o.c.healthy.WithLabelValues(pool).Set(1)
		o.c.trusted.WithLabelValues(pool).Set(1)
	}
}

// Lookup implements memcache.Observer.
func (o cacheObserver) Lookup(pool, op string, outcome memcache.Outcome) {
	o.seen(pool)
	o.c.lookups.WithLabelValues(pool, op, string(outcome)).Inc()
}

// RoundTrip implements memcache.Observer.
func (o cacheObserver) RoundTrip(pool, cmd string, latency time.Duration, err error) {
	o.seen(pool)
	o.c.latency.WithLabelValues(pool, cmd).Observe(latency.Seconds())
	if err != nil {
		o.c.errors.WithLabelValues(pool, cmd).Inc()
	}
}

// PoolState implements memcache.Observer.
func (o cacheObserver) PoolState(pool string, healthy, trusted bool) {
	o.c.seenPools.Store(pool, struct{}{})
	o.c.healthy.WithLabelValues(pool).Set(b2f(healthy))
	o.c.trusted.WithLabelValues(pool).Set(b2f(trusted))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
