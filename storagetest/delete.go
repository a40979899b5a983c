package storagetest

import (
	"maps"
	"testing"

	"github.com/weave-sync/weave"
)

func testDeleteBSO(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "bookmarks"
	t1 := post(t, s, uid, c, upd("a", "a"), upd("b", "b"))
	t2 := put(t, s, uid, "other", upd("o", "o"))
	t3 := must(s.DeleteBSO(ctx, uid, c, "a", noPre))(t)
	wantAfter(t, t2, t3, "DeleteBSO")
	wantGone(t, s, uid, c, "a")
	wantBSO(t, s, uid, c, rec{"b", t1, nil, "b"})
	wantTS(t, collTS(t, s, uid, c), t3, "collection after DeleteBSO")
	wantTS(t, storageTS(t, s, uid), t3, "storage after DeleteBSO")
	wantTS(t, collTS(t, s, uid, "other"), t2, "other collection after DeleteBSO")

	_, err := s.DeleteBSO(ctx, uid, c, "a", noPre)
	wantErr(t, err, weave.ErrNotFound, "deleting a deleted BSO")
	_, err = s.DeleteBSO(ctx, uid, c, "never", noPre)
	wantErr(t, err, weave.ErrNotFound, "deleting a missing BSO")
	_, err = s.DeleteBSO(ctx, uid, "no-such-collection", "a", noPre)
	wantErr(t, err, weave.ErrNotFound, "deleting in a missing collection")
	// Failed deletes write nothing.
	wantTS(t, storageTS(t, s, uid), t3, "storage after failed deletes")

	// The last record gone, the collection stays.
	t4 := must(s.DeleteBSO(ctx, uid, c, "b", noPre))(t)
	wantTS(t, collTS(t, s, uid, c), t4, "emptied collection")
	p := getAll(t, s, uid, c, weave.Query{})
	if len(p.BSOs) != 0 || p.Modified != t4 {
		t.Fatalf("emptied collection reads %+v", p)
	}
}

func testDeleteBSOs(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "history"
	t1 := post(t, s, uid, c, upd("a", "a"), upd("b", "b"), upd("c", "c"))
	t2 := must(s.DeleteBSOs(ctx, uid, c, []string{"a", "c", "missing"}, noPre))(t)
	wantAfter(t, t1, t2, "DeleteBSOs")
	wantGone(t, s, uid, c, "a")
	wantGone(t, s, uid, c, "c")
	wantBSO(t, s, uid, c, rec{"b", t1, nil, "b"})
	wantTS(t, collTS(t, s, uid, c), t2, "collection after DeleteBSOs")
	wantTS(t, storageTS(t, s, uid), t2, "storage after DeleteBSOs")

	// Deleting everything leaves the collection listed with T.
	t3 := must(s.DeleteBSOs(ctx, uid, c, []string{"b"}, noPre))(t)
	colls, st, err := s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if !maps.Equal(colls, map[string]weave.Timestamp{c: t3}) || st != t3 {
		t.Fatalf("CollectionTimestamps after emptying: %v, %v", colls, st)
	}
	p := getAll(t, s, uid, c, weave.Query{})
	if len(p.BSOs) != 0 || p.Modified != t3 {
		t.Fatalf("emptied collection reads %+v", p)
	}
	// Ids that match nothing still write the collection.
	t4 := must(s.DeleteBSOs(ctx, uid, c, []string{"nothing"}, noPre))(t)
	wantAfter(t, t3, t4, "DeleteBSOs of absent ids")

	// A missing collection is left alone: the storage timestamp comes back.
	ts := must(s.DeleteBSOs(ctx, uid, "tabs", []string{"a"}, noPre))(t)
	wantTS(t, ts, t4, "DeleteBSOs of a missing collection")
	wantTS(t, storageTS(t, s, uid), t4, "storage after DeleteBSOs of a missing collection")
	if _, ok := must(s.CollectionCounts(ctx, uid))(t)["tabs"]; ok {
		t.Fatal("DeleteBSOs created the missing collection")
	}
	colls, _, err = s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if _, ok := colls["tabs"]; ok {
		t.Fatal("DeleteBSOs created the missing collection")
	}
}

func testDeleteCollection(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "forms"
	post(t, s, uid, c, upd("a", "a"), upd("b", "b"))
	t2 := put(t, s, uid, "keep", upd("k", "k"))
	batch := must(batchID(s.CreateBatch(ctx, uid, c, []weave.Update{upd("staged", "s")}, noPre)))(t)
	t3 := must(s.DeleteCollection(ctx, uid, c, noPre))(t)
	wantAfter(t, t2, t3, "DeleteCollection")
	wantTS(t, storageTS(t, s, uid), t3, "storage after DeleteCollection")
	wantTS(t, collTS(t, s, uid, c), 0, "deleted collection")
	colls, st, err := s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if !maps.Equal(colls, map[string]weave.Timestamp{"keep": t2}) || st != t3 {
		t.Fatalf("CollectionTimestamps after DeleteCollection: %v, %v", colls, st)
	}
	p := getAll(t, s, uid, c, weave.Query{})
	if len(p.BSOs) != 0 || p.Modified != 0 {
		t.Fatalf("deleted collection reads %+v", p)
	}
	wantGone(t, s, uid, c, "a")
	if n := must(s.CollectionCounts(ctx, uid))(t)[c]; n != 0 {
		t.Fatalf("deleted collection counts %d", n)
	}
	// Its open batches went with it.
	_, err = s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("x", "x")}, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "append to a batch of a deleted collection")
	_, err = s.CommitBatch(ctx, uid, c, batch, nil, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "commit of a batch of a deleted collection")

	// Deleting it again is no error and writes nothing.
	ts := must(s.DeleteCollection(ctx, uid, c, noPre))(t)
	wantTS(t, ts, t3, "DeleteCollection of a missing collection")
	wantTS(t, storageTS(t, s, uid), t3, "storage after no-op DeleteCollection")

	// Writing it again starts afresh, after the delete.
	t4 := put(t, s, uid, c, upd("a", "new"))
	wantAfter(t, t3, t4, "recreate")
	p = getAll(t, s, uid, c, weave.Query{})
	wantRecs(t, p.BSOs, []rec{{"a", t4, nil, "new"}}, "recreated collection")
}

func testDeleteStorage(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	post(t, s, uid, "bookmarks", upd("a", "a"))
	t2 := post(t, s, uid, "history", upd("h", "h"))
	batch := must(batchID(s.CreateBatch(ctx, uid, "tabs", []weave.Update{upd("t", "t")}, noPre)))(t)
	t3 := must(s.DeleteStorage(ctx, uid, noPre))(t)
	wantAfter(t, t2, t3, "DeleteStorage")
	colls, st, err := s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if len(colls) != 0 {
		t.Fatalf("collections after DeleteStorage: %v", colls)
	}
	// The storage timestamp stays at T so that it never goes back.
	wantTS(t, st, t3, "storage timestamp after DeleteStorage")
	wantTS(t, storageTS(t, s, uid), t3, "LastModified after DeleteStorage")
	wantGone(t, s, uid, "bookmarks", "a")
	wantGone(t, s, uid, "history", "h")
	if n := must(s.Usage(ctx, uid))(t); n != 0 {
		t.Fatalf("usage after DeleteStorage: %d", n)
	}
	if c := must(s.CollectionCounts(ctx, uid))(t); len(c) != 0 {
		t.Fatalf("counts after DeleteStorage: %v", c)
	}
	_, err = s.CommitBatch(ctx, uid, "tabs", batch, nil, noPre)
	wantErr(t, err, weave.ErrBatchNotFound, "commit of a batch after DeleteStorage")
	wantGone(t, s, uid, "tabs", "t")

	t4 := put(t, s, uid, "bookmarks", upd("b", "b"))
	wantAfter(t, t3, t4, "write after DeleteStorage")
	wantRecs(t, getAll(t, s, uid, "bookmarks", weave.Query{}).BSOs, []rec{{"b", t4, nil, "b"}}, "bookmarks after DeleteStorage")

	// Deleting an empty storage works too.
	t5 := must(s.DeleteStorage(ctx, uid, noPre))(t)
	wantAfter(t, t4, t5, "DeleteStorage")
	if t6 := must(s.DeleteStorage(ctx, uid, noPre))(t); t6 < t5 {
		t.Fatalf("DeleteStorage of an empty storage went back to %v from %v", t6, t5)
	}
	must(s.DeleteStorage(ctx, newUID(), noPre))(t)
}
