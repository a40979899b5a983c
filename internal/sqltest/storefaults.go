package sqltest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/sqlstore"
)

// faultUID is the user of the fault tests: its eight bytes in big-endian
// order spell WEAVEUID, so that the proxy can spot the statements that carry
// it whether the driver sends integers as text (MySQL) or binary
// (PostgreSQL).
var faultUID = int64(binary.BigEndian.Uint64([]byte("WEAVEUID")))

// StoreBackend is an adapter's Store under fault tests.
type StoreBackend struct {
	// Fresh returns the URL of an empty database that lives as long as t.
	Fresh func(t testing.TB) string
	// OpenStore opens a migrated Store on a URL with the given default call
	// timeout.
	OpenStore func(ctx context.Context, url string, timeout time.Duration) (*sqlstore.Store, error)
	// UIDMarker is how the uid appears on the wire in statements: its
	// decimal text for MySQL, its eight big-endian bytes for PostgreSQL.
	UIDMarker func(uid int64) string
}

// DecimalMarker is UIDMarker for drivers that send integers as text.
func DecimalMarker(uid int64) string { return fmt.Sprint(uid) }

// BinaryMarker is UIDMarker for drivers that send integers as 8-byte
// big-endian binary values.
func BinaryMarker(uid int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(uid))
	return string(b[:])
}

// RunStoreFaults kills the database connection under a Store at every
// statement of a batch commit and of a POST, then makes the server refuse
// connections and hang, and checks each time that the Store reports
// weave.ErrUnavailable (the HTTP layer's 503 with Retry-After), that nothing
// of the write was applied, and that the same Store works again as soon as
// the database is back.
func RunStoreFaults(t *testing.T, b StoreBackend) {
	ctx := context.Background()
	url := b.Fresh(t)
	p, purl := dbtest.Proxy(t, url)
	const timeout = 2 * time.Second
	direct, err := b.OpenStore(ctx, url, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	s, err := b.OpenStore(ctx, purl, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	marker := b.UIDMarker(faultUID)
	uid := faultUID

	records := func(prefix string, n int) []weave.Update {
		us := make([]weave.Update, n)
		for i := range us {
			us[i] = weave.Update{ID: fmt.Sprintf("%s%03d", prefix, i), Payload: weave.Some(fmt.Sprintf("payload %s %d", prefix, i)), SortIndex: weave.Some(int64(i))}
		}
		return us
	}
	count := func(t *testing.T, coll string) int64 {
		t.Helper()
		n, err := direct.CollectionCounts(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		return n[coll]
	}
	// works checks that the Store serves again, on its own.
	works := func(t *testing.T) {
		t.Helper()
		if _, err := s.LastModified(ctx, uid); err != nil {
			t.Fatalf("store does not recover: %v", err)
		}
		if _, err := s.PutBSO(ctx, uid, "meta", weave.Update{ID: "global", Payload: weave.Some("x")}, weave.Precondition{}); err != nil {
			t.Fatalf("store does not recover for writes: %v", err)
		}
	}
	unavailable := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, weave.ErrUnavailable) {
			t.Fatalf("%s: %v, want ErrUnavailable", what, err)
		}
	}

	// A first write creates the user, so that later cuts hit an existing
	// user's transactions.
	works(t)

	t.Run("BatchCommit", func(t *testing.T) {
		batch, _, err := s.CreateBatch(ctx, uid, "history", records("a", 40), weave.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendBatch(ctx, uid, "history", batch, records("b", 40), weave.Precondition{}); err != nil {
			t.Fatal(err)
		}
		before, err := direct.CollectionModified(ctx, uid, "history")
		if err != nil {
			t.Fatal(err)
		}
		// Cut at the 1st, 2nd, ... statement of the commit until it gets
		// through whole.
		for n := 1; ; n++ {
			if n > 50 {
				t.Fatal("commit never got through")
			}
			tripped := p.CutOnNth(marker, n)
			ts, err := s.CommitBatch(ctx, uid, "history", batch, records("c", 20), weave.Precondition{})
			if !fired(tripped, err) {
				// The commit ran without reaching statement n.
				p.Disarm()
				if err != nil {
					t.Fatalf("commit with no fault: %v", err)
				}
				if got := count(t, "history"); got != 100 {
					t.Fatalf("after the commit: %d records, want 100", got)
				}
				if m, _ := direct.CollectionModified(ctx, uid, "history"); m != ts {
					t.Fatalf("collection timestamp %v, commit returned %v", m, ts)
				}
				t.Logf("cut the commit at each of its %d statements", n-1)
				return
			}
			unavailable(t, fmt.Sprintf("commit cut at statement %d", n), err)
			if got := count(t, "history"); got != 0 {
				t.Fatalf("commit cut at statement %d left %d records applied", n, got)
			}
			if m, _ := direct.CollectionModified(ctx, uid, "history"); m != before {
				t.Fatalf("commit cut at statement %d moved the collection timestamp", n)
			}
			works(t)
		}
	})

	t.Run("BatchCommitCutAtCOMMIT", func(t *testing.T) {
		batch, _, err := s.CreateBatch(ctx, uid, "forms", records("a", 30), weave.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		tripped := p.CutOn("COMMIT")
		_, err = s.CommitBatch(ctx, uid, "forms", batch, nil, weave.Precondition{})
		<-tripped
		unavailable(t, "commit cut at COMMIT", err)
		if got := count(t, "forms"); got != 0 {
			t.Fatalf("%d records applied", got)
		}
		works(t)
		// The batch is still open: nothing of the commit happened.
		if _, err := s.CommitBatch(ctx, uid, "forms", batch, nil, weave.Precondition{}); err != nil {
			t.Fatal(err)
		}
		if got := count(t, "forms"); got != 30 {
			t.Fatalf("%d records after the second commit, want 30", got)
		}
	})

	t.Run("Post", func(t *testing.T) {
		for n := 1; ; n++ {
			if n > 30 {
				t.Fatal("POST never got through")
			}
			tripped := p.CutOnNth(marker, n)
			_, err := s.PostBSOs(ctx, uid, "bookmarks", records("p", 100), weave.Precondition{})
			if !fired(tripped, err) {
				p.Disarm()
				if err != nil {
					t.Fatalf("POST with no fault: %v", err)
				}
				if got := count(t, "bookmarks"); got != 100 {
					t.Fatalf("after the POST: %d records, want 100", got)
				}
				t.Logf("cut the POST at each of its %d statements", n-1)
				return
			}
			unavailable(t, fmt.Sprintf("POST cut at statement %d", n), err)
			if got := count(t, "bookmarks"); got != 0 {
				t.Fatalf("POST cut at statement %d left %d records", n, got)
			}
			works(t)
		}
	})

	t.Run("ServerDown", func(t *testing.T) {
		p.Refuse()
		start := time.Now()
		_, err := s.PostBSOs(ctx, uid, "prefs", records("d", 5), weave.Precondition{})
		unavailable(t, "POST with the server down", err)
		_, err = s.GetBSOs(ctx, uid, "bookmarks", weave.Query{})
		unavailable(t, "GET with the server down", err)
		unavailable(t, "Ping with the server down", s.Ping(ctx))
		if d := time.Since(start); d > timeout {
			t.Errorf("a refused connection took %v to report", d)
		}
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		works(t)
		if got := count(t, "prefs"); got != 0 {
			t.Fatalf("%d records written while the server was down", got)
		}
	})

	t.Run("ServerHung", func(t *testing.T) {
		p.Stall()
		start := time.Now()
		_, err := s.PostBSOs(ctx, uid, "prefs", records("h", 5), weave.Precondition{})
		d := time.Since(start)
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		unavailable(t, "POST with the server hung", err)
		if d > 2*timeout {
			t.Errorf("a hung server held the call for %v (timeout %v)", d, timeout)
		}
		works(t)
		if got := count(t, "prefs"); got != 0 {
			t.Fatalf("%d records written while the server hung", got)
		}
	})
}

// fired reports whether a proxy trigger fired during a call that returned
// err. The call may return before the proxy has finished cutting every
// connection, so a failed call waits a little for the trigger.
func fired(tripped <-chan struct{}, err error) bool {
	wait := time.Duration(0)
	if err != nil {
		wait = 2 * time.Second
	}
	select {
	case <-tripped:
		return true
	case <-time.After(wait):
		return false
	}
}
