package storagetest

import (
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

// testExpiry writes records with a one-second TTL (and, when the store can
// be built with a short batch lifetime, a short-lived batch), sleeps once
// past every expiry, and checks that expired records are invisible to every
// read, count and usage, behave as absent for writes, and that
// PurgeExpired removes them without changing what reads see.
func testExpiry(t *testing.T, s weave.Store, cfg config) {
	ctx := t.Context()
	uid := newUID()
	const c = "clients"
	start := time.Now()
	t1 := must(s.PostBSOs(ctx, uid, c, []weave.Update{
		{ID: "gone", Payload: weave.Some("gone"), SortIndex: weave.Some[int64](5), TTL: weave.Some[int64](1)},
		{ID: "revived", Payload: weave.Some("old"), SortIndex: weave.Some[int64](3), TTL: weave.Some[int64](1), ParentID: weave.Some("p")},
		{ID: "viapost", Payload: weave.Some("old"), SortIndex: weave.Some[int64](2), TTL: weave.Some[int64](1), PredecessorID: weave.Some("q")},
		{ID: "viabatch", Payload: weave.Some("old"), SortIndex: weave.Some[int64](2), TTL: weave.Some[int64](1), ParentID: weave.Some("p"), PredecessorID: weave.Some("q")},
		updTTL("deleted", "x", 1),
		updTTL("created", "x", 1),
		updTTL("kept", "kept", 3600),
		upd("forever", "forever"),
	}, noPre))(t)
	t2 := post(t, s, uid, "tabs", updTTL("t", "12345", 1))
	b := must(batchID(s.CreateBatch(ctx, uid, "forms", []weave.Update{updTTL("bf", "x", 1), upd("bk", "y")}, noPre)))(t)
	t3 := must(s.CommitBatch(ctx, uid, "forms", b, nil, noPre))(t)
	deadline := t3.Time().Add(time.Second + 50*time.Millisecond)

	var short weave.Store
	var shortBatch string
	if cfg.shortBatches != nil {
		short = cfg.shortBatches(t, time.Second)
		shortBatch = must(batchID(short.CreateBatch(ctx, uid, "prefs", []weave.Update{upd("p", "p")}, noPre)))(t)
		if d := time.Now().Add(time.Second + 50*time.Millisecond); d.After(deadline) {
			deadline = d
		}
	}

	// Just written, the records are visible (unless the machine was too
	// slow for this to be decided: T >= start - 10 ms, expiry = T + 1 s).
	g, err := s.GetBSO(ctx, uid, c, "gone")
	if time.Since(start) < 900*time.Millisecond {
		check(t, err)
		wantTS(t, g.Expires, t1+1000, "expiry of ttl=1")
	}

	time.Sleep(time.Until(deadline))

	// Invisible to every read.
	for _, id := range []string{"gone", "revived", "viapost", "viabatch", "deleted", "created"} {
		wantGone(t, s, uid, c, id)
	}
	wantGone(t, s, uid, "tabs", "t")
	wantGone(t, s, uid, "forms", "bf")
	live := []rec{{"forever", t1, nil, "forever"}, {"kept", t1, nil, "kept"}}
	verify := func(when string) {
		t.Helper()
		wantRecs(t, getAll(t, s, uid, c, weave.Query{Sort: weave.SortOldest}).BSOs, live, when+": GetBSOs")
		wantRecs(t, getAll(t, s, uid, c, weave.Query{Newer: t1 - 10, Sort: weave.SortOldest}).BSOs, live, when+": GetBSOs newer")
		wantRecs(t, getAll(t, s, uid, c, weave.Query{IDs: []string{"gone", "kept"}}).BSOs, live[1:], when+": GetBSOs ids")
		p := getAll(t, s, uid, c, weave.Query{Limit: 1, Sort: weave.SortIndex})
		if len(p.BSOs) != 1 || p.NextOffset == "" {
			t.Fatalf("%s: first page of 1: %v", when, recsOf(p.BSOs))
		}
		for _, q := range []weave.Query{{CountOnly: true}, {CountOnly: true, Limit: 1}, {CountOnly: true, Limit: 2}, {CountOnly: true, Limit: 3}} {
			want := 2
			if q.Limit > 0 {
				want = min(want, q.Limit)
			}
			if p := getAll(t, s, uid, c, q); p.Count != want || (p.NextOffset != "") != (q.Limit == 1) {
				t.Fatalf("%s: count %+v: %d next %q", when, q, p.Count, p.NextOffset)
			}
		}
		if p := getAll(t, s, uid, "tabs", weave.Query{CountOnly: true}); p.Count != 0 || p.Modified != t2 {
			t.Fatalf("%s: count of a collection of expired records: %d at %v", when, p.Count, p.Modified)
		}
		if p = getAll(t, s, uid, "tabs", weave.Query{}); len(p.BSOs) != 0 || p.Modified != t2 {
			t.Fatalf("%s: collection of expired records reads %v at %v", when, recsOf(p.BSOs), p.Modified)
		}
		counts := must(s.CollectionCounts(ctx, uid))(t)
		if counts[c] != 2 || counts["forms"] != 1 || counts["tabs"] != 0 {
			t.Fatalf("%s: counts %v", when, counts)
		}
		usage := must(s.CollectionUsage(ctx, uid))(t)
		if usage[c] != 11 || usage["forms"] != 1 || usage["tabs"] != 0 {
			t.Fatalf("%s: usage %v", when, usage)
		}
		if n := must(s.Usage(ctx, uid))(t); n != 12 {
			t.Fatalf("%s: Usage %d, want 12", when, n)
		}
		// Expiry changes no timestamp.
		wantTS(t, collTS(t, s, uid, "tabs"), t2, when+": timestamp of the expired collection")
	}
	verify("after expiry")

	// Writes see expired records as absent.
	_, err = s.DeleteBSO(ctx, uid, c, "deleted", noPre)
	wantErr(t, err, weave.ErrNotFound, "DeleteBSO of an expired record")
	tc := must(s.PutBSO(ctx, uid, c, upd("created", "new"), since(0)))(t)
	wantBSO(t, s, uid, c, rec{"created", tc, nil, "new"})
	// A partial update of an expired record makes a new record: no payload,
	// sortindex, expiry, parentid or predecessorid survives from the old one.
	tr := must(s.PutBSO(ctx, uid, c, weave.Update{ID: "revived", SortIndex: weave.Some[int64](8)}, noPre))(t)
	r := wantBSO(t, s, uid, c, rec{"revived", tr, ptr(8), ""})
	wantTS(t, r.Expires, 0, "expiry of a revived record")
	noIDs1 := func(b weave.BSO, what string) {
		t.Helper()
		if b.ParentID != "" || b.PredecessorID != "" {
			t.Fatalf("%s: parentid %q, predecessorid %q survived expiry", what, b.ParentID, b.PredecessorID)
		}
	}
	noIDs1(r, "revived by PutBSO")
	tp := must(s.PostBSOs(ctx, uid, c, []weave.Update{{ID: "viapost", TTL: weave.Some[int64](60)}}, noPre))(t)
	r = wantBSO(t, s, uid, c, rec{"viapost", tp, nil, ""})
	wantTS(t, r.Expires, tp+60_000, "expiry of a record revived by PostBSOs")
	noIDs1(r, "revived by PostBSOs")
	b = must(batchID(s.CreateBatch(ctx, uid, c, []weave.Update{{ID: "viabatch", SortIndex: weave.Some[int64](1)}}, noPre)))(t)
	tb := must(s.CommitBatch(ctx, uid, c, b, nil, noPre))(t)
	noIDs1(wantBSO(t, s, uid, c, rec{"viabatch", tb, ptr(1), ""}), "revived by a batch")
	live = []rec{{"forever", t1, nil, "forever"}, {"kept", t1, nil, "kept"}, {"created", tc, nil, "new"},
		{"revived", tr, ptr(8), ""}, {"viapost", tp, nil, ""}, {"viabatch", tb, ptr(1), ""}}
	if n := must(s.Usage(ctx, uid))(t); n != 15 {
		t.Fatalf("Usage after revivals %d, want 15", n)
	}

	if short != nil {
		_, err := short.AppendBatch(ctx, uid, "prefs", shortBatch, []weave.Update{upd("q", "q")}, noPre)
		wantErr(t, err, weave.ErrBatchNotFound, "append to an expired batch")
		_, err = short.CommitBatch(ctx, uid, "prefs", shortBatch, nil, noPre)
		wantErr(t, err, weave.ErrBatchNotFound, "commit of an expired batch")
		wantGone(t, s, uid, "prefs", "p")
	}

	// Purging removes rows nobody can see; stores sharing the database may
	// purge at the same time, so only upper bounds hold for the counts.
	n1, err := s.PurgeExpired(ctx, 1)
	check(t, err)
	if n1 > 1 {
		t.Fatalf("PurgeExpired(1) removed %d rows", n1)
	}
	_, err = s.PurgeExpired(ctx, 0)
	check(t, err)
	wantRecs(t, getAll(t, s, uid, c, weave.Query{Sort: weave.SortOldest}).BSOs, live, "after purge")
	if p := getAll(t, s, uid, "tabs", weave.Query{}); len(p.BSOs) != 0 || p.Modified != t2 {
		t.Fatalf("after purge, collection of expired records reads %v at %v", recsOf(p.BSOs), p.Modified)
	}
	// A purged record's id is free.
	tg := must(s.PutBSO(ctx, uid, c, weave.Update{ID: "gone", SortIndex: weave.Some[int64](1)}, since(0)))(t)
	wantBSO(t, s, uid, c, rec{"gone", tg, ptr(1), ""})
}
