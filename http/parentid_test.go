package http

import (
	"context"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
)

// TestSync11FieldsInvisible: records carrying the Sync 1.1 fields parentid
// and predecessorid (written by the 1.1 API into the same store) read
// through 1.5 exactly as records without them, the 1.5 API ignores the
// filters, and 1.5 writes keep the fields.
func TestSync11FieldsInvisible(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	with := weave.Update{ID: "with", Payload: weave.Some("p"), SortIndex: weave.Some[int64](3),
		ParentID: weave.Some("root"), PredecessorID: weave.Some("prev")}
	without := weave.Update{ID: "without", Payload: weave.Some("p"), SortIndex: weave.Some[int64](3)}
	if _, err := e.store.PostBSOs(ctx, e.uid, "bookmarks", []weave.Update{with, without}, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	same := func(what, a, b string) {
		t.Helper()
		if strings.Contains(a, "parentid") || strings.Contains(a, "predecessorid") || strings.Contains(a, "root") ||
			strings.Replace(a, `"with"`, `"without"`, 1) != b {
			t.Fatalf("%s: a record with the 1.1 fields reads\n%s\nand one without\n%s", what, a, b)
		}
	}
	a, b := e.get(e.u("/storage/bookmarks/with")), e.get(e.u("/storage/bookmarks/without"))
	expect(t, a, 200, "")
	same("GET item", a.Body.String(), b.Body.String())
	for _, accept := range []string{"application/json", "application/newlines"} {
		a = e.get(e.u("/storage/bookmarks?full=1&ids=with"), "Accept", accept)
		b = e.get(e.u("/storage/bookmarks?full=1&ids=without"), "Accept", accept)
		expect(t, a, 200, "")
		same("GET full "+accept, a.Body.String(), b.Body.String())
	}
	// The 1.1 filters mean nothing to 1.5.
	expect(t, e.get(e.u("/storage/bookmarks?parentid=nowhere&predecessorid=none&sort=index")), 200, `["without","with"]`)
	// A 1.5 write of the record keeps the fields for 1.1.
	expect(t, e.put(e.u("/storage/bookmarks/with"), `{"payload":"q"}`, "Content-Type", "application/json"), 200, "")
	got, err := e.store.GetBSO(ctx, e.uid, "bookmarks", "with")
	if err != nil || got.Payload != "q" || got.ParentID != "root" || got.PredecessorID != "prev" {
		t.Fatalf("after a 1.5 PUT: %+v %v", got, err)
	}
}
