package sqlite_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// CollectionTimestamps runs its statement without the request's context
// on a lane connection (sqlstore's readLane): a request
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

// A short read whose pool fills between its look at the pool and its
// statement must still end within its deadline: it never waits, without
// one, in database/sql's queue for a connection that others hold. Two
// holders race each probe for the pool's two connections and keep them
// until the probe returns (or the test gives up on it).
func TestCollectionTimestampsFullPool(t *testing.T) {
	s := openStore(t, tempDSN(t), sqlstore.PoolOptions{MaxOpenConns: 2}, true, sqlstore.StoreOptions{})
	ctx := context.Background()
	if _, err := s.PutBSO(ctx, 7, "tabs", weave.Update{ID: "a", Payload: weave.Some("x")}, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	pool := s.DB().Read
	for i := range 200 {
		start, done := make(chan struct{}), make(chan struct{})
		hctx, release := context.WithCancel(ctx)
		var held sync.WaitGroup
		for range 2 {
			held.Go(func() {
				<-start
				conn, err := pool.Conn(hctx)
				if err != nil {
					return // the probe ended first
				}
				<-hctx.Done()
				conn.Close()
			})
		}
		var err error
		go func() {
			defer close(done)
			<-start
			pctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			_, _, err = s.CollectionTimestamps(pctx, 7)
		}()
		close(start)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			release()
			held.Wait()
			<-done
			t.Fatalf("probe %d: a read with a 20 ms deadline still waited after 10 s behind a full pool", i)
		}
		release()
		held.Wait()
		if err != nil && !errors.Is(err, weave.ErrUnavailable) {
			t.Fatalf("probe %d: %v, want success or %v", i, err, weave.ErrUnavailable)
		}
	}
}
