package storagetest

import (
	"testing"

	"github.com/weave-sync/weave"
)

// testPreconditions checks X-If-Unmodified-Since on every kind of write,
// against the resource each one targets: the item for PutBSO and
// DeleteBSO, the collection for PostBSOs, DeleteBSOs, DeleteCollection and
// the batch calls, the storage for DeleteStorage. A failed precondition
// reports the resource's timestamp and writes nothing.
func testPreconditions(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "passwords"
	ta := put(t, s, uid, c, upd("a", "a1"))
	tb := put(t, s, uid, c, upd("b", "b1"))
	td := put(t, s, uid, "prefs", upd("x", "x1"))
	// Now item a: ta < collection: tb < storage: td.

	// PutBSO checks the item, not the collection.
	_, err := s.PutBSO(ctx, uid, c, upd("a", "stale"), since(ta-10))
	wantPrecondition(t, err, ta, "PutBSO with a stale item timestamp")
	wantBSO(t, s, uid, c, rec{"a", ta, nil, "a1"})
	ta2 := must(s.PutBSO(ctx, uid, c, upd("a", "a2"), since(ta)))(t)
	wantBSO(t, s, uid, c, rec{"a", ta2, nil, "a2"})
	tc := ta2 // collection timestamp now

	// PostBSOs checks the collection.
	_, err = s.PostBSOs(ctx, uid, c, []weave.Update{upd("new", "n"), upd("a", "stale")}, since(tc-10))
	wantPrecondition(t, err, tc, "PostBSOs with a stale collection timestamp")
	wantGone(t, s, uid, c, "new")
	wantBSO(t, s, uid, c, rec{"a", ta2, nil, "a2"})
	tc = must(s.PostBSOs(ctx, uid, c, []weave.Update{upd("new", "n")}, since(tc)))(t)
	// An item older than the precondition does not matter to PostBSOs: the
	// collection does.
	_, err = s.PostBSOs(ctx, uid, c, []weave.Update{upd("b", "stale")}, since(tb))
	wantPrecondition(t, err, tc, "PostBSOs checks the collection, not the item")

	// DeleteBSO checks the item.
	_, err = s.DeleteBSO(ctx, uid, c, "new", since(tc-10))
	wantPrecondition(t, err, tc, "DeleteBSO with a stale item timestamp")
	wantBSO(t, s, uid, c, rec{"new", tc, nil, "n"})
	tdel := must(s.DeleteBSO(ctx, uid, c, "b", since(tb)))(t)
	wantGone(t, s, uid, c, "b")
	tc = tdel

	// DeleteBSOs checks the collection.
	_, err = s.DeleteBSOs(ctx, uid, c, []string{"a"}, since(tc-10))
	wantPrecondition(t, err, tc, "DeleteBSOs with a stale collection timestamp")
	wantBSO(t, s, uid, c, rec{"a", ta2, nil, "a2"})
	tc = must(s.DeleteBSOs(ctx, uid, c, []string{"a"}, since(tc)))(t)
	wantGone(t, s, uid, c, "a")

	// Batches check the collection on create, append and commit; a failed
	// commit leaves the batch open.
	_, _, err = s.CreateBatch(ctx, uid, c, []weave.Update{upd("q", "q")}, since(tc-10))
	wantPrecondition(t, err, tc, "CreateBatch with a stale collection timestamp")
	batch := must(batchID(s.CreateBatch(ctx, uid, c, []weave.Update{upd("q", "q")}, since(tc))))(t)
	_, err = s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("r", "r")}, since(tc-10))
	wantPrecondition(t, err, tc, "AppendBatch with a stale collection timestamp")
	must(s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("r", "r")}, since(tc)))(t)
	_, err = s.CommitBatch(ctx, uid, c, batch, nil, since(tc-10))
	wantPrecondition(t, err, tc, "CommitBatch with a stale collection timestamp")
	wantGone(t, s, uid, c, "q")
	tc = must(s.CommitBatch(ctx, uid, c, batch, nil, since(tc)))(t)
	wantBSO(t, s, uid, c, rec{"q", tc, nil, "q"})
	wantBSO(t, s, uid, c, rec{"r", tc, nil, "r"})

	// DeleteCollection checks the collection.
	_, err = s.DeleteCollection(ctx, uid, c, since(tc-10))
	wantPrecondition(t, err, tc, "DeleteCollection with a stale collection timestamp")
	wantTS(t, collTS(t, s, uid, c), tc, "collection after refused delete")

	// DeleteStorage checks the storage.
	st := storageTS(t, s, uid)
	wantTS(t, st, tc, "storage timestamp")
	if td >= st {
		t.Fatalf("test setup: storage %v not after %v", st, td)
	}
	_, err = s.DeleteStorage(ctx, uid, since(td))
	wantPrecondition(t, err, st, "DeleteStorage with a stale storage timestamp")
	wantBSO(t, s, uid, "prefs", rec{"x", td, nil, "x1"})
	must(s.DeleteCollection(ctx, uid, c, since(tc)))(t)
	wantTS(t, collTS(t, s, uid, c), 0, "collection after delete")
	st = storageTS(t, s, uid)
	must(s.DeleteStorage(ctx, uid, since(st)))(t)
	wantGone(t, s, uid, "prefs", "x")

	// A precondition on a missing collection sees timestamp 0.
	must(s.PostBSOs(ctx, uid, "fresh", []weave.Update{upd("f", "f")}, since(0)))(t)
}

// testCreateOnly checks X-If-Unmodified-Since: 0, "only if absent".
func testCreateOnly(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "addresses"
	t1 := must(s.PutBSO(ctx, uid, c, upd("a", "first"), since(0)))(t)
	_, err := s.PutBSO(ctx, uid, c, upd("a", "second"), since(0))
	wantPrecondition(t, err, t1, "second create-only PutBSO")
	wantBSO(t, s, uid, c, rec{"a", t1, nil, "first"})
	// Another id in the same, existing collection is still absent.
	t2 := must(s.PutBSO(ctx, uid, c, upd("b", "b"), since(0)))(t)
	// For the collection-level writes, 0 means the collection must not exist.
	_, err = s.PostBSOs(ctx, uid, c, []weave.Update{upd("c", "c")}, since(0))
	wantPrecondition(t, err, t2, "create-only PostBSOs on an existing collection")
	_, _, err = s.CreateBatch(ctx, uid, c, nil, since(0))
	wantPrecondition(t, err, t2, "create-only CreateBatch on an existing collection")
	_, err = s.DeleteBSO(ctx, uid, c, "a", since(0))
	wantPrecondition(t, err, t1, "DeleteBSO with precondition 0 on an existing item")
	// After a delete the item is absent again.
	must(s.DeleteBSO(ctx, uid, c, "a", noPre))(t)
	must(s.PutBSO(ctx, uid, c, upd("a", "again"), since(0)))(t)
}
