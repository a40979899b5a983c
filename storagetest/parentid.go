package storagetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/weave-sync/weave"
)

// ids1 is a record's Sync 1.1 fields.
type ids1 struct{ parent, pred string }

func ids1Of(b weave.BSO) ids1 { return ids1{b.ParentID, b.PredecessorID} }

// testParentIDs covers the Sync 1.1 fields parentid and predecessorid:
// stored, read back by every read, kept by updates that leave them out
// (1.5 writes and batches among them), cleared by null or "", and
// filtered on alone and with every other filter.
func testParentIDs(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "bookmarks"
	with := func(id, payload, parent, pred string) weave.Update {
		u := upd(id, payload)
		if parent != "" {
			u.ParentID = weave.Some(parent)
		}
		if pred != "" {
			u.PredecessorID = weave.Some(pred)
		}
		return u
	}
	t1 := post(t, s, uid, c,
		with("a", "A", "root", ""),
		with("b", "B", "root", "a"),
		with("c", "C", "folder", "b"),
		with("d", "D", "", "c"),
		upd("e", "E"),
	)
	t2 := put(t, s, uid, c, with("f", "F", "root", "b"))
	want := map[string]ids1{"a": {"root", ""}, "b": {"root", "a"}, "c": {"folder", "b"}, "d": {"", "c"}, "e": {}, "f": {"root", "b"}}
	modified := map[string]weave.Timestamp{"a": t1, "b": t1, "c": t1, "d": t1, "e": t1, "f": t2}
	verify := func(what string) {
		t.Helper()
		for id, w := range want {
			b := must(s.GetBSO(ctx, uid, c, id))(t)
			if ids1Of(b) != w {
				t.Fatalf("%s: GetBSO %s: parentid/predecessorid %q, want %q", what, id, ids1Of(b), w)
			}
		}
		for _, idsOnly := range []bool{false, true} {
			p := getAll(t, s, uid, c, weave.Query{IDsOnly: idsOnly})
			if len(p.BSOs) != len(want) {
				t.Fatalf("%s: GetBSOs: %d records, want %d", what, len(p.BSOs), len(want))
			}
			for _, b := range p.BSOs {
				if ids1Of(b) != want[b.ID] {
					t.Fatalf("%s: GetBSOs (ids only %v) %s: %q, want %q", what, idsOnly, b.ID, ids1Of(b), want[b.ID])
				}
			}
		}
	}
	verify("written")

	// Filters, alone and combined with the others, in every order.
	str := func(v string) *string { return &v }
	match := func(keep func(id string, w ids1) bool) []string {
		var ids []string
		for id, w := range want {
			if keep(id, w) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}
	cases := []struct {
		name string
		q    weave.Query
		keep func(id string, w ids1) bool
	}{
		{"parentid", weave.Query{ParentID: str("root")}, func(_ string, w ids1) bool { return w.parent == "root" }},
		{"predecessorid", weave.Query{PredecessorID: str("b")}, func(_ string, w ids1) bool { return w.pred == "b" }},
		{"both", weave.Query{ParentID: str("root"), PredecessorID: str("b")}, func(_ string, w ids1) bool { return w.parent == "root" && w.pred == "b" }},
		{"no match", weave.Query{ParentID: str("nowhere")}, func(string, ids1) bool { return false }},
		{"empty value", weave.Query{ParentID: str("")}, func(string, ids1) bool { return false }},
		{"ids case", weave.Query{ParentID: str("ROOT")}, func(string, ids1) bool { return false }},
		{"with newer", weave.Query{ParentID: str("root"), Newer: t1}, func(id string, w ids1) bool { return w.parent == "root" && modified[id] > t1 }},
		{"with older", weave.Query{PredecessorID: str("b"), Older: t2}, func(id string, w ids1) bool { return w.pred == "b" && modified[id] < t2 }},
		{"with ids", weave.Query{ParentID: str("root"), IDs: []string{"a", "c", "f"}}, func(id string, w ids1) bool {
			return w.parent == "root" && (id == "a" || id == "c" || id == "f")
		}},
	}
	for _, tc := range cases {
		for _, sort := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
			for _, idsOnly := range []bool{false, true} {
				q := tc.q
				q.Sort, q.IDsOnly = sort, idsOnly
				p := getAll(t, s, uid, c, q)
				var got []string
				for _, b := range p.BSOs {
					got = append(got, b.ID)
				}
				slices.Sort(got)
				if w := match(tc.keep); !slices.Equal(got, w) {
					t.Fatalf("%s (sort %d, ids only %v): got %q, want %q", tc.name, sort, idsOnly, got, w)
				}
				wantTS(t, p.Modified, t2, tc.name+": page timestamp")
			}
		}
	}
	// Paging through a filtered read neither skips nor repeats.
	var paged []string
	q := weave.Query{ParentID: str("root"), Limit: 1, Sort: weave.SortOldest}
	for range 10 {
		p := getAll(t, s, uid, c, q)
		for _, b := range p.BSOs {
			paged = append(paged, b.ID)
		}
		if p.NextOffset == "" {
			break
		}
		q.Offset = p.NextOffset
	}
	if w := []string{"a", "b", "f"}; !slices.Equal(paged, w) {
		t.Fatalf("paged parentid read: %q, want %q", paged, w)
	}

	// Updates that leave the fields out keep them: a payload write (all a
	// Sync 1.5 client can send), a sortindex write, a batch.
	put(t, s, uid, c, upd("a", "A2"))
	post(t, s, uid, c, weave.Update{ID: "b", SortIndex: weave.Some[int64](3)}, upd("c", "C2"))
	b := must(batchID(s.CreateBatch(ctx, uid, c, []weave.Update{upd("d", "D2")}, noPre)))(t)
	must(s.CommitBatch(ctx, uid, c, b, []weave.Update{upd("f", "F2")}, noPre))(t)
	verify("after updates without the fields")

	// Set, change, clear (null and "").
	post(t, s, uid, c,
		weave.Update{ID: "a", PredecessorID: weave.Some("x")},
		weave.Update{ID: "b", ParentID: null[string]()},
		weave.Update{ID: "c", ParentID: weave.Some(""), PredecessorID: weave.Some("")},
		with("e", "E2", "folder", ""),
	)
	put(t, s, uid, c, weave.Update{ID: "f", ParentID: weave.Some("folder")})
	want["a"] = ids1{"root", "x"}
	want["b"] = ids1{"", "a"}
	want["c"] = ids1{}
	want["e"] = ids1{"folder", ""}
	want["f"] = ids1{"folder", "b"}
	verify("after changes")
	for _, tc := range []struct {
		q    weave.Query
		want []string
	}{
		{weave.Query{ParentID: str("root")}, []string{"a"}},
		{weave.Query{ParentID: str("folder")}, []string{"e", "f"}},
		{weave.Query{PredecessorID: str("b")}, []string{"f"}},
	} {
		var got []string
		for _, b := range getAll(t, s, uid, c, tc.q).BSOs {
			got = append(got, b.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("after changes, query %s: %q, want %q", fmtQuery(tc.q), got, tc.want)
		}
	}

	// Several updates of one id in one post merge, the later field winning.
	post(t, s, uid, c, weave.Update{ID: "d", ParentID: weave.Some("p1")}, weave.Update{ID: "d", PredecessorID: weave.Some("q1")},
		weave.Update{ID: "d", ParentID: weave.Some("p2")})
	want["d"] = ids1{"p2", "q1"}
	verify("after a merged post")

	// A 64-byte id fits, and ids of other users are not seen.
	long := fmt.Sprintf("%064d", 7)
	put(t, s, uid, c, with("g", "G", long, long))
	want["g"] = ids1{long, long}
	verify("64-byte ids")
	other := newUID()
	post(t, s, other, c, with("a", "other", "root", "b"))
	if p := getAll(t, s, uid, c, weave.Query{PredecessorID: str("x")}); len(p.BSOs) != 1 || p.BSOs[0].ID != "a" || p.BSOs[0].Payload != "A2" {
		t.Fatalf("predecessorid read of one user: %v", recsOf(p.BSOs))
	}
}

func fmtQuery(q weave.Query) string {
	deref := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	return fmt.Sprintf("parentid=%s predecessorid=%s", deref(q.ParentID), deref(q.PredecessorID))
}
