package loadtest

import (
	"math"
	"math/bits"
	"time"
)

// histogram is a log-bucketed latency histogram in microseconds, HDR-style:
// values below 2^subBits are exact, larger ones fall into buckets that split
// every power of two into 2^(subBits-1) parts, so any reported percentile is
// within 1/64 (≈1.6 %) of the true value. It is not safe for concurrent use;
// the recorder guards it.
type histogram struct {
	counts []uint64
	n      uint64
	sum    uint64
	min    uint64
	max    uint64
}

const (
	subBits  = 7
	subCount = 1 << subBits // exact region and bucket granularity
	subHalf  = subCount / 2 // buckets per power of two above the exact region
	maxExp   = 64 - subBits // highest shift a uint64 value can need
	nBuckets = subCount + maxExp*subHalf
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, nBuckets), min: math.MaxUint64}
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits // ≥ 1
	m := v >> uint(e)            // in [subHalf, subCount)
	return subCount + (e-1)*subHalf + int(m-subHalf)
}

// bucketBounds returns the smallest and largest value that map to bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	j := i - subCount
	e := j/subHalf + 1
	m := uint64(j%subHalf + subHalf)
	lo = m << uint(e)
	hi = lo + (1 << uint(e)) - 1
	return lo, hi
}

func (h *histogram) record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += v
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// minus returns the latencies recorded in h but not in earlier, a
// snapshot h grew from (nil: none). The window's exact min and max are
// unknown, so they are the bounds of its outermost buckets.
func (h *histogram) minus(earlier *histogram) *histogram {
	if earlier == nil {
		return h.clone()
	}
	d := newHistogram()
	d.n, d.sum = h.n-earlier.n, h.sum-earlier.sum
	first, last := -1, -1
	for i, c := range h.counts {
		if d.counts[i] = c - earlier.counts[i]; d.counts[i] > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first >= 0 {
		d.min, _ = bucketBounds(first)
		_, d.max = bucketBounds(last)
	}
	return d
}

func (h *histogram) clone() *histogram {
	c := *h
	c.counts = append([]uint64(nil), h.counts...)
	return &c
}

// quantile returns the latency at quantile q (0..1): the midpoint of the
// bucket holding the q-th value, clamped to the exact min and max so that
// p100 is the true maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			v := lo + (hi-lo)/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/h.n) * time.Microsecond
}

func (h *histogram) maximum() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.max) * time.Microsecond
}
