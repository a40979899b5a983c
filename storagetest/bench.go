package storagetest

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weave-sync/weave"
)

// Bench measures the calls that dominate a Sync node's load, so that every
// store reports comparable numbers:
//
//	GetNewerFull1000   GET ?newer=…&full returning 1,000 records of ~500 B
//	GetNewerFull1000Lean  the same read as Sync 1.5 asks for it (Query.Lean)
//	Post100x500B       POST of 100 new records of ~500 B
//	BatchCommit1000    commit of a batch of 1,000 staged records (staging
//	                   not timed)
//	InfoCollections    CollectionTimestamps of a user with 10 collections
//	GetBSO             one record
func Bench(b *testing.B, s weave.Store) {
	payload := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_", 8)[:500]
	records := func(prefix string, n int) []weave.Update {
		us := make([]weave.Update, n)
		for i := range us {
			us[i] = weave.Update{ID: fmt.Sprintf("%s%06d", prefix, i), Payload: weave.Some(payload), SortIndex: weave.Some(int64(i))}
		}
		return us
	}
	fail := func(b *testing.B, err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	// postBench posts n records of new ids at a time, a fresh user every
	// 100 posts.
	postBench := func(b *testing.B, prefix string, n int) {
		ctx := b.Context()
		uid := newUID()
		batches := make([][]weave.Update, 100)
		for i := range batches {
			batches[i] = records(fmt.Sprint(prefix, i, "-"), n)
		}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if i%len(batches) == 0 {
				uid = newUID()
			}
			_, err := s.PostBSOs(ctx, uid, "history", batches[i%len(batches)], noPre)
			fail(b, err)
			i++
		}
	}

	// Ten users syncing at once, each session as Firefox does it: the
	// collection timestamps, meta/global, a read of what changed and an
	// upload of 20 records. One op is one such session.
	b.Run("Mixed10Users", func(b *testing.B) {
		ctx := b.Context()
		var next atomic.Int64
		b.SetParallelism(max(1, (10+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			uid := newUID()
			_, err := s.PutBSO(ctx, uid, "meta", weave.Update{ID: "global", Payload: weave.Some(payload)}, noPre)
			if err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				n := next.Add(1)
				since, err := s.LastModified(ctx, uid)
				if err == nil {
					_, _, err = s.CollectionTimestamps(ctx, uid)
				}
				if err == nil {
					_, err = s.GetBSO(ctx, uid, "meta", "global")
				}
				if err == nil {
					_, err = s.GetBSOs(ctx, uid, "bookmarks", weave.Query{Newer: since})
				}
				if err == nil {
					_, err = s.PostBSOs(ctx, uid, "bookmarks", records(fmt.Sprint("m", n, "-"), 20), noPre)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	// newerFull1000 reads the 1,000 records of a collection newer than a
	// time, past 500 older ones.
	newerFull1000 := func(b *testing.B, lean bool) {
		ctx := b.Context()
		uid := newUID()
		// Older records the read must skip, then the 1,000 it returns.
		for i := range 5 {
			_, err := s.PostBSOs(ctx, uid, "history", records(fmt.Sprint("old", i, "-"), 100), noPre)
			fail(b, err)
		}
		newer, err := s.LastModified(ctx, uid)
		fail(b, err)
		for i := range 10 {
			_, err := s.PostBSOs(ctx, uid, "history", records(fmt.Sprint("new", i, "-"), 100), noPre)
			fail(b, err)
		}
		q := weave.Query{Newer: newer, Lean: lean}
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.GetBSOs(ctx, uid, "history", q)
			fail(b, err)
			if len(p.BSOs) != 1000 {
				b.Fatalf("read %d records", len(p.BSOs))
			}
		}
	}
	// Lean is how Sync 1.5 reads (weave.Query.Lean); both run in one
	// process, so their difference survives a loaded machine.
	for _, lean := range []bool{false, true} {
		name := "GetNewerFull1000"
		if lean {
			name += "Lean"
		}
		b.Run(name, func(b *testing.B) { newerFull1000(b, lean) })
	}

	// New ids every time, as a first sync uploads; a fresh user every
	// 100 posts keeps the collection at a realistic size.
	b.Run("Post100x500B", func(b *testing.B) { postBench(b, "p", 100) })
	// The size of most uploads in the load model (up to 10 records per
	// POST), new ids each time: the write path's per-request cost.
	b.Run("Post10x500B", func(b *testing.B) { postBench(b, "q", 10) })

	b.Run("BatchCommit1000", func(b *testing.B) {
		ctx := b.Context()
		uid := newUID()
		chunks := make([][]weave.Update, 10)
		for i := range chunks {
			chunks[i] = records(fmt.Sprint("b", i, "-"), 100)
		}
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			id, _, err := s.CreateBatch(ctx, uid, "bookmarks", chunks[0], noPre)
			fail(b, err)
			for _, c := range chunks[1:] {
				_, err := s.AppendBatch(ctx, uid, "bookmarks", id, c, noPre)
				fail(b, err)
			}
			b.StartTimer()
			_, err = s.CommitBatch(ctx, uid, "bookmarks", id, nil, noPre)
			fail(b, err)
		}
	})

	b.Run("InfoCollections", func(b *testing.B) {
		ctx := b.Context()
		uid := newUID()
		for _, c := range []string{"bookmarks", "history", "tabs", "forms", "prefs", "passwords", "clients", "crypto", "meta", "addons"} {
			_, err := s.PostBSOs(ctx, uid, c, records("x", 3), noPre)
			fail(b, err)
		}
		b.ReportAllocs()
		for b.Loop() {
			m, _, err := s.CollectionTimestamps(ctx, uid)
			fail(b, err)
			if len(m) != 10 {
				b.Fatalf("%d collections", len(m))
			}
		}
	})

	b.Run("GetBSO", func(b *testing.B) {
		ctx := b.Context()
		uid := newUID()
		_, err := s.PostBSOs(ctx, uid, "bookmarks", records("g", 100), noPre)
		fail(b, err)
		b.ReportAllocs()
		for b.Loop() {
			_, err := s.GetBSO(ctx, uid, "bookmarks", "g000042")
			fail(b, err)
		}
	})
}
