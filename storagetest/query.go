package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/weave-sync/weave"
)

// fixture is a collection whose records share modified times in groups and
// sortindexes (some equal, some absent), with ids of mixed case so that the
// tie-breaks show whether ids compare bytewise.
type fixture struct {
	uid  int64
	coll string
	recs []rec
	ts   []weave.Timestamp // timestamp of each post
}

func newFixture(t *testing.T, s weave.Store) *fixture {
	f := &fixture{uid: newUID(), coll: "history"}
	groups := [][]string{
		{"b", "A", "a", "Z", "c"},
		{"m"},
		{"x", "X", "y0", "y1", "_", "-", "0"},
		{"k", "K"},
	}
	n := 0
	for _, ids := range groups {
		var us []weave.Update
		var si []*int64
		for _, id := range ids {
			u := upd(id, "payload of "+id)
			var p *int64
			switch n % 4 {
			case 0:
				p = ptr(int64(n % 3)) // repeats 0, 1, 2
			case 1:
				p = ptr(-int64(n))
			case 2:
				// no sortindex
			case 3:
				p = ptr(7)
			}
			if p != nil {
				u.SortIndex = weave.Some(*p)
			}
			us = append(us, u)
			si = append(si, p)
			n++
		}
		ts := post(t, s, f.uid, f.coll, us...)
		f.ts = append(f.ts, ts)
		for i, id := range ids {
			f.recs = append(f.recs, rec{id, ts, si[i], "payload of " + id})
		}
	}
	return f
}

func (f *fixture) filter(keep func(r rec) bool) []rec {
	var out []rec
	for _, r := range f.recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func testQueryFilters(t *testing.T, s weave.Store) {
	f := newFixture(t, s)
	ts := f.ts
	cases := []struct {
		name string
		q    weave.Query
		keep func(r rec) bool
	}{
		{"all", weave.Query{}, func(rec) bool { return true }},
		{"newer", weave.Query{Newer: ts[1]}, func(r rec) bool { return r.modified > ts[1] }},
		{"newer than all", weave.Query{Newer: ts[3]}, func(rec) bool { return false }},
		{"older", weave.Query{Older: ts[2]}, func(r rec) bool { return r.modified < ts[2] }},
		{"older than none", weave.Query{Older: ts[0]}, func(rec) bool { return false }},
		{"newer and older", weave.Query{Newer: ts[0], Older: ts[3]}, func(r rec) bool { return r.modified > ts[0] && r.modified < ts[3] }},
		{"ids", weave.Query{IDs: []string{"a", "X", "missing", "K"}}, func(r rec) bool { return r.id == "a" || r.id == "X" || r.id == "K" }},
		{"ids and newer", weave.Query{IDs: []string{"a", "X", "K"}, Newer: ts[0]}, func(r rec) bool { return r.id == "X" || r.id == "K" }},
		{"empty ids", weave.Query{IDs: []string{}}, func(rec) bool { return false }},
	}
	for _, tc := range cases {
		for _, sort := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
			// Lean may leave out only what Sync 1.5 never shows.
			for _, lean := range []bool{false, true} {
				q := tc.q
				q.Sort, q.Lean = sort, lean
				p := getAll(t, s, f.uid, f.coll, q)
				wantRecs(t, p.BSOs, order(f.filter(tc.keep), sort), fmt.Sprintf("%s sort=%d lean=%v", tc.name, sort, lean))
				wantTS(t, p.Modified, ts[3], tc.name+": page timestamp")
				if p.NextOffset != "" {
					t.Fatalf("%s: unlimited read has a next offset %q", tc.name, p.NextOffset)
				}
			}
		}
	}
	// A limit larger than the result gives no next offset.
	p := getAll(t, s, f.uid, f.coll, weave.Query{Limit: len(f.recs)})
	if len(p.BSOs) != len(f.recs) || p.NextOffset != "" {
		t.Fatalf("limit = size: %d records, next offset %q", len(p.BSOs), p.NextOffset)
	}
}

func testSortOrders(t *testing.T, s weave.Store) {
	f := newFixture(t, s)
	for _, sort := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
		p := getAll(t, s, f.uid, f.coll, weave.Query{Sort: sort})
		wantRecs(t, p.BSOs, order(f.recs, sort), fmt.Sprintf("sort=%d", sort))
	}
	// Spot checks that do not rely on order(): newest first.
	p := getAll(t, s, f.uid, f.coll, weave.Query{})
	if p.BSOs[0].ID != "k" || p.BSOs[1].ID != "K" || p.BSOs[len(p.BSOs)-1].ID != "A" {
		t.Fatalf("newest order with id tie-break: %v", recsOf(p.BSOs))
	}
}

// testPaging reads every query in pages of several sizes: the pages must
// concatenate to the unlimited read, each but the last full and carrying a
// next offset.
func testPaging(t *testing.T, s weave.Store) {
	f := newFixture(t, s)
	queries := []weave.Query{
		{},
		{Newer: f.ts[0]},
		{Older: f.ts[3]},
		{Newer: f.ts[0], Older: f.ts[3]},
		{IDs: []string{"A", "a", "b", "x", "X", "_", "k", "K", "m", "missing"}},
		{IDsOnly: true},
		{Newer: f.ts[0], Lean: true},
		{IDsOnly: true, Lean: true},
	}
	for _, base := range queries {
		for _, sort := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
			base.Sort = sort
			all := getAll(t, s, f.uid, f.coll, base).BSOs
			start := base
			start.Offset = weave.StartOffset
			wantRecs(t, getAll(t, s, f.uid, f.coll, start).BSOs, recsOf(all), fmt.Sprintf("%+v from the start offset", base))
			for _, limit := range []int{1, 2, 3, 5, 7, 100} {
				q := base
				q.Limit = limit
				if limit == 3 {
					q.Offset = weave.StartOffset // the same pages
				}
				var got []weave.BSO
				pages := 0
				for {
					p := getAll(t, s, f.uid, f.coll, q)
					pages++
					if pages > len(f.recs)+2 {
						t.Fatalf("%+v: paging does not end", q)
					}
					got = append(got, p.BSOs...)
					if p.NextOffset == "" {
						if len(p.BSOs) > limit {
							t.Fatalf("%+v: last page has %d records", q, len(p.BSOs))
						}
						break
					}
					if len(p.BSOs) != limit {
						t.Fatalf("%+v: page with a next offset has %d records", q, len(p.BSOs))
					}
					q.Offset = p.NextOffset
				}
				wantRecs(t, got, recsOf(all), fmt.Sprintf("pages of %d of %+v", limit, base))
				if want := max(1, (len(all)+limit-1)/limit); pages != want {
					t.Fatalf("%+v limit %d: %d pages for %d records, want %d", base, limit, pages, len(all), want)
				}
			}
		}
	}
}

// testPagingByBytes reads with a byte budget (Query.MaxBytes): pages end
// after the record that reaches it, never before the first, and together
// give the whole read; with a Limit too, whichever comes first ends a page.
func testPagingByBytes(t *testing.T, s weave.Store) {
	f := newFixture(t, s) // payloads of 12 to 13 bytes, ids of 1 to 2
	queries := []weave.Query{
		{},
		{Newer: f.ts[0]},
		{IDs: []string{"A", "a", "b", "x", "X", "_", "k", "K", "m", "missing"}},
		{IDsOnly: true},
		{Limit: 2},
		{Limit: 5},
	}
	for _, base := range queries {
		for _, sort := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
			base.Sort = sort
			unbounded := base
			unbounded.Limit = 0
			all := getAll(t, s, f.uid, f.coll, unbounded).BSOs
			for _, budget := range []int{1, 14, 30, 1 << 20} {
				q := base
				q.MaxBytes = budget
				var got []weave.BSO
				for pages := 0; ; pages++ {
					if pages > len(f.recs)+2 {
						t.Fatalf("%+v: paging does not end", q)
					}
					p := getAll(t, s, f.uid, f.coll, q)
					if len(p.BSOs) == 0 && len(all) > 0 {
						t.Fatalf("%+v: empty page", q)
					}
					size := 0
					for i, b := range p.BSOs {
						if i > 0 && size >= budget {
							t.Fatalf("%+v: page goes on after %d of %d bytes", q, size, budget)
						}
						size += len(b.ID) + len(b.Payload)
					}
					if base.Limit > 0 && len(p.BSOs) > base.Limit {
						t.Fatalf("%+v: %d records over the limit", q, len(p.BSOs))
					}
					got = append(got, p.BSOs...)
					if p.NextOffset == "" {
						break
					}
					if size < budget && len(p.BSOs) != base.Limit {
						t.Fatalf("%+v: page of %d bytes and %d records ends early", q, size, len(p.BSOs))
					}
					q.Offset = p.NextOffset
				}
				wantRecs(t, got, recsOf(all), fmt.Sprintf("pages of %d bytes of %+v", budget, base))
			}
		}
	}
}

func testInvalidOffsets(t *testing.T, s weave.Store) {
	f := newFixture(t, s)
	for _, bad := range []string{"garbage!", "-1", "x:y", "bm90IGEgdG9rZW4", "1234567890:5", "MTUzNjE5ODk3NjkyMQ=="} {
		for _, sort := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
			_, err := s.GetBSOs(t.Context(), f.uid, f.coll, weave.Query{Sort: sort, Limit: 2, Offset: bad})
			wantErr(t, err, weave.ErrInvalidOffset, fmt.Sprintf("offset %q sort=%d", bad, sort))
		}
	}
	// A token resumes only the query it was issued for.
	p := getAll(t, s, f.uid, f.coll, weave.Query{Limit: 3})
	if p.NextOffset == "" {
		t.Fatal("no next offset")
	}
	last := p.BSOs[2].Modified
	_, err := s.GetBSOs(t.Context(), f.uid, f.coll, weave.Query{Sort: weave.SortOldest, Limit: 3, Offset: p.NextOffset})
	wantErr(t, err, weave.ErrInvalidOffset, "newest offset used with sort=oldest")
	_, err = s.GetBSOs(t.Context(), f.uid, f.coll, weave.Query{Limit: 3, Offset: p.NextOffset, Newer: last})
	wantErr(t, err, weave.ErrInvalidOffset, "offset at or below newer")
	_, err = s.GetBSOs(t.Context(), f.uid, f.coll, weave.Query{Limit: 3, Offset: p.NextOffset, Older: last})
	wantErr(t, err, weave.ErrInvalidOffset, "offset at or above older")
	// The token still works for its own query.
	getAll(t, s, f.uid, f.coll, weave.Query{Limit: 3, Offset: p.NextOffset})
}

func testIDsOnly(t *testing.T, s weave.Store) {
	f := newFixture(t, s)
	p := getAll(t, s, f.uid, f.coll, weave.Query{IDsOnly: true, Sort: weave.SortOldest})
	want := order(f.recs, weave.SortOldest)
	ids := make([]string, len(p.BSOs))
	for i, b := range p.BSOs {
		ids[i] = b.ID
		if b.Modified != want[i].modified {
			t.Fatalf("ids-only read: %s modified %v, want %v", b.ID, b.Modified, want[i].modified)
		}
	}
	wantIDs := make([]string, len(want))
	for i, r := range want {
		wantIDs[i] = r.id
	}
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("ids-only read: %q, want %q", ids, wantIDs)
	}
}

// testCountOnly counts reads (Query.CountOnly) from several offsets, with
// and without limits: the count is what the read returns over all its
// pages, at most the limit, with the collection's timestamp, and the next
// offset is the one a read with that limit gives.
func testCountOnly(t *testing.T, s weave.Store) {
	f := newFixture(t, s)
	queries := []weave.Query{
		{},
		{Newer: f.ts[0]},
		{Older: f.ts[3]},
		{Newer: f.ts[0], Older: f.ts[3], Lean: true},
		{Newer: f.ts[3]}, // nothing newer
		{IDs: []string{"A", "a", "b", "x", "X", "_", "k", "K", "m", "missing"}},
		{IDs: []string{"missing"}},
		{IDs: []string{}},
	}
	for _, base := range queries {
		for _, sort := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
			base.Sort = sort
			all := getAll(t, s, f.uid, f.coll, base).BSOs
			offsets := []string{"", weave.StartOffset}
			if len(all) > 3 {
				q := base
				q.Limit = 3
				offsets = append(offsets, getAll(t, s, f.uid, f.coll, q).NextOffset)
			}
			for i, off := range offsets {
				skipped := max(0, i-1) * 3
				for _, limit := range []int{0, 1, 2, 3, 5, len(all) - skipped, 100} {
					if limit < 0 {
						continue
					}
					q := base
					q.Offset, q.Limit = off, limit
					read := getAll(t, s, f.uid, f.coll, q)
					q.CountOnly = true
					got := getAll(t, s, f.uid, f.coll, q)
					want := len(all) - skipped
					if limit > 0 {
						want = min(want, limit)
					}
					what := fmt.Sprintf("count of %+v", q)
					if got.Count != want || len(got.BSOs) != 0 {
						t.Fatalf("%s: %d (and %d records), want %d", what, got.Count, len(got.BSOs), want)
					}
					if got.NextOffset != read.NextOffset {
						t.Fatalf("%s: next offset %q, the read gives %q", what, got.NextOffset, read.NextOffset)
					}
					wantTS(t, got.Modified, f.ts[3], what)
				}
			}
		}
	}
	if p := getAll(t, s, f.uid, "bookmarks", weave.Query{CountOnly: true}); p.Count != 0 || p.Modified != 0 {
		t.Fatalf("count of a missing collection: %d at %v", p.Count, p.Modified)
	}
	if p := getAll(t, s, newUID(), f.coll, weave.Query{CountOnly: true, Limit: 2}); p.Count != 0 || p.Modified != 0 || p.NextOffset != "" {
		t.Fatalf("count of a missing user: %d at %v next %q", p.Count, p.Modified, p.NextOffset)
	}
}

func testCountsAndUsage(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	post(t, s, uid, "bookmarks", upd("a", "12345"), upd("b", "héllo")) // 5 + 6 bytes
	post(t, s, uid, "history", upd("h", "€"))                          // 3 bytes
	post(t, s, uid, "tabs", updSort("t", "", 1))                       // 0 bytes
	post(t, s, uid, "forms", upd("f", "gone"))
	must(s.DeleteBSO(ctx, uid, "forms", "f", noPre))(t) // empty, still listed

	counts := must(s.CollectionCounts(ctx, uid))(t)
	for coll, want := range map[string]int64{"bookmarks": 2, "history": 1, "tabs": 1} {
		if counts[coll] != want {
			t.Fatalf("CollectionCounts: %v, want %s: %d", counts, coll, want)
		}
	}
	if n, ok := counts["forms"]; ok && n != 0 {
		t.Fatalf("CollectionCounts: emptied collection counts %d", n)
	}
	usage := must(s.CollectionUsage(ctx, uid))(t)
	for coll, want := range map[string]int64{"bookmarks": 11, "history": 3} {
		if usage[coll] != want {
			t.Fatalf("CollectionUsage: %v, want %s: %d bytes", usage, coll, want)
		}
	}
	for _, coll := range []string{"tabs", "forms"} {
		if n, ok := usage[coll]; ok && n != 0 {
			t.Fatalf("CollectionUsage: %s uses %d bytes", coll, n)
		}
	}
	if n := must(s.Usage(ctx, uid))(t); n != 14 {
		t.Fatalf("Usage %d, want 14", n)
	}
	// Overwriting replaces the size.
	put(t, s, uid, "bookmarks", upd("a", "1"))
	if n := must(s.Usage(ctx, uid))(t); n != 10 {
		t.Fatalf("Usage after overwrite %d, want 10", n)
	}
}

// testStreamStops: an error from StreamBSOs's function ends the read at
// that record and comes back as it is (the HTTP layer tells its own errors
// from the database's by it).
func testStreamStops(t *testing.T, s weave.Store) {
	st, ok := s.(weave.BSOStreamer)
	if !ok {
		t.Skip("not a weave.BSOStreamer")
	}
	f := newFixture(t, s)
	stop := errors.New("stop")
	calls := 0
	_, err := st.StreamBSOs(t.Context(), f.uid, f.coll, weave.Query{Limit: 5}, func(b *weave.BSO) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Fatalf("StreamBSOs with a function failing at the second record: %v after %d calls, want %v after 2", err, calls, stop)
	}
	// Without a limit too (no record held back to tell about a next page).
	calls = 0
	_, err = st.StreamBSOs(t.Context(), f.uid, f.coll, weave.Query{Sort: weave.SortIndex}, func(b *weave.BSO) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("StreamBSOs with a failing function: %v after %d calls, want %v after 1", err, calls, stop)
	}
}
