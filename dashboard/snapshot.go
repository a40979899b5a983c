package dashboard

import (
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// snap is one gathering of the weave_* metric families.
type snap struct {
	t    time.Time
	fams map[string]*dto.MetricFamily
}

func newSnap(t time.Time, fams []*dto.MetricFamily) *snap {
	s := &snap{t: t, fams: make(map[string]*dto.MetricFamily, len(fams))}
	for _, f := range fams {
		// Only weave's own families are charted; keeping the runtime's
		// would multiply the memory of the history for nothing.
		if strings.HasPrefix(f.GetName(), "weave_") {
			s.fams[f.GetName()] = f
		}
	}
	return s
}

// match selects series of a family.
type match func(m *dto.Metric) bool

func all(*dto.Metric) bool { return true }

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func labelIs(name, value string) match {
	return func(m *dto.Metric) bool { return label(m, name) == value }
}

func and(a, b match) match { return func(m *dto.Metric) bool { return a(m) && b(m) } }

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return math.NaN()
}

// has reports whether the family exists.
func (s *snap) has(name string) bool { return s != nil && s.fams[name] != nil }

// sum adds the values of the matching series; ok is false when the family
// is absent (NaN then keeps a chart's line broken rather than at zero).
func (s *snap) sum(name string, sel match) (float64, bool) {
	if s == nil {
		return 0, false
	}
	f := s.fams[name]
	if f == nil {
		return 0, false
	}
	var v float64
	for _, m := range f.GetMetric() {
		if sel(m) {
			v += value(m)
		}
	}
	return v, true
}

// group sums the matching series by the value key gives them.
func (s *snap) group(name string, sel match, key func(*dto.Metric) string) map[string]float64 {
	out := map[string]float64{}
	if s == nil || s.fams[name] == nil {
		return out
	}
	for _, m := range s.fams[name].GetMetric() {
		if sel(m) {
			out[key(m)] += value(m)
		}
	}
	return out
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hist is a histogram merged over series: cumulative counts by upper bound,
// the last bound being +Inf.
type hist struct {
	bounds []float64
	cum    []float64
}

func (s *snap) hist(name string, sel match) hist {
	if s == nil || s.fams[name] == nil {
		return hist{}
	}
	byBound := map[float64]float64{}
	for _, m := range s.fams[name].GetMetric() {
		h := m.GetHistogram()
		if h == nil || !sel(m) {
			continue
		}
		for _, b := range h.GetBucket() {
			byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		byBound[math.Inf(1)] += float64(h.GetSampleCount())
	}
	var out hist
	for b := range byBound {
		out.bounds = append(out.bounds, b)
	}
	sort.Float64s(out.bounds)
	for _, b := range out.bounds {
		out.cum = append(out.cum, byBound[b])
	}
	return out
}

// minus returns the observations of h that o does not have (h later than o).
func (h hist) minus(o hist) hist {
	prev := make(map[float64]float64, len(o.bounds))
	for i, b := range o.bounds {
		prev[b] = o.cum[i]
	}
	out := hist{bounds: h.bounds, cum: make([]float64, len(h.cum))}
	for i, b := range h.bounds {
		out.cum[i] = max(0, h.cum[i]-prev[b])
	}
	return out
}

func (h hist) count() float64 {
	if len(h.cum) == 0 {
		return 0
	}
	return h.cum[len(h.cum)-1]
}

// quantile estimates the q-quantile by linear interpolation inside the
// bucket that holds it, as Prometheus' histogram_quantile does; NaN when
// the histogram is empty.
func (h hist) quantile(q float64) float64 {
	total := h.count()
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	for i, c := range h.cum {
		if c < rank {
			continue
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = h.bounds[i-1], h.cum[i-1]
		}
		upper := h.bounds[i]
		if math.IsInf(upper, 1) {
			// Beyond the last finite bound nothing is known but the bound.
			return lower
		}
		if c == below {
			return upper
		}
		return lower + (upper-lower)*(rank-below)/(c-below)
	}
	return h.bounds[len(h.bounds)-1]
}
