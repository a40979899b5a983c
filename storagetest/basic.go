package storagetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

func testEmptyUser(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	wantTS(t, storageTS(t, s, uid), 0, "LastModified")
	colls, ts, err := s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if len(colls) != 0 || ts != 0 {
		t.Fatalf("CollectionTimestamps of a new user: %v, %v", colls, ts)
	}
	wantAppended(t, s, uid, colls, ts)
	counts := must(s.CollectionCounts(ctx, uid))(t)
	usage := must(s.CollectionUsage(ctx, uid))(t)
	if len(counts) != 0 || len(usage) != 0 {
		t.Fatalf("counts %v, usage %v of a new user", counts, usage)
	}
	if n := must(s.Usage(ctx, uid))(t); n != 0 {
		t.Fatalf("Usage of a new user: %d", n)
	}
	for _, coll := range []string{"bookmarks", "never-used-collection"} {
		wantTS(t, collTS(t, s, uid, coll), 0, "CollectionModified "+coll)
		p := getAll(t, s, uid, coll, weave.Query{})
		if len(p.BSOs) != 0 || p.Modified != 0 || p.NextOffset != "" {
			t.Fatalf("GetBSOs %s of a new user: %+v", coll, p)
		}
		p = getAll(t, s, uid, coll, weave.Query{Limit: 10, IDs: []string{"a"}})
		if len(p.BSOs) != 0 || p.Modified != 0 || p.NextOffset != "" {
			t.Fatalf("GetBSOs %s ids=a of a new user: %+v", coll, p)
		}
		wantGone(t, s, uid, coll, "a")
		_, err = s.DeleteBSO(ctx, uid, coll, "a", noPre)
		wantErr(t, err, weave.ErrNotFound, "DeleteBSO of a new user")
		ts, err := s.DeleteBSOs(ctx, uid, coll, []string{"a"}, noPre)
		check(t, err)
		wantTS(t, ts, 0, "DeleteBSOs of a new user")
		ts, err = s.DeleteCollection(ctx, uid, coll, noPre)
		check(t, err)
		wantTS(t, ts, 0, "DeleteCollection of a new user")
	}
	// None of that created anything.
	colls, ts, err = s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if len(colls) != 0 || ts != 0 {
		t.Fatalf("CollectionTimestamps after reads and no-op deletes: %v, %v", colls, ts)
	}
}

// wantAppended checks that a weave.CollectionTimestampsAppender appends
// what CollectionTimestamps gave (colls, storage), after what dst held.
func wantAppended(t *testing.T, s weave.Store, uid int64, colls map[string]weave.Timestamp, storage weave.Timestamp) {
	t.Helper()
	a, ok := s.(weave.CollectionTimestampsAppender)
	if !ok {
		return
	}
	before := weave.CollectionTimestamp{Name: "before", Modified: 1}
	got, ts, err := a.AppendCollectionTimestamps(t.Context(), uid, []weave.CollectionTimestamp{before})
	check(t, err)
	wantTS(t, ts, storage, "AppendCollectionTimestamps storage")
	if len(got) == 0 || got[0] != before {
		t.Fatalf("AppendCollectionTimestamps dropped what dst held: %v", got)
	}
	m := map[string]weave.Timestamp{}
	for _, c := range got[1:] {
		if _, dup := m[c.Name]; dup {
			t.Fatalf("AppendCollectionTimestamps: %s twice in %v", c.Name, got)
		}
		m[c.Name] = c.Modified
	}
	if !maps.Equal(m, colls) {
		t.Fatalf("AppendCollectionTimestamps %v, CollectionTimestamps %v", got[1:], colls)
	}
}

func testPutGet(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	t1 := must(s.PutBSO(ctx, uid, "bookmarks", updSort("b1", `{"x":1}`, 42), noPre))(t)
	wantAfter(t, 0, t1, "PutBSO")
	b := wantBSO(t, s, uid, "bookmarks", rec{"b1", t1, ptr(42), `{"x":1}`})
	if b.Expires != 0 {
		t.Fatalf("record without ttl has Expires %v", b.Expires)
	}
	wantTS(t, collTS(t, s, uid, "bookmarks"), t1, "collection timestamp")
	wantTS(t, storageTS(t, s, uid), t1, "storage timestamp")
	colls, ts, err := s.CollectionTimestamps(ctx, uid)
	check(t, err)
	wantTS(t, ts, t1, "CollectionTimestamps storage")
	if !maps.Equal(colls, map[string]weave.Timestamp{"bookmarks": t1}) {
		t.Fatalf("CollectionTimestamps: %v", colls)
	}

	// A second collection moves the storage, not the first collection.
	t2 := put(t, s, uid, "history", upd("h1", "h"))
	wantAfter(t, t1, t2, "second PutBSO")
	colls, ts, err = s.CollectionTimestamps(ctx, uid)
	check(t, err)
	wantTS(t, ts, t2, "storage after second collection")
	if !maps.Equal(colls, map[string]weave.Timestamp{"bookmarks": t1, "history": t2}) {
		t.Fatalf("CollectionTimestamps: %v", colls)
	}
	wantAppended(t, s, uid, colls, ts)

	// An update replaces what it sets.
	t3 := put(t, s, uid, "bookmarks", updSort("b1", "second", 7))
	wantAfter(t, t2, t3, "update")
	wantBSO(t, s, uid, "bookmarks", rec{"b1", t3, ptr(7), "second"})

	// The page carries the collection timestamp.
	p := getAll(t, s, uid, "bookmarks", weave.Query{})
	wantTS(t, p.Modified, t3, "page timestamp")
	wantRecs(t, p.BSOs, []rec{{"b1", t3, ptr(7), "second"}}, "GetBSOs")

	// TTLs become absolute expiries from the write.
	t4 := put(t, s, uid, "bookmarks", updTTL("b2", "p", 3600))
	b = wantBSO(t, s, uid, "bookmarks", rec{"b2", t4, nil, "p"})
	if b.Expires != t4+3600_000 {
		t.Fatalf("ttl 3600 written at %d: Expires %d, want %d", int64(t4), int64(b.Expires), int64(t4)+3600_000)
	}
	p = getAll(t, s, uid, "bookmarks", weave.Query{IDs: []string{"b2"}})
	if len(p.BSOs) != 1 || p.BSOs[0].Expires != t4+3600_000 {
		t.Fatalf("GetBSOs does not report the expiry: %+v", p.BSOs)
	}
}

func testTimestampFormat(t *testing.T, s weave.Store) {
	uid := newUID()
	before := weave.TimestampAt(time.Now())
	ts := put(t, s, uid, "meta", upd("global", "{}"))
	after := weave.TimestampAt(time.Now())
	if ts%10 != 0 {
		t.Fatalf("timestamp %d is not a multiple of 10 ms", int64(ts))
	}
	// T may run ahead of the clock when a user writes faster than one
	// write per 10 ms, never behind it; allow for slow machines.
	if ts < before || ts > after.Add(time.Minute) {
		t.Fatalf("timestamp %v is not near the clock (%v .. %v)", ts, before, after)
	}
	if got := ts.String(); len(got) < 4 || got[len(got)-3] != '.' {
		t.Fatalf("timestamp renders as %q", got)
	}
}

// testMonotonicTimestamps runs every kind of write back to back for one
// user: each timestamp must exceed the one before, and the storage must end
// at the last.
func testMonotonicTimestamps(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	var last weave.Timestamp
	step := func(what string, ts weave.Timestamp, err error) {
		t.Helper()
		check(t, err)
		wantAfter(t, last, ts, what)
		last = ts
		wantTS(t, storageTS(t, s, uid), ts, what+": storage timestamp")
	}
	for i := range 5 {
		ts, err := s.PutBSO(ctx, uid, "tabs", upd("t", "x"), noPre)
		step("PutBSO", ts, err)
		ts, err = s.PostBSOs(ctx, uid, "forms", []weave.Update{upd("f1", "1"), upd("f2", "2")}, noPre)
		step("PostBSOs", ts, err)
		ts, err = s.DeleteBSO(ctx, uid, "forms", "f1", noPre)
		step("DeleteBSO", ts, err)
		ts, err = s.DeleteBSOs(ctx, uid, "forms", []string{"f2"}, noPre)
		step("DeleteBSOs", ts, err)
		id := must(batchID(s.CreateBatch(ctx, uid, "prefs", []weave.Update{upd("p", "1")}, noPre)))(t)
		wantTS(t, storageTS(t, s, uid), last, "CreateBatch must not move the storage timestamp")
		must(s.AppendBatch(ctx, uid, "prefs", id, []weave.Update{upd("q", "1")}, noPre))(t)
		wantTS(t, storageTS(t, s, uid), last, "AppendBatch must not move the storage timestamp")
		ts, err = s.CommitBatch(ctx, uid, "prefs", id, nil, noPre)
		step("CommitBatch", ts, err)
		ts, err = s.DeleteCollection(ctx, uid, "tabs", noPre)
		step("DeleteCollection", ts, err)
		if i%2 == 1 {
			ts, err = s.DeleteStorage(ctx, uid, noPre)
			step("DeleteStorage", ts, err)
		}
	}
}

// testManyWritesOneTick writes far faster than one write per 10 ms: no
// write may fail or share a timestamp.
func testManyWritesOneTick(t *testing.T, s weave.Store) {
	uid := newUID()
	var last weave.Timestamp
	for i := range 40 {
		var ts weave.Timestamp
		if i%2 == 0 {
			ts = put(t, s, uid, "clients", upd("c", "x"))
		} else {
			ts = post(t, s, uid, "clients", upd("c", "y"), upd("d", "z"))
		}
		wantAfter(t, last, ts, "write in a burst")
		last = ts
	}
	wantTS(t, collTS(t, s, uid, "clients"), last, "collection after burst")
	wantBSO(t, s, uid, "clients", rec{"d", last, nil, "z"})
}

// testNoRunAhead: back-to-back writes of one user get increasing
// timestamps that never run ahead of the clock (the suite's stores run on
// real time): 50 PUTs once put T about 450 ms ahead. A TTL counts from the
// write's time, so it too stays within the clock.
func testNoRunAhead(t *testing.T, s weave.Store) {
	uid := newUID()
	var last weave.Timestamp
	for i := range 50 {
		u := upd("r", fmt.Sprint(i))
		u.TTL = weave.Some[int64](60)
		var ts weave.Timestamp
		switch i % 3 {
		case 0:
			ts = put(t, s, uid, "tabs", u)
		case 1:
			ts = post(t, s, uid, "tabs", u, upd("s", "x"))
		default:
			id := must(batchID(s.CreateBatch(t.Context(), uid, "tabs", []weave.Update{u}, noPre)))(t)
			ts = must(s.CommitBatch(t.Context(), uid, "tabs", id, nil, noPre))(t)
		}
		now := weave.TimestampAt(time.Now())
		wantAfter(t, last, ts, "back-to-back write")
		if ts > now {
			t.Fatalf("write %d: timestamp %s is %d ms ahead of the clock", i, ts, ts-now)
		}
		b := must(s.GetBSO(t.Context(), uid, "tabs", "r"))(t)
		if b.Expires-60_000 > now {
			t.Fatalf("write %d: ttl counts from %s, %d ms ahead of the clock", i, b.Expires-60_000, b.Expires-60_000-now)
		}
		last = ts
	}
}

func testPartialUpdates(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "bookmarks"
	full := weave.Update{ID: "r", Payload: weave.Some("p1"), SortIndex: weave.Some[int64](5), TTL: weave.Some[int64](3600)}
	t1 := put(t, s, uid, c, full)
	b := wantBSO(t, s, uid, c, rec{"r", t1, ptr(5), "p1"})
	exp := b.Expires

	// sortindex only: the record's modified time stays, the collection's moves.
	t2 := put(t, s, uid, c, weave.Update{ID: "r", SortIndex: weave.Some[int64](6)})
	wantAfter(t, t1, t2, "sortindex update")
	b = wantBSO(t, s, uid, c, rec{"r", t1, ptr(6), "p1"})
	wantTS(t, b.Expires, exp, "expiry after sortindex update")
	wantTS(t, collTS(t, s, uid, c), t2, "collection after sortindex update")
	// A newer read sees no change to the record.
	if p := getAll(t, s, uid, c, weave.Query{Newer: t1}); len(p.BSOs) != 0 {
		t.Fatalf("sortindex-only update changed the record's modified time: %v", recsOf(p.BSOs))
	}

	// ttl only: the expiry moves from the new write, nothing else.
	t3 := put(t, s, uid, c, weave.Update{ID: "r", TTL: weave.Some[int64](7200)})
	b = wantBSO(t, s, uid, c, rec{"r", t1, ptr(6), "p1"})
	wantTS(t, b.Expires, t3+7200_000, "expiry after ttl update")

	// payload only: modified moves, sortindex and expiry stay.
	t4 := put(t, s, uid, c, weave.Update{ID: "r", Payload: weave.Some("p2")})
	b = wantBSO(t, s, uid, c, rec{"r", t4, ptr(6), "p2"})
	wantTS(t, b.Expires, t3+7200_000, "expiry after payload update")

	// Nothing at all: the record stays, the collection moves.
	t5 := put(t, s, uid, c, weave.Update{ID: "r"})
	wantAfter(t, t4, t5, "empty update")
	wantBSO(t, s, uid, c, rec{"r", t4, ptr(6), "p2"})
	wantTS(t, collTS(t, s, uid, c), t5, "collection after empty update")

	// A new record from a partial update: defaults, modified = T.
	t6 := put(t, s, uid, c, weave.Update{ID: "n1", SortIndex: weave.Some[int64](3)})
	b = wantBSO(t, s, uid, c, rec{"n1", t6, ptr(3), ""})
	wantTS(t, b.Expires, 0, "new record without ttl")
	t7 := put(t, s, uid, c, weave.Update{ID: "n2"})
	wantBSO(t, s, uid, c, rec{"n2", t7, nil, ""})
	t8 := put(t, s, uid, c, weave.Update{ID: "n3", TTL: weave.Some[int64](60)})
	b = wantBSO(t, s, uid, c, rec{"n3", t8, nil, ""})
	wantTS(t, b.Expires, t8+60_000, "new record with ttl only")

	// The same through PostBSOs.
	t9 := must(s.PostBSOs(ctx, uid, c, []weave.Update{
		{ID: "r", SortIndex: weave.Some[int64](9)},
		{ID: "n1", Payload: weave.Some("now with payload")},
		{ID: "n4", TTL: weave.Some[int64](60)},
	}, noPre))(t)
	wantBSO(t, s, uid, c, rec{"r", t4, ptr(9), "p2"})
	wantBSO(t, s, uid, c, rec{"n1", t9, ptr(3), "now with payload"})
	wantBSO(t, s, uid, c, rec{"n4", t9, nil, ""})
}

func testNullResets(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "forms"
	t1 := put(t, s, uid, c, weave.Update{ID: "r", Payload: weave.Some("p"), SortIndex: weave.Some[int64](5), TTL: weave.Some[int64](3600)})

	// null sortindex clears it; the record's modified time stays.
	put(t, s, uid, c, weave.Update{ID: "r", SortIndex: null[int64]()})
	wantBSO(t, s, uid, c, rec{"r", t1, nil, "p"})

	// null ttl: never expires.
	put(t, s, uid, c, weave.Update{ID: "r", TTL: null[int64]()})
	b := wantBSO(t, s, uid, c, rec{"r", t1, nil, "p"})
	wantTS(t, b.Expires, 0, "expiry after null ttl")

	// null payload: "" and a new modified time.
	t4 := put(t, s, uid, c, weave.Update{ID: "r", Payload: null[string]()})
	wantBSO(t, s, uid, c, rec{"r", t4, nil, ""})

	// nulls on a new record are the defaults.
	t5 := must(s.PostBSOs(ctx, uid, c, []weave.Update{{ID: "n", Payload: null[string](), SortIndex: null[int64](), TTL: null[int64]()}}, noPre))(t)
	b = wantBSO(t, s, uid, c, rec{"n", t5, nil, ""})
	wantTS(t, b.Expires, 0, "expiry of new record with null ttl")
}

func testPostMixed(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "history"
	t1 := post(t, s, uid, c, updSort("a", "a1", 1), upd("b", "b1"), updTTL("c", "c1", 3600))
	for _, r := range []rec{{"a", t1, ptr(1), "a1"}, {"b", t1, nil, "b1"}, {"c", t1, nil, "c1"}} {
		wantBSO(t, s, uid, c, r)
	}
	// Mixed shapes, existing and new records, one timestamp.
	t2 := must(s.PostBSOs(ctx, uid, c, []weave.Update{
		{ID: "a", SortIndex: weave.Some[int64](2)},
		upd("b", "b2"),
		{ID: "c", TTL: null[int64]()},
		updSort("d", "d1", 4),
		{ID: "e"},
	}, noPre))(t)
	wantAfter(t, t1, t2, "second post")
	want := []rec{{"a", t1, ptr(2), "a1"}, {"b", t2, nil, "b2"}, {"c", t1, nil, "c1"}, {"d", t2, ptr(4), "d1"}, {"e", t2, nil, ""}}
	wantRecs(t, getAll(t, s, uid, c, weave.Query{Sort: weave.SortOldest}).BSOs, order(want, weave.SortOldest), "after mixed post")
	wantTS(t, collTS(t, s, uid, c), t2, "collection timestamp")

	// An empty post still counts as a write of the collection.
	t3 := post(t, s, uid, c)
	wantAfter(t, t2, t3, "empty post")
	wantTS(t, collTS(t, s, uid, c), t3, "collection after empty post")
	t4 := post(t, s, uid, "addons")
	wantTS(t, collTS(t, s, uid, "addons"), t4, "new collection from empty post")

	// 250 records in one post (beyond any per-statement chunking).
	var us []weave.Update
	for i := range 250 {
		us = append(us, updSort(fmt.Sprintf("bulk%03d", i), "x", int64(i)))
	}
	t5 := post(t, s, uid, "bulk", us...)
	p := getAll(t, s, uid, "bulk", weave.Query{Sort: weave.SortIndex})
	if len(p.BSOs) != 250 || p.BSOs[0].ID != "bulk249" || p.BSOs[249].ID != "bulk000" || p.BSOs[0].Modified != t5 {
		t.Fatalf("bulk post read back %d records", len(p.BSOs))
	}
}

func testPing(t *testing.T, s weave.Store) {
	check(t, s.Ping(t.Context()))
}
