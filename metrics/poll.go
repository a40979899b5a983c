package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// source is something slow to ask (a database server, the token database)
// whose answer becomes metrics.
type source interface {
	// describe sends every Desc fetch may use.
	describe(ch chan<- *prometheus.Desc)
	// fetch asks the source; it must give up when ctx is done.
	fetch(ctx context.Context) ([]prometheus.Metric, error)
}

// poller is a prometheus.Collector around a source that keeps scrapes fast
// whatever the source does: a scrape reuses the last answer while it is
// younger than interval; otherwise it starts one fetch (never more than one
// at a time) and waits for it at most timeout, then serves what it has. A
// failed or late fetch counts in weave_collector_errors_total and turns
// weave_collector_up to 0; answers older than staleAfter are dropped.
type poller struct {
	src                           source
	timeout, interval, staleAfter time.Duration

	// The error count is reported by the poller itself, not by a
	// CounterVec, so that a scrape shows the failure it just waited for
	// (the registry collects collectors concurrently).
	upDesc, durDesc, errDesc, tsDesc *prometheus.Desc

	mu        sync.Mutex
	last      []prometheus.Metric
	lastOK    time.Time // when last was fetched
	lastStart time.Time // when the latest fetch started
	lastDur   time.Duration
	up        bool
	errs      float64  // failed or late fetches
	run       *pollRun // the fetch in progress, if any
}

type pollRun struct {
	done    chan struct{}
	late    bool // a scrape gave up waiting and counted the error already
	started time.Time
}

func (m *Metrics) newPoller(kind, db string, src source, interval time.Duration) *poller {
	labels := prometheus.Labels{"collector": kind, "db": db}
	return &poller{
		src:        src,
		timeout:    m.opts.PollTimeout,
		interval:   interval,
		staleAfter: m.opts.StaleAfter,
		upDesc: prometheus.NewDesc("weave_collector_up",
			"1 if the latest poll of this source succeeded in time, else 0.", nil, labels),
		durDesc: prometheus.NewDesc("weave_collector_duration_seconds",
			"Duration of the latest completed poll of this source.", nil, labels),
		errDesc: prometheus.NewDesc("weave_collector_errors_total",
			"Failed or timed-out polls of a database server or of the node list; the scrape goes on with cached or no values.",
			nil, labels),
		// The time of the values on show: a consumer computing rates
		// between scrapes (the dashboard) divides by the time between
		// polls, not between its scrapes, which the cache decouples.
		tsDesc: prometheus.NewDesc("weave_collector_last_success_timestamp_seconds",
			"When the values now reported were fetched (Unix time).", nil, labels),
	}
}

// Describe implements prometheus.Collector.
func (p *poller) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.upDesc
	ch <- p.durDesc
	ch <- p.errDesc
	ch <- p.tsDesc
	p.src.describe(ch)
}

// Collect implements prometheus.Collector.
func (p *poller) Collect(ch chan<- prometheus.Metric) {
	st := p.get()
	for _, m := range st.metrics {
		ch <- m
	}
	if len(st.metrics) > 0 {
		ch <- prometheus.MustNewConstMetric(p.tsDesc, prometheus.GaugeValue, float64(st.at.UnixNano())/1e9)
	}
	ch <- prometheus.MustNewConstMetric(p.upDesc, prometheus.GaugeValue, b2f(st.up))
	ch <- prometheus.MustNewConstMetric(p.durDesc, prometheus.GaugeValue, st.dur.Seconds())
	ch <- prometheus.MustNewConstMetric(p.errDesc, prometheus.CounterValue, st.errs)
}

// pollState is what a scrape reports.
type pollState struct {
	metrics []prometheus.Metric // nil when there is no fresh enough answer
	at      time.Time           // when metrics were fetched
	up      bool
	dur     time.Duration
	errs    float64
}

func (p *poller) get() pollState {
	p.mu.Lock()
	now := time.Now()
	run := p.run
	if run == nil && now.Sub(p.lastStart) >= p.interval {
		run = p.start(now)
	}
	p.mu.Unlock()

	if run != nil {
		// Wait for the fetch in progress, but only until its own deadline:
		// a fetch that started long ago (a stuck driver) costs nothing.
		wait := p.timeout - time.Since(run.started)
		t := time.NewTimer(max(wait, 0))
		select {
		case <-run.done:
		case <-t.C:
		}
		t.Stop()
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil && time.Since(p.run.started) >= p.timeout {
		if !p.run.late {
			p.run.late = true
			p.errs++
		}
		p.up = false
	}
	st := pollState{up: p.up, dur: p.lastDur, errs: p.errs}
	if p.last != nil && time.Since(p.lastOK) <= p.staleAfter {
		st.metrics, st.at = p.last, p.lastOK
	}
	return st
}

// start launches a fetch; p.mu is held.
func (p *poller) start(now time.Time) *pollRun {
	run := &pollRun{done: make(chan struct{}), started: now}
	p.run = run
	p.lastStart = now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		defer cancel()
		ms, err := p.safeFetch(ctx)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		p.mu.Lock()
		p.run = nil
		p.lastDur = time.Since(run.started)
		if err != nil {
			if !run.late {
				p.errs++
			}
			p.up = false
		} else {
			p.last, p.lastOK, p.up = ms, time.Now(), true
		}
		p.mu.Unlock()
		close(run.done)
	}()
	return run
}

// safeFetch runs the source, turning a panic into an error: the fetch runs
// on its own goroutine, where a panic would end the whole process.
func (p *poller) safeFetch(ctx context.Context) (ms []prometheus.Metric, err error) {
	defer func() {
		if r := recover(); r != nil {
			ms, err = nil, fmt.Errorf("metrics: collector panicked: %v", r)
		}
	}()
	return p.src.fetch(ctx)
}
