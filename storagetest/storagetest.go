// Package storagetest is the conformance suite of weave.Store: every
// implementation (the SQL adapters, the cache decorator, routers) runs Run
// and must pass it unchanged, and may run Bench for comparable numbers.
//
// The suite drives a store only through weave.Store, so it works on stores
// it cannot control: every subtest uses fresh random uids (the stores of a
// package may share one database, and several packages one server), and
// expiry is tested with real one-second TTLs behind a single sleep.
//
// Orders the suite requires (weave.Sort, with deterministic tie-breaks so
// that paging is exact):
//
//	SortNewest: modified descending, then id descending
//	SortOldest: modified ascending, then id ascending
//	SortIndex:  sortindex descending, records without one last, then id
//	            descending
//
// ids compare bytewise (case-sensitive), as do collection names.
package storagetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

// NewStore returns the store under test. It is called once per subtest,
// possibly from parallel subtests; it may return the same store every time.
// The suite never closes it (register t.Cleanup for that).
type NewStore func(t *testing.T) weave.Store

// Option adds optional parts of the suite.
type Option func(*config)

type config struct {
	shortBatches func(t *testing.T, lifetime time.Duration) weave.Store
}

// WithBatchLifetime enables the batch expiry tests: newStore must return a
// store whose batches expire after lifetime (the suite asks for about a
// second), on the same data as the stores of Run's newStore.
func WithBatchLifetime(newStore func(t *testing.T, lifetime time.Duration) weave.Store) Option {
	return func(c *config) { c.shortBatches = newStore }
}

// Run runs the conformance suite against the stores newStore returns. Its
// subtests run in parallel.
func Run(t *testing.T, newStore NewStore, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s weave.Store)
	}{
		{"EmptyUser", testEmptyUser},
		{"PutGet", testPutGet},
		{"TimestampFormat", testTimestampFormat},
		{"MonotonicTimestamps", testMonotonicTimestamps},
		{"ManyWritesOneTick", testManyWritesOneTick},
		{"NoRunAhead", testNoRunAhead},
		{"PartialUpdates", testPartialUpdates},
		{"NullResets", testNullResets},
		{"PostMixed", testPostMixed},
		{"Preconditions", testPreconditions},
		{"CreateOnly", testCreateOnly},
		{"QueryFilters", testQueryFilters},
		{"SortOrders", testSortOrders},
		{"Paging", testPaging},
		{"PagingByBytes", testPagingByBytes},
		{"InvalidOffsets", testInvalidOffsets},
		{"IDsOnly", testIDsOnly},
		{"CountOnly", testCountOnly},
		{"CountsAndUsage", testCountsAndUsage},
		{"DeleteBSO", testDeleteBSO},
		{"DeleteBSOs", testDeleteBSOs},
		{"DeleteCollection", testDeleteCollection},
		{"DeleteStorage", testDeleteStorage},
		{"BatchLifecycle", testBatchLifecycle},
		{"BatchMerge", testBatchMerge},
		{"BatchIsolation", testBatchIsolation},
		{"BatchTimestamps", testBatchTimestamps},
		{"Quota", testQuota},
		{"QuotaConcurrent", testQuotaConcurrent},
		{"ConcurrentWritersOneUser", testConcurrentOneUser},
		{"ConcurrentUsers", testConcurrentUsers},
		{"IncrementalReads", testIncrementalReads},
		{"UserIsolation", testUserIsolation},
		{"LargePayload", testLargePayload},
		{"OddIDs", testOddIDs},
		{"CollectionNames", testCollectionNames},
		{"SortIndexBounds", testSortIndexBounds},
		{"ParentIDs", testParentIDs},
		{"Ping", testPing},
		{"StreamStops", testStreamStops},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
	// Every check that needs time to pass shares one sleep.
	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		testExpiry(t, newStore(t), cfg)
	})
}

// newUID returns a uid no other test uses: stores may share a database.
func newUID() int64 { return rand.Int64N(1<<52) + 1<<20 }

// Update builders.

func upd(id, payload string) weave.Update {
	return weave.Update{ID: id, Payload: weave.Some(payload)}
}

func updSort(id, payload string, sortindex int64) weave.Update {
	u := upd(id, payload)
	u.SortIndex = weave.Some(sortindex)
	return u
}

func updTTL(id, payload string, ttl int64) weave.Update {
	u := upd(id, payload)
	u.TTL = weave.Some(ttl)
	return u
}

func null[T any]() weave.Optional[T] { return weave.Optional[T]{Set: true, Null: true} }

func since(ts weave.Timestamp) weave.Precondition {
	return weave.Precondition{IfUnmodifiedSince: &ts}
}

var noPre weave.Precondition

// Assertions.

// must fails the test on an error, else returns the value:
// must(s.LastModified(ctx, uid))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// wantPrecondition checks for a *weave.PreconditionFailedError reporting
// the resource's timestamp.
func wantPrecondition(t *testing.T, err error, modified weave.Timestamp, what string) {
	t.Helper()
	var pf *weave.PreconditionFailedError
	if !errors.As(err, &pf) {
		t.Fatalf("%s: got error %v, want a precondition failure", what, err)
	}
	if pf.Modified != modified {
		t.Fatalf("%s: precondition failure reports modified %v, want %v", what, pf.Modified, modified)
	}
}

func wantTS(t *testing.T, got, want weave.Timestamp, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: timestamp %v (%d), want %v (%d)", what, got, int64(got), want, int64(want))
	}
}

// newer asserts that b is a valid write timestamp after a.
func wantAfter(t *testing.T, a, b weave.Timestamp, what string) {
	t.Helper()
	if b <= a {
		t.Fatalf("%s: timestamp %v is not after %v", what, b, a)
	}
	if b%10 != 0 {
		t.Fatalf("%s: timestamp %d is not a multiple of 10 ms", what, int64(b))
	}
}

// rec is the expected visible state of one record.
type rec struct {
	id        string
	modified  weave.Timestamp
	sortindex *int64
	payload   string
}

func (r rec) String() string {
	si := "nil"
	if r.sortindex != nil {
		si = fmt.Sprint(*r.sortindex)
	}
	return fmt.Sprintf("{%q modified=%d sortindex=%s payload=%.20q}", r.id, int64(r.modified), si, r.payload)
}

func recOf(b weave.BSO) rec {
	return rec{id: b.ID, modified: b.Modified, sortindex: b.SortIndex, payload: b.Payload}
}

func recsOf(bs []weave.BSO) []rec {
	out := make([]rec, len(bs))
	for i, b := range bs {
		out[i] = recOf(b)
	}
	return out
}

func ptr(v int64) *int64 { return &v }

func sameRec(a, b rec) bool {
	if a.id != b.id || a.modified != b.modified || a.payload != b.payload {
		return false
	}
	if (a.sortindex == nil) != (b.sortindex == nil) {
		return false
	}
	return a.sortindex == nil || *a.sortindex == *b.sortindex
}

func wantRecs(t *testing.T, got []weave.BSO, want []rec, what string) {
	t.Helper()
	g := recsOf(got)
	if !slices.EqualFunc(g, want, sameRec) {
		t.Fatalf("%s:\n got  %v\n want %v", what, g, want)
	}
}

// getRec reads one record and compares it.
func wantBSO(t *testing.T, s weave.Store, uid int64, coll string, want rec) weave.BSO {
	t.Helper()
	b, err := s.GetBSO(t.Context(), uid, coll, want.id)
	if err != nil {
		t.Fatalf("GetBSO %s/%s: %v", coll, want.id, err)
	}
	if !sameRec(recOf(b), want) {
		t.Fatalf("GetBSO %s/%s:\n got  %v\n want %v", coll, want.id, recOf(b), want)
	}
	return b
}

func wantGone(t *testing.T, s weave.Store, uid int64, coll, id string) {
	t.Helper()
	_, err := s.GetBSO(t.Context(), uid, coll, id)
	wantErr(t, err, weave.ErrNotFound, "GetBSO "+coll+"/"+id)
}

// order sorts records as the store must.
func order(rs []rec, sort weave.Sort) []rec {
	out := slices.Clone(rs)
	si := func(r rec) int64 {
		if r.sortindex == nil {
			return weave.MinSortIndex - 1
		}
		return *r.sortindex
	}
	slices.SortFunc(out, func(a, b rec) int {
		switch sort {
		case weave.SortOldest:
			if a.modified != b.modified {
				return cmpInt(int64(a.modified), int64(b.modified))
			}
			return strings.Compare(a.id, b.id)
		case weave.SortIndex:
			if si(a) != si(b) {
				return -cmpInt(si(a), si(b))
			}
			return -strings.Compare(a.id, b.id)
		default:
			if a.modified != b.modified {
				return -cmpInt(int64(a.modified), int64(b.modified))
			}
			return -strings.Compare(a.id, b.id)
		}
	})
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func collTS(t *testing.T, s weave.Store, uid int64, coll string) weave.Timestamp {
	t.Helper()
	return must(s.CollectionModified(t.Context(), uid, coll))(t)
}

func storageTS(t *testing.T, s weave.Store, uid int64) weave.Timestamp {
	t.Helper()
	return must(s.LastModified(t.Context(), uid))(t)
}

func put(t *testing.T, s weave.Store, uid int64, coll string, u weave.Update) weave.Timestamp {
	t.Helper()
	return must(s.PutBSO(t.Context(), uid, coll, u, noPre))(t)
}

func post(t *testing.T, s weave.Store, uid int64, coll string, us ...weave.Update) weave.Timestamp {
	t.Helper()
	return must(s.PostBSOs(t.Context(), uid, coll, us, noPre))(t)
}

func getAll(t *testing.T, s weave.Store, uid int64, coll string, q weave.Query) weave.Page {
	t.Helper()
	p, err := s.GetBSOs(t.Context(), uid, coll, q)
	if err != nil {
		t.Fatalf("GetBSOs %s %+v: %v", coll, q, err)
	}
	wantStreamed(t, s, uid, coll, q, p)
	return p
}

// wantStreamed checks that a store's StreamBSOs, if it has one, reads the
// page GetBSOs read.
func wantStreamed(t *testing.T, s weave.Store, uid int64, coll string, q weave.Query, want weave.Page) {
	t.Helper()
	st, ok := s.(weave.BSOStreamer)
	if !ok {
		return
	}
	var got []weave.BSO
	p, err := st.StreamBSOs(t.Context(), uid, coll, q, func(b *weave.BSO) error {
		c := *b
		if b.SortIndex != nil {
			c.SortIndex = ptr(*b.SortIndex)
		}
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatalf("StreamBSOs %s %+v: %v", coll, q, err)
	}
	if p.BSOs != nil || p.NextOffset != want.NextOffset || p.Modified != want.Modified || p.Count != want.Count {
		t.Fatalf("StreamBSOs %s %+v: page %+v, GetBSOs gave %+v", coll, q, p, want)
	}
	if len(got) != len(want.BSOs) || (len(got) > 0 && !reflect.DeepEqual(got, want.BSOs)) {
		t.Fatalf("StreamBSOs %s %+v: records %v, GetBSOs gave %v", coll, q, recsOf(got), recsOf(want.BSOs))
	}
}

// batchID drops CreateBatch's timestamp: must(batchID(s.CreateBatch(…)))(t).
func batchID(id string, _ weave.Timestamp, err error) (string, error) { return id, err }
