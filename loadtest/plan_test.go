package loadtest

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/weave-sync/weave"
)

// within fails unless the observed frequency k/n is within five standard
// deviations of p.
func within(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	got := float64(k) / float64(n)
	tol := 5*math.Sqrt(p*(1-p)/float64(n)) + 1e-9
	if math.Abs(got-p) > tol {
		t.Errorf("%s: frequency %.4f, want %.4f ± %.4f", what, got, p, tol)
	}
}

func withinWeights(t *testing.T, what string, counts []int, weights []int) {
	t.Helper()
	total, n := 0, 0
	for _, w := range weights {
		total += w
	}
	for _, c := range counts {
		n += c
	}
	for i, w := range weights {
		within(t, fmt.Sprintf("%s = %d", what, i), counts[i], n, float64(w)/float64(total))
	}
}

func TestSessionMixMatchesModel(t *testing.T) {
	const n = 60_000
	m := molotovMix()
	lim := weave.DefaultLimits()
	var (
		metaGets    = make([]int, 5)
		clientIdx   = make([]int, 4)
		collGets    = make([]int, 5)
		postCounts  = make([]int, 5)
		deletes     = make([]int, 5)
		clientsGet  int
		clientsPost int
		batch       int
		wipe, noDel int
		posts       int
		full        int // POSTs with 100 items
		itemCounts  = make([]int, 101)
		items       int
		payloadSum  float64
		over1000    int
		minPayload  = math.MaxInt
		agoMin      = math.MaxInt
		agoMax      int
	)
	for i := range n {
		p := m.newPlan(sessionRand(42, int64(i)), lim)
		metaGets[p.metaGets]++
		clientIdx[p.clientIndex]++
		collGets[len(p.collGets)]++
		postCounts[len(p.posts)]++
		deletes[len(p.deletes)]++
		if p.clientsGet {
			clientsGet++
		}
		if p.clientsPost {
			clientsPost++
		}
		if p.batch {
			batch++
		}
		if len(p.deletes) == 0 {
			noDel++
			if p.wipe {
				wipe++
			}
		} else if p.wipe {
			t.Fatal("a session both deleted collections and wiped storage")
		}
		agoMin, agoMax = min(agoMin, p.clientsGetAgo), max(agoMax, p.clientsGetAgo)
		seen := map[string]bool{}
		for _, g := range p.collGets {
			if seen[g.coll] {
				t.Fatalf("session %d reads %s twice", i, g.coll)
			}
			seen[g.coll] = true
			agoMin, agoMax = min(agoMin, g.ago), max(agoMax, g.ago)
		}
		seen = map[string]bool{}
		for j, po := range p.posts {
			if p.batch && po.coll != p.posts[0].coll {
				t.Fatalf("session %d: batch spans %s and %s", i, p.posts[0].coll, po.coll)
			}
			if !p.batch && seen[po.coll] {
				t.Fatalf("session %d: POST %d repeats %s", i, j, po.coll)
			}
			seen[po.coll] = true
			posts++
			itemCounts[len(po.items)]++
			if len(po.items) == 100 {
				full++
			}
			for _, it := range po.items {
				items++
				payloadSum += float64(it.size)
				minPayload = min(minPayload, it.size)
				if it.size > 1000 {
					over1000++
				}
				if len(it.id) != 14 {
					t.Fatalf("id %q is not 10 bytes of urlsafe base64 without padding", it.id)
				}
			}
		}
	}

	withinWeights(t, "meta/global GETs", metaGets, m.metaGetWeights)
	within(t, "clients GET", clientsGet, n, 0.10)
	within(t, "clients POST", clientsPost, n, 0.20)
	withinWeights(t, "client record", clientIdx, m.clientWeights)
	withinWeights(t, "collection GETs", collGets, m.collGetWeights)
	withinWeights(t, "collection POSTs", postCounts, m.postWeights)
	within(t, "batch mode", batch, n, 0.5)
	withinWeights(t, "collection DELETEs", deletes, m.deleteWeights)
	within(t, "DELETE /storage when nothing else was deleted", wipe, noDel, 0.01)

	// Items per POST: 100 with p = 81/161, else uniform over 20..99.
	within(t, "POSTs with 100 items", full, posts, 81.0/161)
	for k := 0; k < 20; k++ {
		if itemCounts[k] != 0 {
			t.Fatalf("%d POSTs with %d items (minimum is 20)", itemCounts[k], k)
		}
	}
	for _, k := range []int{20, 50, 99} {
		within(t, fmt.Sprintf("POSTs with %d items", k), itemCounts[k], posts, 1.0/161)
	}

	// Payloads: Pareto(3) × 300 → minimum 300, mean 450, P(>1000) = 0.3³ = 2.7 %.
	if minPayload != 300 {
		t.Errorf("smallest payload %d, want 300", minPayload)
	}
	if mean := payloadSum / float64(items); math.Abs(mean-450) > 5 {
		t.Errorf("mean payload %.1f bytes, want ≈ 450", mean)
	}
	within(t, "payloads over 1000 bytes", over1000, items, 0.027)

	if agoMin < 3600 || agoMax > 360000 || agoMin > 3700 || agoMax < 359000 {
		t.Errorf("newer offsets span [%d, %d] s, want [3600, 360000]", agoMin, agoMax)
	}
}

func TestPlanDeterministic(t *testing.T) {
	m := molotovMix()
	lim := weave.DefaultLimits()
	a := m.newPlan(sessionRand(7, 123), lim)
	b := m.newPlan(sessionRand(7, 123), lim)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed and session number gave different plans")
	}
	differ := 0
	for i := range 50 {
		if !reflect.DeepEqual(m.newPlan(sessionRand(7, int64(i)), lim), m.newPlan(sessionRand(8, int64(i)), lim)) {
			differ++
		}
	}
	if differ < 45 {
		t.Errorf("only %d of 50 sessions differ between seeds 7 and 8", differ)
	}
}

// Uploads respect whatever limits the server publishes.
func TestPlanRespectsLimits(t *testing.T) {
	m := molotovMix()
	lim := normalizeLimits(weave.Limits{
		MaxRequestBytes: 20_000, MaxPostRecords: 30, MaxPostBytes: 8_000,
		MaxTotalRecords: 50, MaxTotalBytes: 15_000, MaxRecordPayloadBytes: 700,
	})
	for i := range 20_000 {
		p := m.newPlan(sessionRand(1, int64(i)), lim)
		var totalRecs, totalBytes int64
		for _, po := range p.posts {
			if len(po.items) == 0 || int64(len(po.items)) > lim.MaxPostRecords {
				t.Fatalf("POST with %d items (limit %d)", len(po.items), lim.MaxPostRecords)
			}
			var bytes int64
			for _, it := range po.items {
				if int64(it.size) > lim.MaxRecordPayloadBytes {
					t.Fatalf("payload %d over %d", it.size, lim.MaxRecordPayloadBytes)
				}
				bytes += int64(it.size)
			}
			if bytes > lim.MaxPostBytes {
				t.Fatalf("POST of %d payload bytes (limit %d)", bytes, lim.MaxPostBytes)
			}
			totalRecs += int64(len(po.items))
			totalBytes += bytes
		}
		if p.batch && (totalRecs > lim.MaxTotalRecords || totalBytes > lim.MaxTotalBytes) {
			t.Fatalf("batch of %d records / %d bytes exceeds %d / %d", totalRecs, totalBytes, lim.MaxTotalRecords, lim.MaxTotalBytes)
		}
	}
	// Missing or nonsensical published limits fall back to the defaults.
	if got := normalizeLimits(weave.Limits{MaxPostRecords: -3}); got.MaxPostRecords != 100 || got.MaxRecordPayloadBytes == 0 {
		t.Errorf("normalizeLimits: %+v", got)
	}
}
