package storagetest

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/weave-sync/weave"
)

// quota is a precondition with a quota of n payload bytes.
func quota(n int64) weave.Precondition {
	return weave.Precondition{Quota: &weave.Quota{Bytes: n}}
}

// wantOverQuota checks for an *weave.OverQuotaError with the given room
// left.
func wantOverQuota(t *testing.T, err error, left int64, what string) {
	t.Helper()
	var oq *weave.OverQuotaError
	if !errors.As(err, &oq) || !errors.Is(err, weave.ErrOverQuota) {
		t.Fatalf("%s: got error %v, want an over-quota error", what, err)
	}
	if oq.Left != left {
		t.Fatalf("%s: over quota with %d bytes left, want %d", what, oq.Left, left)
	}
}

// wantLeft checks the room a successful write reported in its quota.
func wantLeft(t *testing.T, pre weave.Precondition, left int64, what string) {
	t.Helper()
	if pre.Quota.Left != left {
		t.Fatalf("%s: %d bytes left, want %d", what, pre.Quota.Left, left)
	}
}

func payload(n int) string { return strings.Repeat("q", n) }

// testQuota: a write given a quota fails with an *OverQuotaError, having
// written nothing, when the user's live payload bytes after it would reach
// the quota (staging counts the bytes it stages); a successful write
// reports the room left.
func testQuota(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "bookmarks"

	pre := quota(3000)
	t1 := must(s.PutBSO(ctx, uid, c, upd("a", payload(1000)), pre))(t)
	wantLeft(t, pre, 2000, "PutBSO under the quota")

	// Writes that would reach the quota change nothing.
	_, err := s.PutBSO(ctx, uid, c, upd("b", payload(2000)), quota(3000))
	wantOverQuota(t, err, 0, "PutBSO reaching the quota")
	_, err = s.PostBSOs(ctx, uid, c, []weave.Update{upd("b", payload(1500)), upd("c", payload(501))}, quota(3000))
	wantOverQuota(t, err, -1, "PostBSOs over the quota")
	wantGone(t, s, uid, c, "b")
	wantGone(t, s, uid, c, "c")
	wantTS(t, collTS(t, s, uid, c), t1, "collection after refused writes")
	if n := must(s.Usage(ctx, uid))(t); n != 1000 {
		t.Fatalf("usage after refused writes: %d, want 1000", n)
	}

	// A write that replaces a payload counts what it leaves, not what it
	// brings: the user stays under the quota.
	pre = quota(3000)
	must(s.PutBSO(ctx, uid, c, upd("a", payload(1900)), pre))(t)
	wantLeft(t, pre, 1100, "PutBSO replacing a payload")
	pre = quota(3000)
	ta := must(s.PostBSOs(ctx, uid, c, []weave.Update{upd("a", payload(1000)), upd("b", payload(900))}, pre))(t)
	wantLeft(t, pre, 1100, "PostBSOs replacing a payload")

	// Staging counts the live payload bytes and the bytes it stages.
	_, _, err = s.CreateBatch(ctx, uid, c, []weave.Update{upd("s1", payload(1100))}, quota(3000))
	wantOverQuota(t, err, 0, "CreateBatch reaching the quota")
	pre = quota(3000)
	batch := must(batchID(s.CreateBatch(ctx, uid, c, []weave.Update{upd("s1", payload(600))}, pre)))(t)
	wantLeft(t, pre, 500, "CreateBatch under the quota")
	_, err = s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("s2", payload(1200))}, quota(3000))
	wantOverQuota(t, err, -100, "AppendBatch over the quota")
	pre = quota(3000)
	must(s.AppendBatch(ctx, uid, c, batch, []weave.Update{upd("s2", payload(400))}, pre))(t)
	wantLeft(t, pre, 700, "AppendBatch under the quota")

	// The commit counts every staged record: 1900 live + 1000 staged + 100.
	before := collTS(t, s, uid, c)
	_, err = s.CommitBatch(ctx, uid, c, batch, []weave.Update{upd("s3", payload(100))}, quota(3000))
	wantOverQuota(t, err, 0, "CommitBatch reaching the quota")
	wantGone(t, s, uid, c, "s1")
	wantTS(t, collTS(t, s, uid, c), before, "collection after a refused commit")
	// The refused commit left the batch open; with room, it commits.
	pre = quota(3001)
	t2 := must(s.CommitBatch(ctx, uid, c, batch, []weave.Update{upd("s3", payload(100))}, pre))(t)
	wantLeft(t, pre, 1, "CommitBatch under the quota")
	wantAfter(t, before, t2, "CommitBatch")
	if n := must(s.Usage(ctx, uid))(t); n != 3000 {
		t.Fatalf("usage after the commit: %d, want 3000", n)
	}

	// At the quota only deletions go through (they ignore it), and writes
	// that bring no payload are refused too.
	_, err = s.PutBSO(ctx, uid, c, weave.Update{ID: "a", SortIndex: weave.Some[int64](3)}, quota(3000))
	wantOverQuota(t, err, 0, "PutBSO of a sortindex at the quota")
	_, _, err = s.CreateBatch(ctx, uid, c, nil, quota(3000))
	wantOverQuota(t, err, 0, "CreateBatch of nothing at the quota")
	must(s.DeleteBSO(ctx, uid, c, "s1", quota(3000)))(t)
	must(s.DeleteBSOs(ctx, uid, c, []string{"s2"}, quota(10)))(t)
	pre = quota(3000)
	must(s.PutBSO(ctx, uid, c, upd("d", payload(600)), pre))(t)
	wantLeft(t, pre, 400, "PutBSO after deletions")

	// Without a quota, or with a zero one, nothing is enforced.
	must(s.PutBSO(ctx, uid, c, upd("e", payload(5000)), noPre))(t)
	must(s.PostBSOs(ctx, uid, c, []weave.Update{upd("f", payload(10))}, quota(0)))(t)
	must(s.PutBSO(ctx, uid, "tabs", upd("t", payload(10)), weave.Precondition{Quota: &weave.Quota{}}))(t)

	// A quota is per user.
	other := newUID()
	pre = quota(3000)
	must(s.PutBSO(ctx, other, c, upd("a", payload(1000)), pre))(t)
	wantLeft(t, pre, 2000, "another user's PutBSO")

	// A failed X-If-Unmodified-Since wins over the quota.
	_, err = s.PutBSO(ctx, uid, c, upd("a", payload(10)), weave.Precondition{IfUnmodifiedSince: &t1, Quota: &weave.Quota{Bytes: 1}})
	wantPrecondition(t, err, ta, "PutBSO with a stale timestamp over the quota")
}

// testQuotaConcurrent: concurrent writes of one user cannot overrun the
// quota together, as checks made before the writes would let them.
func testQuotaConcurrent(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const writers = 10
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			u := upd("r"+string(rune('a'+i)), payload(1000))
			if i%2 == 0 {
				_, errs[i] = s.PutBSO(ctx, uid, "history", u, quota(5500))
			} else {
				_, errs[i] = s.PostBSOs(ctx, uid, "history", []weave.Update{u}, quota(5500))
			}
		})
	}
	wg.Wait()
	var ok, over int64
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, weave.ErrOverQuota):
			over++
		case errors.Is(err, weave.ErrConflict):
			// Contention the store gave up on: not written.
		default:
			t.Fatal(err)
		}
	}
	if n := must(s.Usage(ctx, uid))(t); ok > 5 || n != ok*1000 || ok+over == writers && ok != 5 {
		t.Fatalf("%d writes succeeded, %d over quota, usage %d: want 5 of 1000 bytes under a quota of 5500", ok, over, n)
	}
}
