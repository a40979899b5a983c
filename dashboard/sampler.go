package dashboard

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// latencyLag is how many samples back latency quantiles are computed
// against: one interval alone holds too few requests on a quiet server
// for a stable p99.
const latencyLag = 5

// chartInfo describes one chart; its lines are listed in the order they
// first appeared, so colours stay put between refreshes.
type chartInfo struct {
	id, section, title, unit string
	lines                    []string
	hasLine                  map[string]bool
}

// point is one sample: every chart line's value at time t (NaN: unknown).
type point struct {
	t time.Time
	v map[string]float64 // chart id + "\x00" + line
}

// sampler gathers the registry every interval and keeps the derived
// series (rates, ratios, quantiles) of the last window in memory, so the
// page needs no Prometheus server.
type sampler struct {
	g         prometheus.Gatherer
	interval  time.Duration
	maxPoints int
	keepSnaps int

	mu       sync.Mutex
	points   []point // oldest first
	snaps    []*snap // the latest gatherings, oldest first
	charts   map[string]*chartInfo
	order    []string // chart ids, first seen first
	sections []string // section titles, first seen first
}

func newSampler(g prometheus.Gatherer, interval, window time.Duration) *sampler {
	return &sampler{
		g:         g,
		interval:  interval,
		maxPoints: max(2, int(window/interval)),
		// Enough for the one-minute tables and the latency lag.
		keepSnaps: max(latencyLag, int(time.Minute/interval)) + 1,
		charts:    map[string]*chartInfo{},
	}
}

// run samples until ctx is done.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}

func (s *sampler) sample(now time.Time) {
	fams := s.gather()
	if fams == nil {
		// Nothing gathered: a gap, rather than a snapshot without weave's
		// counters that the next one would be compared with.
		return
	}
	cur := newSnap(now, fams)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.snaps); n > 0 {
		prev := s.snaps[n-1]
		lag := s.snaps[max(0, n-latencyLag)]
		p := point{t: now, v: map[string]float64{}}
		s.derive(&p, cur, prev, lag)
		s.points = append(s.points, p)
		if over := len(s.points) - s.maxPoints; over > 0 {
			s.points = append(s.points[:0], s.points[over:]...)
		}
	}
	s.snaps = append(s.snaps, cur)
	if over := len(s.snaps) - s.keepSnaps; over > 0 {
		s.snaps = append(s.snaps[:0], s.snaps[over:]...)
	}
}

// gather reads the registry. A failing collector still leaves the others'
// families, which are used; a panicking one costs this sample only, as
// nothing on the sampler's goroutine may take the process down.
func (s *sampler) gather() (fams []*dto.MetricFamily) {
	defer func() {
		if recover() != nil {
			fams = nil
		}
	}()
	fams, _ = s.g.Gather()
	return fams
}

// put records a line's value and registers its chart; s.mu is held.
func (s *sampler) put(p *point, c chart, line string, v float64) {
	ci := s.charts[c.id]
	if ci == nil {
		ci = &chartInfo{id: c.id, section: c.section, title: c.title, unit: c.unit, hasLine: map[string]bool{}}
		s.charts[c.id] = ci
		s.order = append(s.order, c.id)
		if !contains(s.sections, c.section) {
			s.sections = append(s.sections, c.section)
		}
	}
	if !ci.hasLine[line] {
		ci.hasLine[line] = true
		ci.lines = append(ci.lines, line)
	}
	p.v[c.id+"\x00"+line] = v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type chart struct{ id, section, title, unit string }

// Section titles, in the page's order for the fixed ones.
const (
	secTraffic = "Traffic"
	secSync    = "Sync"
	secNodes   = "Nodes"
	secCache   = "Cache"
	secPush    = "Push"
)

// notSelf leaves out the dashboard's own polling and Prometheus scrapes,
// which would otherwise be most of the traffic of an idle server.
func notSelf(m *dto.Metric) bool {
	ep := label(m, "endpoint")
	return ep != "/metrics" && !strings.HasPrefix(ep, "/__dashboard__")
}

// legacyEndpoint selects the requests of Sync 1.1 and User API 1.0.
func legacyEndpoint(m *dto.Metric) bool {
	ep := label(m, "endpoint")
	return strings.HasPrefix(ep, "/1.1/") || strings.HasPrefix(ep, "/user/1.0/") || ep == "/misc/1.0/captcha_html"
}

func statusClass(m *dto.Metric) string {
	st := label(m, "status")
	if len(st) == 3 {
		return st[:1] + "xx"
	}
	return "other"
}

// strict reports families whose series may appear with a large value
// already (server counters, pools watched late): a series missing from
// the previous sample gives no rate rather than a spike. weave's own
// counters start at zero, so a new series' whole value is its delta.
func strict(name string) bool {
	for _, p := range []string{"weave_mysql_", "weave_postgres_", "weave_sqlite_", "weave_db_pool_", "weave_node_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func signature(m *dto.Metric) string {
	var b strings.Builder
	for _, lp := range m.GetLabel() {
		b.WriteString(lp.GetName())
		b.WriteByte('=')
		b.WriteString(lp.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

// deltas returns, per group key, the increase of the matching counters
// from prev to cur (a reset counts from zero). Groups no series
// contributed to are absent.
func deltas(cur, prev *snap, name string, sel match, key func(*dto.Metric) string) map[string]float64 {
	out := map[string]float64{}
	if !cur.has(name) {
		return out
	}
	before := map[string]float64{}
	if prev.has(name) {
		for _, m := range prev.fams[name].GetMetric() {
			if sel(m) {
				before[signature(m)] = value(m)
			}
		}
	}
	isStrict := strict(name)
	for _, m := range cur.fams[name].GetMetric() {
		if !sel(m) {
			continue
		}
		v := value(m)
		b, ok := before[signature(m)]
		switch {
		case !ok && isStrict:
			continue
		case !ok:
			b = 0
		case v < b:
			b = 0
		}
		out[key(m)] += v - b
	}
	return out
}

func whole(*dto.Metric) string { return "" }

// rate is the per-second increase of the matching counters; NaN if there
// is nothing to compare.
func rate(cur, prev *snap, name string, sel match) float64 {
	return rateOver(cur, prev, name, sel, cur.t.Sub(prev.t).Seconds())
}

// rateOver is rate over dt seconds, for values not read at sample time.
func rateOver(cur, prev *snap, name string, sel match, dt float64) float64 {
	d, ok := deltas(cur, prev, name, sel, whole)[""]
	if !ok || dt <= 0 {
		return math.NaN()
	}
	return d / dt
}

func ratesBy(cur, prev *snap, name string, sel match, key func(*dto.Metric) string) map[string]float64 {
	return ratesOver(cur, prev, name, sel, key, cur.t.Sub(prev.t).Seconds())
}

func ratesOver(cur, prev *snap, name string, sel match, key func(*dto.Metric) string, dt float64) map[string]float64 {
	out := deltas(cur, prev, name, sel, key)
	for k, v := range out {
		if dt > 0 {
			out[k] = v / dt
		} else {
			out[k] = math.NaN()
		}
	}
	return out
}

func byLabel(l string) func(*dto.Metric) string {
	return func(m *dto.Metric) string { return label(m, l) }
}

// ratio is a/b (×100 for percent); NaN when b is zero.
func ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return 100 * a / b
}

// derive computes one point's series; s.mu is held.
func (s *sampler) derive(p *point, cur, prev, lag *snap) {
	// Traffic.
	if cur.has("weave_http_requests_total") {
		c := chart{"traffic.requests", secTraffic, "Request rate", "req/s"}
		s.put(p, c, "all", rate(cur, prev, "weave_http_requests_total", notSelf))
		classes := ratesBy(cur, prev, "weave_http_requests_total", notSelf, statusClass)
		e := chart{"traffic.errors", secTraffic, "Error responses", "req/s"}
		for _, cl := range []string{"4xx", "5xx"} {
			v, ok := classes[cl]
			if !ok {
				v = 0
			}
			s.put(p, e, cl, v)
		}
	}
	if cur.has("weave_http_request_duration_seconds") {
		h := cur.hist("weave_http_request_duration_seconds", notSelf).minus(lag.hist("weave_http_request_duration_seconds", notSelf))
		c := chart{"traffic.latency", secTraffic, "Latency", "ms"}
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", .5}, {"p95", .95}, {"p99", .99}} {
			s.put(p, c, q.name, 1000*h.quantile(q.q))
		}
	}
	if cur.has("weave_http_request_body_bytes_total") || cur.has("weave_http_response_body_bytes_total") {
		c := chart{"traffic.bytes", secTraffic, "Body bytes", "B/s"}
		s.put(p, c, "in", zeroNaN(rate(cur, prev, "weave_http_request_body_bytes_total", notSelf), cur.has("weave_http_request_body_bytes_total")))
		s.put(p, c, "out", zeroNaN(rate(cur, prev, "weave_http_response_body_bytes_total", notSelf), cur.has("weave_http_response_body_bytes_total")))
	}

	// Sync.
	rec := chart{"sync.records", secSync, "Records", "/s"}
	s.put(p, rec, "written", rate(cur, prev, "weave_records_written_total", all))
	s.put(p, rec, "read", rate(cur, prev, "weave_records_read_total", all))
	bat := chart{"sync.batches", secSync, "Batches", "/s"}
	s.put(p, bat, "opened", rate(cur, prev, "weave_batches_opened_total", all))
	s.put(p, bat, "committed", rate(cur, prev, "weave_batches_committed_total", all))
	auth := chart{"sync.auth", secSync, "Tokens and authentication", "/s"}
	s.put(p, auth, "tokens issued", rate(cur, prev, "weave_tokens_issued_total", all))
	s.put(p, auth, "new uids", rate(cur, prev, "weave_token_users_allocated_total", all))
	s.put(p, auth, "token refusals", zeroNaN(rate(cur, prev, "weave_token_refusals_total", all), true))
	s.put(p, auth, "hawk failures", zeroNaN(rate(cur, prev, "weave_hawk_failures_total", all), true))
	if cur.has("weave_legacy_records_written_total") {
		// Sync 1.1 (Pale Moon, Basilisk): its share of the traffic.
		c := chart{"sync.legacy", secSync, "Sync 1.1 (Pale Moon, Basilisk)", "/s"}
		s.put(p, c, "requests", zeroNaN(rate(cur, prev, "weave_http_requests_total", legacyEndpoint), cur.has("weave_http_requests_total")))
		s.put(p, c, "written", rate(cur, prev, "weave_legacy_records_written_total", all))
		s.put(p, c, "read", rate(cur, prev, "weave_legacy_records_read_total", all))
		s.put(p, c, "auth failures", zeroNaN(rate(cur, prev, "weave_legacy_auth_failures_total", all), true))
		s.put(p, c, "sign-ups", zeroNaN(rate(cur, prev, "weave_legacy_signups_total", labelIs("outcome", "created")), true))
	}
	if cur.has("weave_conflicts_total") {
		c := chart{"sync.conflicts", secSync, "Conflicts", "/s"}
		r := ratesBy(cur, prev, "weave_conflicts_total", all, byLabel("status"))
		for _, st := range sortedKeys(r) {
			s.put(p, c, st, r[st])
		}
	}

	// Nodes.
	if cur.has("weave_node_users") {
		c := chart{"nodes.users", secNodes, "Users per node", ""}
		users := cur.group("weave_node_users", all, byLabel("node"))
		for _, n := range sortedKeys(users) {
			s.put(p, c, n, users[n])
		}
	}

	// Cache.
	if cur.has("weave_cache_lookups_total") {
		byOutcome := deltas(cur, prev, "weave_cache_lookups_total", all, byLabel("outcome"))
		total := byOutcome["hit"] + byOutcome["miss"] + byOutcome["bypass"]
		hc := chart{"cache.hit", secCache, "Cache hit rate", "%"}
		s.put(p, hc, "hit", s.steady(hc, "hit", ratio(byOutcome["hit"], total)))
		c := chart{"cache.ops", secCache, "Cache lookups", "/s"}
		r := ratesBy(cur, prev, "weave_cache_lookups_total", all, byLabel("outcome"))
		for _, o := range []string{"hit", "miss", "bypass"} {
			s.put(p, c, o, r[o])
		}
		s.put(p, c, "errors", zeroNaN(rate(cur, prev, "weave_cache_roundtrip_errors_total", all), true))
	}

	// Push, once the service has had a connection or a message (its
	// families exist in every process, with or without --push).
	if s.charts["push.connections"] != nil || pushActive(cur) {
		s.put(p, chart{"push.connections", secPush, "Push connections", ""}, "open", gaugeOr0(cur, "weave_push_connections"))
		r := chart{"push.registrations", secPush, "Push registrations", "/s"}
		regs := ratesBy(cur, prev, "weave_push_registrations_total", all, byLabel("op"))
		for _, op := range []string{"register", "unregister"} {
			s.put(p, r, op, regs[op])
		}
		m := chart{"push.messages", secPush, "Push messages", "/s"}
		msgs := ratesBy(cur, prev, "weave_push_messages_total", all, byLabel("event"))
		for _, e := range []string{"stored", "direct", "delivered", "expired", "dropped"} {
			s.put(p, m, e, msgs[e])
		}
		if cur.has("weave_push_delivery_seconds") {
			h := cur.hist("weave_push_delivery_seconds", all).minus(lag.hist("weave_push_delivery_seconds", all))
			c := chart{"push.latency", secPush, "Push delivery latency (acceptance to ack)", "ms"}
			s.put(p, c, "p50", 1000*h.quantile(.5))
			s.put(p, c, "p99", 1000*h.quantile(.99))
		}
	}

	// Databases.
	for _, db := range databases(cur) {
		s.deriveDB(p, cur, prev, db)
	}
}

// pushActive reports whether the push service has done anything: an open
// connection or any registration or message counted.
func pushActive(cur *snap) bool {
	if v, ok := cur.sum("weave_push_connections", all); ok && v > 0 {
		return true
	}
	for _, name := range []string{"weave_push_registrations_total", "weave_push_messages_total"} {
		if v, ok := cur.sum(name, all); ok && v > 0 {
			return true
		}
	}
	return false
}

// gaugeOr0 is a gauge's value, 0 if absent.
func gaugeOr0(cur *snap, name string) float64 {
	v, _ := cur.sum(name, all)
	return v
}

// zeroNaN turns "no series yet" into 0 for families that exist but have
// no children until the first event.
func zeroNaN(v float64, familyKnown bool) float64 {
	if math.IsNaN(v) && familyKnown {
		return 0
	}
	return v
}

type dbInfo struct{ name, kind string }

// databases lists the watched databases: those with pool statistics or a
// server statistics collector.
func databases(cur *snap) []dbInfo {
	kinds := map[string]float64{}
	kindOf := map[string]string{}
	for _, m := range famMetrics(cur, "weave_collector_up") {
		if c := label(m, "collector"); c != "nodes" {
			kindOf[label(m, "db")] = c
			kinds[label(m, "db")] = 1
		}
	}
	for _, m := range famMetrics(cur, "weave_db_pool_open_connections") {
		kinds[label(m, "db")] = 1
	}
	var out []dbInfo
	for _, n := range sortedKeys(kinds) {
		out = append(out, dbInfo{n, kindOf[n]})
	}
	return out
}

func famMetrics(s *snap, name string) []*dto.Metric {
	if !s.has(name) {
		return nil
	}
	return s.fams[name].GetMetric()
}

func dbSection(db dbInfo) string {
	if db.kind == "" {
		return "Database " + db.name
	}
	return "Database " + db.name + " (" + db.kind + ")"
}

// pollTime is when the server statistics of db now on show were fetched.
func pollTime(s *snap, db dbInfo) (float64, bool) {
	sel := and(labelIs("db", db.name), labelIs("collector", db.kind))
	if len(s.group("weave_collector_last_success_timestamp_seconds", sel, whole)) == 0 {
		return 0, false
	}
	return s.sum("weave_collector_last_success_timestamp_seconds", sel)
}

// repeat copies into p the previous point's values of the charts whose id
// starts with prefix, except those starting with except; s.mu is held.
func (s *sampler) repeat(p *point, prefix, except string) {
	if len(s.points) == 0 {
		return
	}
	for k, v := range s.points[len(s.points)-1].v {
		if strings.HasPrefix(k, prefix) && !strings.HasPrefix(k, except) {
			p.v[k] = v
		}
	}
}

// steady is v, or when v is NaN the line's previous value: a hit rate
// with no reads in the interval is unknown, and a gap every quiet second
// would hide the trend; s.mu is held.
func (s *sampler) steady(c chart, line string, v float64) float64 {
	if !math.IsNaN(v) || len(s.points) == 0 {
		return v
	}
	if prev, ok := s.points[len(s.points)-1].v[c.id+"\x00"+line]; ok {
		return prev
	}
	return v
}

func (s *sampler) deriveDB(p *point, cur, prev *snap, db dbInfo) {
	sec := dbSection(db)
	id := "db." + db.name + "."
	isDB := labelIs("db", db.name)
	gauge := func(name string, sel match) float64 {
		v, ok := cur.sum(name, and(isDB, sel))
		if !ok || len(cur.group(name, and(isDB, sel), whole)) == 0 {
			return math.NaN()
		}
		return v
	}

	// Pool statistics are read live at every sample.
	if cur.has("weave_db_pool_open_connections") {
		c := chart{id + "pool", sec, "Pool connections", ""}
		s.put(p, c, "in use", gauge("weave_db_pool_in_use_connections", all))
		s.put(p, c, "idle", gauge("weave_db_pool_idle_connections", all))
		s.put(p, c, "waits/s", rate(cur, prev, "weave_db_pool_waits_total", isDB))
	}

	// Server statistics are polled less often than the page samples: rates
	// are over the time between polls, and a sample without a new poll
	// repeats the previous values rather than showing a zero rate.
	dt := cur.t.Sub(prev.t).Seconds()
	if tc, ok := pollTime(cur, db); ok {
		if tp, ok := pollTime(prev, db); ok {
			if tc == tp {
				s.repeat(p, id, id+"pool")
				return
			}
			dt = tc - tp
		}
	}
	rateOf := func(name string, sel match) float64 { return rateOver(cur, prev, name, and(isDB, sel), dt) }
	ratesOf := func(name, lbl string) map[string]float64 {
		return ratesOver(cur, prev, name, isDB, byLabel(lbl), dt)
	}
	switch db.kind {
	case "mysql":
		c := chart{id + "rows", sec, "Row operations", "/s"}
		ops := ratesOf("weave_mysql_row_operations_total", "operation")
		for _, op := range []string{"read", "inserted", "updated", "deleted"} {
			v, ok := ops[op]
			if !ok {
				v = math.NaN()
			}
			s.put(p, c, op, v)
		}
		req := deltas(cur, prev, "weave_mysql_innodb_buffer_pool_read_requests_total", isDB, whole)
		disk := deltas(cur, prev, "weave_mysql_innodb_buffer_pool_reads_total", isDB, whole)
		hit := math.NaN()
		if r, ok := req[""]; ok && r > 0 {
			hit = 100 * (1 - disk[""]/r)
		}
		bp := chart{id + "bp", sec, "Buffer pool hit rate", "%"}
		s.put(p, bp, "hit", s.steady(bp, "hit", hit))
		l := chart{id + "locks", sec, "Row lock waits and queries", "/s"}
		s.put(p, l, "lock waits", rateOf("weave_mysql_innodb_row_lock_waits_total", all))
		s.put(p, l, "queries", rateOf("weave_mysql_questions_total", all))
		s.put(p, l, "slow queries", rateOf("weave_mysql_slow_queries_total", all))
		h := chart{id + "history", sec, "History list length and threads", ""}
		s.put(p, h, "history length", gauge("weave_mysql_innodb_history_list_length", all))
		s.put(p, h, "threads connected", gauge("weave_mysql_threads_connected", all))
	case "postgres":
		x := chart{id + "xact", sec, "Transactions", "/s"}
		s.put(p, x, "commit", rateOf("weave_postgres_xact_commit_total", all))
		s.put(p, x, "rollback", rateOf("weave_postgres_xact_rollback_total", all))
		s.put(p, x, "deadlocks", rateOf("weave_postgres_deadlocks_total", all))
		t := chart{id + "tuples", sec, "Tuples", "/s"}
		tup := ratesOf("weave_postgres_tuples_total", "operation")
		for _, op := range []string{"returned", "fetched", "inserted", "updated", "deleted"} {
			v, ok := tup[op]
			if !ok {
				v = math.NaN()
			}
			s.put(p, t, op, v)
		}
		hitD := deltas(cur, prev, "weave_postgres_blocks_hit_total", isDB, whole)
		readD := deltas(cur, prev, "weave_postgres_blocks_read_total", isDB, whole)
		hit := math.NaN()
		if h, ok := hitD[""]; ok {
			hit = ratio(h, h+readD[""])
		}
		bc := chart{id + "cache", sec, "Buffer cache hit rate", "%"}
		s.put(p, bc, "hit", s.steady(bc, "hit", hit))
		s.put(p, chart{id + "backends", sec, "Backends", ""}, "backends", gauge("weave_postgres_backends", all))
	case "sqlite":
		c := chart{id + "size", sec, "File sizes", "bytes"}
		s.put(p, c, "database", gauge("weave_sqlite_database_bytes", all))
		s.put(p, c, "WAL", gauge("weave_sqlite_wal_bytes", all))
		s.put(p, chart{id + "free", sec, "Free pages", ""}, "freelist", gauge("weave_sqlite_freelist_pages", all))
	}
}
