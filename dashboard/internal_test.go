package dashboard

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	// 10 observations ≤ 0.1, 80 in (0.1, 0.2], 10 in (0.2, 0.5].
	h := hist{bounds: []float64{0.1, 0.2, 0.5, math.Inf(1)}, cum: []float64{10, 90, 100, 100}}
	for _, c := range []struct{ q, want float64 }{
		{0.05, 0.05},
		{0.5, 0.15},
		{0.9, 0.2},
		{0.95, 0.35},
		{1, 0.5},
	} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	// Beyond the last finite bound only that bound is known.
	over := hist{bounds: []float64{1, math.Inf(1)}, cum: []float64{1, 10}}
	if got := over.quantile(0.99); got != 1 {
		t.Errorf("quantile in the +Inf bucket = %v, want 1", got)
	}
	if got := (hist{}).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("empty histogram quantile = %v, want NaN", got)
	}
	later := hist{bounds: h.bounds, cum: []float64{15, 95, 110, 112}}
	d := later.minus(h)
	if d.count() != 12 || d.cum[0] != 5 {
		t.Errorf("delta histogram %+v", d)
	}
}

func TestNumJSON(t *testing.T) {
	for v, want := range map[float64]string{math.NaN(): "null", math.Inf(1): "null", 1.5: "1.5", 123456789: "1.2346e+08", 0: "0"} {
		b, _ := num(v).MarshalJSON()
		if string(b) != want {
			t.Errorf("num(%v) = %s, want %s", v, b, want)
		}
	}
}
