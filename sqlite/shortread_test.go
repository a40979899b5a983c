package sqlite_test

import (
	"context"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// CollectionTimestamps runs its statement without the request's context
// when a read connection is free (sqlstore's shortReadContext): a request
// that has ended must still get an error, not a result, and a read after
// another connection's commit must see it.
func TestCollectionTimestampsContext(t *testing.T) {
	dsn := tempDSN(t)
	s := openStore(t, dsn, sqlstore.PoolOptions{MaxOpenConns: 2}, true, sqlstore.StoreOptions{})
	other := openStore(t, dsn, sqlstore.PoolOptions{}, false, sqlstore.StoreOptions{})
	ctx := context.Background()
	put := func(st *sqlstore.Store, coll string) weave.Timestamp {
		t.Helper()
		ts, err := st.PutBSO(ctx, 7, coll, weave.Update{ID: "a", Payload: weave.Some("x")}, weave.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	put(s, "tabs")
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if got, _, err := s.CollectionTimestamps(gone, 7); err == nil {
		t.Fatalf("ended context: got %v, want an error", got)
	}
	ts := put(other, "history")
	got, storage, err := s.CollectionTimestamps(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got["history"] != ts || storage != ts || len(got) != 2 {
		t.Fatalf("after the other store's write: %v, storage %v; want history %v", got, storage, ts)
	}
}
