package storagetest

import (
	"fmt"
	"testing"

	"github.com/weave-sync/weave"
)

func testBatchLifecycle(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "bookmarks"
	t0 := put(t, s, uid, "other", upd("o", "o"))

	// Creating and appending stage records invisibly and move no timestamp.
	batch := must(batchID(s.CreateBatch(ctx, uid, c, []weave.Update{upd("a", "a"), updSort("b", "b", 2)}, noPre)))(t)
	if batch == "" {
		t.Fatal("CreateBatch returned an empty id")
	}
	wantGone(t, s, uid, c, "a")
	wantTS(t, collTS(t, s, uid, c), 0, "collection after CreateBatch")
	colls, st, err := s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if _, ok := colls[c]; ok || st != t0 {
		t.Fatalf("CollectionTimestamps with an open batch: %v, %v", colls, st)
	}
	must(s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("c", "c")}, noPre))(t)
	must(s.AppendBatch(ctx, uid, c, batch, nil, noPre))(t)
	wantGone(t, s, uid, c, "c")
	if n := must(s.CollectionCounts(ctx, uid))(t)[c]; n != 0 {
		t.Fatalf("staged records counted: %d", n)
	}
	if n := must(s.Usage(ctx, uid))(t); n != 1 {
		t.Fatalf("staged records in usage: %d", n)
	}

	// Other writes to the collection may happen meanwhile.
	t1 := put(t, s, uid, c, upd("x", "x"))
	wantTS(t, collTS(t, s, uid, c), t1, "collection after a write during the batch")

	// The commit applies everything with one timestamp.
	t2 := must(s.CommitBatch(ctx, uid, c, batch, []weave.Update{upd("d", "d")}, noPre))(t)
	wantAfter(t, t1, t2, "CommitBatch")
	wantTS(t, collTS(t, s, uid, c), t2, "collection after commit")
	wantTS(t, storageTS(t, s, uid), t2, "storage after commit")
	want := []rec{{"a", t2, nil, "a"}, {"b", t2, ptr(2), "b"}, {"c", t2, nil, "c"}, {"d", t2, nil, "d"}, {"x", t1, nil, "x"}}
	wantRecs(t, getAll(t, s, uid, c, weave.Query{Sort: weave.SortOldest}).BSOs, order(want, weave.SortOldest), "after commit")

	// A committed batch is closed.
	_, err = s.CommitBatch(ctx, uid, c, batch, nil, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "second commit")
	_, err = s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("e", "e")}, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "append after commit")
	wantTS(t, collTS(t, s, uid, c), t2, "collection after refused batch calls")

	// An empty batch commits as a write of the collection.
	empty := must(batchID(s.CreateBatch(ctx, uid, "tabs", nil, noPre)))(t)
	t3 := must(s.CommitBatch(ctx, uid, "tabs", empty, nil, noPre))(t)
	wantAfter(t, t2, t3, "commit of an empty batch")
	wantTS(t, collTS(t, s, uid, "tabs"), t3, "collection of an empty batch")

	// Ids are distinct.
	seen := map[string]bool{batch: true, empty: true}
	for range 20 {
		id := must(batchID(s.CreateBatch(ctx, uid, c, nil, noPre)))(t)
		if seen[id] {
			t.Fatalf("batch id %q issued twice", id)
		}
		seen[id] = true
	}

	// A batch of many records, committed with its own records too.
	big := must(batchID(s.CreateBatch(ctx, uid, "history", nil, noPre)))(t)
	for i := range 5 {
		var us []weave.Update
		for j := range 100 {
			us = append(us, updSort(fmt.Sprintf("h%d-%02d", i, j), "payload", int64(j)))
		}
		must(s.AppendBatch(ctx, uid, "history", big, us, noPre))(t)
	}
	t4 := must(s.CommitBatch(ctx, uid, "history", big, []weave.Update{upd("h0-00", "last word")}, noPre))(t)
	p := getAll(t, s, uid, "history", weave.Query{Newer: t3})
	if len(p.BSOs) != 500 {
		t.Fatalf("big batch: %d records visible, want 500", len(p.BSOs))
	}
	wantBSO(t, s, uid, "history", rec{"h0-00", t4, ptr(0), "last word"})
}

// testBatchMerge stages several partial updates of the same ids: the commit
// must equal applying them in order, the commit's own last.
func testBatchMerge(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "prefs"
	t0 := put(t, s, uid, c, weave.Update{ID: "e", Payload: weave.Some("old"), SortIndex: weave.Some[int64](1)})
	tf := put(t, s, uid, c, weave.Update{ID: "f", Payload: weave.Some("keep"), SortIndex: weave.Some[int64](1), TTL: weave.Some[int64](3600)})

	batch := must(batchID(s.CreateBatch(ctx, uid, c, []weave.Update{
		updSort("n", "p1", 5),
		{ID: "e", SortIndex: weave.Some[int64](9)},
		{ID: "f", TTL: null[int64]()},
	}, noPre)))(t)
	must(s.AppendBatch(ctx, uid, c, batch, []weave.Update{
		upd("n", "p2"),
		{ID: "e", TTL: weave.Some[int64](3600)},
		{ID: "f", SortIndex: null[int64]()},
	}, noPre))(t)
	must(s.AppendBatch(ctx, uid, c, batch, []weave.Update{
		{ID: "n", SortIndex: null[int64]()},
		{ID: "g", SortIndex: weave.Some[int64](4)},
	}, noPre))(t)
	t1 := must(s.CommitBatch(ctx, uid, c, batch, []weave.Update{
		upd("n", "p3"),
		upd("m", "m"),
		{ID: "g", TTL: weave.Some[int64](60)},
	}, noPre))(t)

	wantBSO(t, s, uid, c, rec{"n", t1, nil, "p3"})
	wantBSO(t, s, uid, c, rec{"m", t1, nil, "m"})
	// No payload in any update: the record keeps its modified time.
	e := wantBSO(t, s, uid, c, rec{"e", t0, ptr(9), "old"})
	wantTS(t, e.Expires, t1+3600_000, "expiry set in a batch (from the commit)")
	f := wantBSO(t, s, uid, c, rec{"f", tf, nil, "keep"})
	wantTS(t, f.Expires, 0, "ttl reset to null in a batch")
	g := wantBSO(t, s, uid, c, rec{"g", t1, ptr(4), ""})
	wantTS(t, g.Expires, t1+60_000, "ttl on a new record from a commit")
}

func testBatchIsolation(t *testing.T, s weave.Store) {
	ctx := t.Context()
	alice, bob := newUID(), newUID()
	const c = "bookmarks"
	put(t, s, alice, "tabs", upd("t", "t"))
	put(t, s, bob, c, upd("b", "b"))
	batch := must(batchID(s.CreateBatch(ctx, alice, c, []weave.Update{upd("a", "a")}, noPre)))(t)

	// Not another user's, not another collection's.
	_, err := s.AppendBatch(ctx, bob, c, batch, []weave.Update{upd("evil", "x")}, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "append by another user")
	_, err = s.CommitBatch(ctx, bob, c, batch, nil, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "commit by another user")
	_, err = s.AppendBatch(ctx, alice, "tabs", batch, nil, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "append in another collection")
	_, err = s.CommitBatch(ctx, alice, "tabs", batch, nil, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "commit in another collection")
	_, err = s.CommitBatch(ctx, alice, "never-used-anywhere", batch, nil, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "commit in an unknown collection")
	for _, bad := range []string{"", "true", "1", "garbage", "MTUzNjE5ODk3NjkyMQ==", "AAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", batch + "x"} {
		_, err = s.AppendBatch(ctx, alice, c, bad, nil, noPre)
		wantErr(t, err, weave.ErrBatchNotFound, fmt.Sprintf("append to batch %q", bad))
		_, err = s.CommitBatch(ctx, alice, c, bad, nil, noPre)
		wantErr(t, err, weave.ErrBatchNotFound, fmt.Sprintf("commit of batch %q", bad))
	}
	wantGone(t, s, bob, c, "evil")

	// Two open batches in one collection stay apart.
	other := must(batchID(s.CreateBatch(ctx, alice, c, []weave.Update{upd("o", "o")}, noPre)))(t)
	must(s.AppendBatch(ctx, alice, c, batch, []weave.Update{upd("a2", "a2")}, noPre))(t)
	t1 := must(s.CommitBatch(ctx, alice, c, batch, nil, noPre))(t)
	wantBSO(t, s, alice, c, rec{"a", t1, nil, "a"})
	wantBSO(t, s, alice, c, rec{"a2", t1, nil, "a2"})
	wantGone(t, s, alice, c, "o")
	t2 := must(s.CommitBatch(ctx, alice, c, other, nil, noPre))(t)
	wantBSO(t, s, alice, c, rec{"o", t2, nil, "o"})
	wantRecs(t, getAll(t, s, bob, c, weave.Query{}).BSOs, []rec{{"b", collTS(t, s, bob, c), nil, "b"}}, "bob's collection")
}

// testBatchTimestamps: CreateBatch and AppendBatch return the collection's
// timestamp as their own transaction read it, which staging leaves alone.
func testBatchTimestamps(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "forms"
	batch, ts, err := s.CreateBatch(ctx, uid, c, []weave.Update{upd("a", "a")}, noPre)
	check(t, err)
	wantTS(t, ts, 0, "CreateBatch in a new collection")
	wantTS(t, must(s.AppendBatch(ctx, uid, c, batch, nil, noPre))(t), 0, "AppendBatch in a new collection")

	t1 := put(t, s, uid, c, upd("x", "x"))
	wantTS(t, must(s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("b", "b")}, noPre))(t), t1, "AppendBatch after a write")
	other, ts, err := s.CreateBatch(ctx, uid, c, nil, noPre)
	check(t, err)
	wantTS(t, ts, t1, "CreateBatch in an existing collection")
	t2 := must(s.CommitBatch(ctx, uid, c, other, []weave.Update{upd("y", "y")}, noPre))(t)
	wantTS(t, must(s.AppendBatch(ctx, uid, c, batch, nil, noPre))(t), t2, "AppendBatch after another batch's commit")

	// Writes elsewhere do not move it.
	put(t, s, uid, "tabs", upd("t", "t"))
	_, ts, err = s.CreateBatch(ctx, uid, c, nil, noPre)
	check(t, err)
	wantTS(t, ts, t2, "CreateBatch after a write to another collection")
	wantTS(t, collTS(t, s, uid, c), t2, "collection after staging")
}
