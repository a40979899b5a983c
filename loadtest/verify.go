package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave"
)

// tracker remembers, for one user, every record the server acknowledged
// (with a hash of its payload) so that the end of the run can read them all
// back. Records whose fate is unknown (no answer, 5xx) are kept apart: they
// may be present or absent, but not altered. Only the worker holding the
// user touches it. A nil tracker (verification off) ignores everything.
type tracker struct {
	budget    *atomic.Int64 // records the whole run may still track
	disabled  bool          // over budget: this user is left out
	expected  map[string]map[string]uint64
	uncertain map[string]map[string]bool
	pending   []trackedRecord // staged in the open batch
	touched   map[string]bool // collections written or deleted
	held      int64           // records this tracker holds against budget
}

type trackedRecord struct {
	coll string
	id   string
	hash uint64
}

func newTracker(budget *atomic.Int64) *tracker {
	return &tracker{
		budget:    budget,
		expected:  map[string]map[string]uint64{},
		uncertain: map[string]map[string]bool{},
		touched:   map[string]bool{},
	}
}

func payloadHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func (t *tracker) active() bool { return t != nil && !t.disabled }

// take reserves room for n more records, or gives up on this user.
func (t *tracker) take(n int64) bool {
	if t.budget.Add(-n) < 0 {
		t.budget.Add(n)
		t.disable()
		return false
	}
	t.held += n
	return true
}

func (t *tracker) disable() {
	t.disabled = true
	t.budget.Add(t.held)
	t.held = 0
	t.expected, t.uncertain, t.pending, t.touched = nil, nil, nil, nil
}

func (t *tracker) expect(recs []trackedRecord) {
	if !t.take(int64(len(recs))) {
		return
	}
	for _, r := range recs {
		t.touched[r.coll] = true
		if t.uncertain[r.coll][r.id] {
			delete(t.uncertain[r.coll], r.id)
			t.held--
			t.budget.Add(1)
		}
		m := t.expected[r.coll]
		if m == nil {
			m = map[string]uint64{}
			t.expected[r.coll] = m
		}
		if _, dup := m[r.id]; dup {
			t.held--
			t.budget.Add(1)
		}
		m[r.id] = r.hash
	}
}

func (t *tracker) unsure(recs []trackedRecord) {
	if !t.take(int64(len(recs))) {
		return
	}
	for _, r := range recs {
		t.touched[r.coll] = true
		if _, ok := t.expected[r.coll][r.id]; ok {
			delete(t.expected[r.coll], r.id)
			t.held--
			t.budget.Add(1)
		}
		m := t.uncertain[r.coll]
		if m == nil {
			m = map[string]bool{}
			t.uncertain[r.coll] = m
		}
		if m[r.id] {
			t.held--
			t.budget.Add(1)
		}
		m[r.id] = true
	}
}

func tracked(coll string, recs []record) []trackedRecord {
	out := make([]trackedRecord, len(recs))
	for i, r := range recs {
		out[i] = trackedRecord{coll: coll, id: r.ID, hash: payloadHash(r.Payload)}
	}
	return out
}

// posted learns the outcome of an upload: staged into a batch, committing
// one (with everything staged), or a plain POST.
func (t *tracker) posted(coll string, recs []record, staged, commit bool, err error) {
	if !t.active() {
		return
	}
	tr := tracked(coll, recs)
	if staged {
		if err == nil {
			t.pending = append(t.pending, tr...)
		}
		return
	}
	if commit {
		tr = append(t.pending, tr...)
		t.pending = nil
	}
	switch {
	case err == nil:
		t.expect(tr)
	case appliedUnknown(err):
		t.unsure(tr)
	}
}

// batchEnded forgets records staged in a batch that was never committed:
// they must not appear.
func (t *tracker) batchEnded() {
	if t.active() {
		t.pending = nil
	}
}

func (t *tracker) deleted(coll string, err error) {
	if !t.active() {
		return
	}
	t.touched[coll] = true
	switch {
	case err == nil:
		t.drop(coll)
	case appliedUnknown(err):
		t.doubt(coll)
	}
}

func (t *tracker) wiped(err error) {
	if !t.active() {
		return
	}
	colls := make([]string, 0, len(t.expected)+len(t.uncertain))
	for c := range t.expected {
		colls = append(colls, c)
	}
	for c := range t.uncertain {
		colls = append(colls, c)
	}
	for _, c := range colls {
		switch {
		case err == nil:
			t.drop(c)
		case appliedUnknown(err):
			t.doubt(c)
		}
	}
}

func (t *tracker) drop(coll string) {
	n := int64(len(t.expected[coll]) + len(t.uncertain[coll]))
	delete(t.expected, coll)
	delete(t.uncertain, coll)
	t.held -= n
	t.budget.Add(n)
}

// doubt turns the expected records of coll into uncertain ones: a delete
// whose outcome is unknown removed all of them or none.
func (t *tracker) doubt(coll string) {
	var recs []trackedRecord
	for id := range t.expected[coll] {
		recs = append(recs, trackedRecord{coll: coll, id: id})
	}
	n := int64(len(recs))
	delete(t.expected, coll)
	t.held -= n
	t.budget.Add(n)
	t.unsure(recs)
}

// VerifyReport is the outcome of reading back every acknowledged record.
type VerifyReport struct {
	// Users is how many users were checked; Skipped how many were left out
	// because the tracking budget (VerifyMaxRecords) ran out.
	Users   int `json:"users"`
	Skipped int `json:"skipped_users,omitempty"`
	// Expected records acknowledged and not deleted since; Found of them
	// read back intact.
	Expected int64 `json:"expected"`
	Found    int64 `json:"found"`
	// Lost: acknowledged, not deleted, not read back.
	Lost int64 `json:"lost"`
	// Duplicated: the same id listed more than once in one collection.
	Duplicated int64 `json:"duplicated"`
	// Altered: read back with a different payload than acknowledged.
	Altered int64 `json:"altered"`
	// Unexpected: present although never acknowledged (e.g. staged in a
	// batch that was not committed).
	Unexpected int64 `json:"unexpected"`
	// Uncertain: writes whose outcome the run could not know; present or
	// not, they are not counted as problems.
	Uncertain int64 `json:"uncertain"`
	// Requests and RequestErrors of the read-back itself; Incomplete is set
	// when some user could not be read back (errors, time budget).
	Requests      int64    `json:"requests"`
	RequestErrors int64    `json:"request_errors"`
	Incomplete    bool     `json:"incomplete,omitempty"`
	Samples       []string `json:"samples,omitempty"`
	ElapsedSec    float64  `json:"elapsed_seconds"`
}

// OK reports whether every acknowledged record was read back exactly once
// and intact, and nothing unacknowledged appeared.
func (v *VerifyReport) OK() bool {
	return v.Lost == 0 && v.Duplicated == 0 && v.Altered == 0 && v.Unexpected == 0 && !v.Incomplete
}

const maxVerifySamples = 20

// verifier accumulates the read-back of all users.
type verifier struct {
	mu  sync.Mutex
	rep VerifyReport
}

func (v *verifier) add(f func(*VerifyReport)) {
	v.mu.Lock()
	f(&v.rep)
	v.mu.Unlock()
}

func (v *verifier) sample(format string, args ...any) {
	v.add(func(r *VerifyReport) {
		if len(r.Samples) < maxVerifySamples {
			r.Samples = append(r.Samples, fmt.Sprintf(format, args...))
		}
	})
}

// verify reads back every tracked user's collections with `concurrency`
// workers and compares them with what the server acknowledged.
func (r *runner) verify(ctx context.Context, users []*user, concurrency int) *VerifyReport {
	start := time.Now()
	v := &verifier{}
	work := make(chan *user)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				r.verifyUser(ctx, v, u)
			}
		}()
	}
feed:
	for _, u := range users {
		switch {
		case u.track == nil:
			continue
		case u.track.disabled:
			v.add(func(rep *VerifyReport) { rep.Skipped++ })
			continue
		case len(u.track.touched) == 0:
			continue
		}
		select {
		case work <- u:
		case <-ctx.Done():
			v.add(func(rep *VerifyReport) { rep.Incomplete = true })
			break feed
		}
	}
	close(work)
	wg.Wait()
	v.rep.ElapsedSec = time.Since(start).Seconds()
	return &v.rep
}

func (r *runner) verifyUser(ctx context.Context, v *verifier, u *user) {
	t := u.track
	v.add(func(rep *VerifyReport) { rep.Users++ })
	colls := make([]string, 0, len(t.touched))
	for c := range t.touched {
		colls = append(colls, c)
	}
	sort.Strings(colls)
	// Only records written during this run count: the user's storage may
	// hold older ones from earlier runs.
	since := weave.Timestamp(int64(u.firstSeen) - 10)
	for _, c := range colls {
		got, err := r.readBack(ctx, v, u, c, since)
		if err != nil {
			v.add(func(rep *VerifyReport) { rep.Incomplete = true })
			v.sample("user %d: reading %s back failed: %v", u.index, c, err)
			continue
		}
		r.compare(v, u, c, got)
	}
}

type readRecord struct {
	ID      string `json:"id"`
	Payload string `json:"payload"`
}

// readBack lists a collection in full, following X-Weave-Next-Offset.
func (r *runner) readBack(ctx context.Context, v *verifier, u *user, coll string, since weave.Timestamp) ([]readRecord, error) {
	var all []readRecord
	offset := ""
	for page := 0; page < 100_000; page++ {
		q := url.Values{"full": {"1"}, "newer": {since.String()}}
		if offset != "" {
			q.Set("offset", offset)
		}
		var recs []readRecord
		v.add(func(rep *VerifyReport) { rep.Requests++ })
		resp, err := r.do(ctx, u, request{kind: KindVerifyGet, method: http.MethodGet, path: "/storage/" + coll,
			query: q.Encode(), expect: []int{200, 404}, keepBody: true, check: func(resp *response) error {
				if resp.status != http.StatusOK {
					return nil
				}
				return json.Unmarshal(resp.body, &recs)
			}})
		if err != nil {
			v.add(func(rep *VerifyReport) { rep.RequestErrors++ })
			return nil, err
		}
		all = append(all, recs...)
		offset = resp.header.Get("X-Weave-Next-Offset")
		if offset == "" || resp.status != http.StatusOK {
			return all, nil
		}
	}
	return nil, fmt.Errorf("more than 100000 pages")
}

func (r *runner) compare(v *verifier, u *user, coll string, got []readRecord) {
	t := u.track
	exp, unsure := t.expected[coll], t.uncertain[coll]
	seen := make(map[string]bool, len(got))
	var found, lost, dup, altered, unexpected int64
	for _, rec := range got {
		if seen[rec.ID] {
			dup++
			if dup <= 3 {
				v.sample("user %d: %s/%s listed more than once", u.index, coll, rec.ID)
			}
			continue
		}
		seen[rec.ID] = true
		if h, ok := exp[rec.ID]; ok {
			if h != payloadHash(rec.Payload) {
				altered++
				if altered <= 3 {
					v.sample("user %d: %s/%s read back with a different payload (%d bytes)", u.index, coll, rec.ID, len(rec.Payload))
				}
				continue
			}
			found++
			continue
		}
		if unsure[rec.ID] {
			continue
		}
		unexpected++
		if unexpected <= 3 {
			v.sample("user %d: %s/%s present but never acknowledged", u.index, coll, rec.ID)
		}
	}
	for id := range exp {
		if !seen[id] {
			lost++
			if lost <= 3 {
				v.sample("user %d: %s/%s acknowledged but missing", u.index, coll, id)
			}
		}
	}
	v.add(func(rep *VerifyReport) {
		rep.Expected += int64(len(exp))
		rep.Found += found
		rep.Lost += lost
		rep.Duplicated += dup
		rep.Altered += altered
		rep.Unexpected += unexpected
		rep.Uncertain += int64(len(unsure))
	})
}
