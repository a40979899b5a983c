package loadtest

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestBucketBoundsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 12345, 1 << 20, 1<<40 + 12345, math.MaxUint64 >> 1, math.MaxUint64} {
		i := bucketOf(v)
		if i < 0 || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		lo, hi := bucketBounds(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d with bounds [%d, %d]", v, i, lo, hi)
		}
	}
	// Buckets tile the number line without gaps or overlaps.
	for i := 1; i < nBuckets; i++ {
		_, prevHi := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := newHistogram()
	var exact []float64
	for range 100_000 {
		// Log-normal-ish latencies from 50 µs to seconds.
		us := math.Exp(r.NormFloat64()*1.5 + 8)
		d := time.Duration(us * float64(time.Microsecond))
		h.record(d)
		exact = append(exact, float64(d.Microseconds()))
	}
	sort.Float64s(exact)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		want := exact[int(math.Ceil(q*float64(len(exact))))-1]
		got := float64(h.quantile(q).Microseconds())
		if rel := math.Abs(got-want) / want; rel > 0.01 {
			t.Errorf("p%v = %vµs, exact %vµs (%.2f%% off)", q*100, got, want, rel*100)
		}
	}
	if got, want := float64(h.maximum().Microseconds()), exact[len(exact)-1]; got != want {
		t.Errorf("max = %v, want %v", got, want)
	}
	if got := h.quantile(1); got != h.maximum() {
		t.Errorf("p100 = %v, want the max %v", got, h.maximum())
	}
}

func TestHistogramSmallAndEmpty(t *testing.T) {
	h := newHistogram()
	if h.quantile(0.99) != 0 || h.mean() != 0 || h.maximum() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	for _, us := range []int{1, 2, 3, 4, 100} {
		h.record(time.Duration(us) * time.Microsecond)
	}
	if got := h.quantile(0.5); got != 3*time.Microsecond {
		t.Errorf("p50 = %v, want 3µs (exact region)", got)
	}
	if got := h.quantile(0.99); got != 100*time.Microsecond {
		t.Errorf("p99 = %v, want 100µs", got)
	}
	o := newHistogram()
	o.record(time.Second)
	h.merge(o)
	if h.n != 6 || h.maximum() != time.Second {
		t.Errorf("merge: n=%d max=%v", h.n, h.maximum())
	}
	c := h.clone()
	c.record(time.Hour)
	if h.maximum() != time.Second {
		t.Error("clone shares state with the original")
	}
}

// The progress line's window p99 comes from the difference of two
// snapshots: a slow interval after a fast one must show its own latency,
// not the run's.
func TestHistogramWindow(t *testing.T) {
	h := newHistogram()
	for range 1000 {
		h.record(time.Millisecond)
	}
	earlier := h.clone()
	for range 10 {
		h.record(80 * time.Millisecond)
	}
	w := h.minus(earlier)
	if w.n != 10 {
		t.Fatalf("window holds %d values, want 10", w.n)
	}
	if got := w.quantile(0.99); got < 78*time.Millisecond || got > 82*time.Millisecond {
		t.Errorf("window p99 = %v, want ≈80ms", got)
	}
	if got := h.quantile(0.99); got > 2*time.Millisecond {
		t.Errorf("cumulative p99 = %v, want ≈1ms (the slow tail is under 1%%)", got)
	}
	if got := h.minus(h.clone()).quantile(0.99); got != 0 {
		t.Errorf("empty window p99 = %v, want 0", got)
	}
	if got := h.minus(nil); got.n != h.n {
		t.Errorf("window since the start holds %d values, want %d", got.n, h.n)
	}
	line := progressLine(time.Minute, snapshot{requests: 1010, hist: h}, snapshot{requests: 1000, hist: earlier}, 30*time.Second)
	if !strings.Contains(line, "window p99 8") {
		t.Errorf("progress line %q lacks the window p99", line)
	}
}
