package metrics_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/weave-sync/weave/metrics"
)

// families is a parsed scrape.
type families map[string]*dto.MetricFamily

// scrape fetches m's /metrics handler the way Prometheus does and parses
// the text exposition.
func scrape(t testing.TB, m *metrics.Metrics) families {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// get returns the value of the series of name whose labels include want
// ("k=v" pairs); the test fails if there is not exactly one.
func (f families) get(t testing.TB, name string, want ...string) float64 {
	t.Helper()
	v, n := f.find(name, want...)
	if n != 1 {
		t.Fatalf("%s%v: %d matching series, want 1\nseries of %s: %s", name, want, n, name, f.describe(name))
	}
	return v
}

// find sums the series of name matching want and counts them.
func (f families) find(name string, want ...string) (float64, int) {
	fam := f[name]
	if fam == nil {
		return 0, 0
	}
	var sum float64
	n := 0
outer:
	for _, m := range fam.GetMetric() {
		l := labelsOf(m)
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			if l[k] != v {
				continue outer
			}
		}
		sum += valueOf(m)
		n++
	}
	return sum, n
}

func (f families) describe(name string) string {
	fam := f[name]
	if fam == nil {
		names := make([]string, 0, len(f))
		for n := range f {
			if strings.HasPrefix(n, "weave_") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return "(absent; weave families: " + strings.Join(names, ", ") + ")"
	}
	var parts []string
	for _, m := range fam.GetMetric() {
		parts = append(parts, strings.TrimSpace(m.String()))
	}
	return strings.Join(parts, "; ")
}

// proxy is a TCP relay on 127.0.0.1 that can turn into a black hole:
// connections stay open but nothing gets through either way, as with a
// hung server or a dropped network path.
type proxy struct {
	ln        net.Listener
	target    string
	blackhole atomic.Bool
	mu        sync.Mutex
	conns     []net.Conn
	wg        sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if p.target == "" {
			continue // a pure black hole: accept and never answer
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(up)
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// pipe copies src to dst, dropping the bytes while the proxy is a black
// hole.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.blackhole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close() // the other direction ends too
			return
		}
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
