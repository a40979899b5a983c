package dashboard

import (
	"math"
	"sort"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// num is a float that encodes NaN and infinities as JSON null (a gap in a
// chart) and rounds to 5 significant digits to keep the payload small.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 5, 64), nil
}

type apiResponse struct {
	Interval  float64       `json:"interval"` // seconds between samples
	Window    float64       `json:"window"`   // seconds of history kept
	Now       int64         `json:"now"`      // ms since the epoch
	T         []int64       `json:"t"`        // sample times, ms since the epoch
	Sections  []apiSection  `json:"sections"`
	Nodes     []apiNode     `json:"nodes"`
	Databases []apiDatabase `json:"databases"`
	Endpoints []apiEndpoint `json:"endpoints"`
}

type apiSection struct {
	Title  string     `json:"title"`
	Charts []apiChart `json:"charts"`
}

type apiChart struct {
	ID    string    `json:"id"`
	Title string    `json:"title"`
	Unit  string    `json:"unit"`
	Lines []apiLine `json:"lines"`
}

type apiLine struct {
	Name   string `json:"name"`
	Values []num  `json:"values"`
}

type apiNode struct {
	Node      string `json:"node"`
	State     string `json:"state"`
	Users     num    `json:"users"`
	Capacity  num    `json:"capacity"`
	Load      num    `json:"load"`
	Available num    `json:"available"`
}

type apiDatabase struct {
	DB     string `json:"db"`
	Kind   string `json:"kind"`
	Up     *bool  `json:"up"` // nil: no server statistics collector
	InUse  num    `json:"in_use"`
	Open   num    `json:"open"`
	Max    num    `json:"max"`
	Waits  num    `json:"waits_per_s"`
	Errors num    `json:"collector_errors"`
}

type apiEndpoint struct {
	Endpoint string `json:"endpoint"`
	Rate     num    `json:"rate"`
	Rate4xx  num    `json:"rate_4xx"`
	Rate5xx  num    `json:"rate_5xx"`
	P50      num    `json:"p50_ms"`
	P95      num    `json:"p95_ms"`
}

// snapshot builds the API answer from the history.
func (s *sampler) snapshot() apiResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := apiResponse{
		Interval:  s.interval.Seconds(),
		Window:    (time.Duration(s.maxPoints) * s.interval).Seconds(),
		Now:       time.Now().UnixMilli(),
		T:         make([]int64, len(s.points)),
		Sections:  []apiSection{},
		Nodes:     []apiNode{},
		Databases: []apiDatabase{},
		Endpoints: []apiEndpoint{},
	}
	for i, p := range s.points {
		r.T[i] = p.t.UnixMilli()
	}
	secIdx := map[string]int{}
	for _, sec := range s.orderedSections() {
		secIdx[sec] = len(r.Sections)
		r.Sections = append(r.Sections, apiSection{Title: sec, Charts: []apiChart{}})
	}
	for _, id := range s.order {
		ci := s.charts[id]
		c := apiChart{ID: ci.id, Title: ci.title, Unit: ci.unit}
		data := false
		for _, l := range ci.lines {
			key := ci.id + "\x00" + l
			vals := make([]num, len(s.points))
			for i, p := range s.points {
				v, ok := p.v[key]
				if !ok {
					v = math.NaN()
				}
				data = data || !math.IsNaN(v)
				vals[i] = num(v)
			}
			c.Lines = append(c.Lines, apiLine{Name: l, Values: vals})
		}
		// Charts of things gone for the whole window (a removed
		// database) are left out.
		if data {
			i := secIdx[ci.section]
			r.Sections[i].Charts = append(r.Sections[i].Charts, c)
		}
	}
	kept := r.Sections[:0]
	for _, sec := range r.Sections {
		if len(sec.Charts) > 0 {
			kept = append(kept, sec)
		}
	}
	r.Sections = kept
	if n := len(s.snaps); n > 0 {
		cur, old := s.snaps[n-1], s.snaps[0]
		r.Nodes = nodesTable(cur)
		r.Databases = databasesTable(cur, old)
		r.Endpoints = endpointsTable(cur, old)
	}
	return r
}

// orderedSections puts the fixed sections first, then the others (the
// databases) as they appeared.
func (s *sampler) orderedSections() []string {
	out := []string{}
	for _, f := range []string{secTraffic, secSync, secNodes, secCache} {
		if contains(s.sections, f) {
			out = append(out, f)
		}
	}
	for _, sec := range s.sections {
		if !contains(out, sec) {
			out = append(out, sec)
		}
	}
	return out
}

func nodesTable(cur *snap) []apiNode {
	out := []apiNode{}
	users := cur.group("weave_node_users", all, byLabel("node"))
	capa := cur.group("weave_node_capacity", all, byLabel("node"))
	load := cur.group("weave_node_current_load", all, byLabel("node"))
	avail := cur.group("weave_node_available_slots", all, byLabel("node"))
	state := map[string]string{}
	for _, m := range famMetrics(cur, "weave_node_state") {
		if value(m) == 1 {
			state[label(m, "node")] = label(m, "state")
		}
	}
	for _, n := range sortedKeys(users) {
		out = append(out, apiNode{Node: n, State: state[n], Users: num(users[n]), Capacity: num(capa[n]),
			Load: num(load[n]), Available: num(avail[n])})
	}
	return out
}

func databasesTable(cur, old *snap) []apiDatabase {
	out := []apiDatabase{}
	for _, db := range databases(cur) {
		isDB := labelIs("db", db.name)
		d := apiDatabase{DB: db.name, Kind: db.kind, InUse: num(math.NaN()), Open: num(math.NaN()),
			Max: num(math.NaN()), Waits: num(math.NaN()), Errors: num(math.NaN())}
		for _, m := range famMetrics(cur, "weave_collector_up") {
			if label(m, "db") == db.name && label(m, "collector") == db.kind {
				up := value(m) == 1
				d.Up = &up
			}
		}
		if v, ok := cur.sum("weave_collector_errors_total", and(isDB, labelIs("collector", db.kind))); ok && db.kind != "" {
			d.Errors = num(v)
		}
		if len(cur.group("weave_db_pool_open_connections", isDB, whole)) > 0 {
			v, _ := cur.sum("weave_db_pool_in_use_connections", isDB)
			d.InUse = num(v)
			v, _ = cur.sum("weave_db_pool_open_connections", isDB)
			d.Open = num(v)
			v, _ = cur.sum("weave_db_pool_max_open_connections", isDB)
			d.Max = num(v)
			if cur != old {
				d.Waits = num(rate(cur, old, "weave_db_pool_waits_total", isDB))
			}
		}
		out = append(out, d)
	}
	return out
}

func endpointsTable(cur, old *snap) []apiEndpoint {
	out := []apiEndpoint{}
	dt := cur.t.Sub(old.t).Seconds()
	if dt <= 0 {
		return out
	}
	ep := byLabel("endpoint")
	total := deltas(cur, old, "weave_http_requests_total", notSelf, ep)
	byClass := deltas(cur, old, "weave_http_requests_total", notSelf, func(m *dto.Metric) string {
		return label(m, "endpoint") + "\x00" + statusClass(m)
	})
	for e, n := range total {
		if n <= 0 {
			continue
		}
		is := labelIs("endpoint", e)
		h := cur.hist("weave_http_request_duration_seconds", is).minus(old.hist("weave_http_request_duration_seconds", is))
		out = append(out, apiEndpoint{
			Endpoint: e,
			Rate:     num(n / dt),
			Rate4xx:  num(byClass[e+"\x004xx"] / dt),
			Rate5xx:  num(byClass[e+"\x005xx"] / dt),
			P50:      num(1000 * h.quantile(.5)),
			P95:      num(1000 * h.quantile(.95)),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rate != out[j].Rate {
			return out[i].Rate > out[j].Rate
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	if len(out) > 20 {
		out = out[:20]
	}
	return out
}
