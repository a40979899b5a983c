package storagetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weave-sync/weave"
)

// testConcurrentOneUser has many clients of one user post to two
// collections at once: every acknowledged record must be there with the
// timestamp its write returned, no two writes may share a timestamp, and
// each collection must end at the greatest of its writes, the storage at
// the greatest of all.
func testConcurrentOneUser(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	// Writers of two collections: a write's timestamp must follow every
	// earlier write of the user, whatever its collection.
	colls := [2]string{"history", "bookmarks"}
	const writers, posts = 20, 5
	type ack struct {
		coll string
		ts   weave.Timestamp
		ids  []string
	}
	acks := make(chan ack, writers*posts)
	errs := make(chan error, writers*posts)
	var wg sync.WaitGroup
	for w := range writers {
		c := colls[w%2]
		wg.Go(func() {
			var last weave.Timestamp
			for p := range posts {
				ids := []string{fmt.Sprintf("w%02d-p%d-a", w, p), fmt.Sprintf("w%02d-p%d-b", w, p)}
				ts, err := s.PostBSOs(ctx, uid, c, []weave.Update{upd(ids[0], ids[0]), upd(ids[1], ids[1])}, noPre)
				if err != nil {
					errs <- err
					return
				}
				if ts <= last {
					errs <- fmt.Errorf("writer %d: timestamp %v after %v", w, ts, last)
				}
				last = ts
				acks <- ack{c, ts, ids}
			}
		})
	}
	wg.Wait()
	close(acks)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	byID := map[string]weave.Timestamp{}
	seen := map[weave.Timestamp]bool{}
	maxTS := map[string]weave.Timestamp{}
	var maxAll weave.Timestamp
	for a := range acks {
		if seen[a.ts] {
			t.Fatalf("two writes got timestamp %v", a.ts)
		}
		seen[a.ts] = true
		maxTS[a.coll] = max(maxTS[a.coll], a.ts)
		maxAll = max(maxAll, a.ts)
		for _, id := range a.ids {
			byID[a.coll+"/"+id] = a.ts
		}
	}
	wantTS(t, storageTS(t, s, uid), maxAll, "storage after concurrent writes")
	for _, c := range colls {
		wantTS(t, collTS(t, s, uid, c), maxTS[c], c+" after concurrent writes")
		p := getAll(t, s, uid, c, weave.Query{})
		if len(p.BSOs) != writers/2*posts*2 {
			t.Fatalf("%s: %d records after concurrent writes, want %d", c, len(p.BSOs), writers/2*posts*2)
		}
		for _, b := range p.BSOs {
			if want := byID[c+"/"+b.ID]; want != b.Modified || b.Payload != b.ID {
				t.Fatalf("%s record %s: modified %v payload %q, its write returned %v", c, b.ID, b.Modified, b.Payload, want)
			}
		}
	}
}

// testConcurrentUsers writes to many users at once, mixing every kind of
// write, and checks that each user's data is exactly its own.
func testConcurrentUsers(t *testing.T, s weave.Store) {
	ctx := t.Context()
	const users, rounds = 10, 6
	uids := make([]int64, users)
	for i := range uids {
		uids[i] = newUID()
	}
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for i, uid := range uids {
		wg.Go(func() {
			errs <- func() error {
				var last weave.Timestamp
				for r := range rounds {
					var ts weave.Timestamp
					var err error
					switch r % 3 {
					case 0:
						ts, err = s.PostBSOs(ctx, uid, "bookmarks", []weave.Update{upd(fmt.Sprint("r", r), fmt.Sprint(uid))}, noPre)
					case 1:
						var b string
						if b, _, err = s.CreateBatch(ctx, uid, "bookmarks", []weave.Update{upd(fmt.Sprint("r", r), fmt.Sprint(uid))}, noPre); err == nil {
							ts, err = s.CommitBatch(ctx, uid, "bookmarks", b, nil, noPre)
						}
					case 2:
						ts, err = s.PutBSO(ctx, uid, "tabs", upd(fmt.Sprint("user", i), fmt.Sprint(uid)), noPre)
					}
					if err != nil {
						return err
					}
					if ts <= last {
						return fmt.Errorf("user %d: timestamp %v after %v", uid, ts, last)
					}
					last = ts
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		check(t, err)
	}
	for i, uid := range uids {
		p := getAll(t, s, uid, "bookmarks", weave.Query{})
		if len(p.BSOs) != 4 {
			t.Fatalf("user %d has %d bookmarks, want 4", uid, len(p.BSOs))
		}
		for _, b := range p.BSOs {
			if b.Payload != fmt.Sprint(uid) {
				t.Fatalf("user %d holds %q", uid, b.Payload)
			}
		}
		p = getAll(t, s, uid, "tabs", weave.Query{})
		if len(p.BSOs) != 1 || p.BSOs[0].ID != fmt.Sprint("user", i) {
			t.Fatalf("user %d tabs: %v", uid, recsOf(p.BSOs))
		}
	}
}

func testUserIsolation(t *testing.T, s weave.Store) {
	ctx := t.Context()
	alice, bob := newUID(), newUID()
	ta := post(t, s, alice, "bookmarks", upd("same", "alice"), upd("a", "a"))
	tb := post(t, s, bob, "bookmarks", upd("same", "bob"))
	wantBSO(t, s, alice, "bookmarks", rec{"same", ta, nil, "alice"})
	wantBSO(t, s, bob, "bookmarks", rec{"same", tb, nil, "bob"})
	wantGone(t, s, bob, "bookmarks", "a")
	if n := must(s.CollectionCounts(ctx, bob))(t)["bookmarks"]; n != 1 {
		t.Fatalf("bob counts %d bookmarks", n)
	}
	must(s.DeleteBSO(ctx, bob, "bookmarks", "same", noPre))(t)
	wantBSO(t, s, alice, "bookmarks", rec{"same", ta, nil, "alice"})
	must(s.DeleteStorage(ctx, bob, noPre))(t)
	wantTS(t, storageTS(t, s, alice), ta, "alice after bob's DeleteStorage")
	must(s.DeleteCollection(ctx, alice, "bookmarks", noPre))(t)
	colls, _, err := s.CollectionTimestamps(ctx, bob)
	check(t, err)
	if len(colls) != 0 {
		t.Fatalf("bob's collections: %v", colls)
	}
	_, err = s.DeleteBSOs(ctx, bob, "bookmarks", []string{"a"}, noPre)
	check(t, err)
}

func testLargePayload(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	// 2 MiB of multi-byte UTF-8, near max_record_payload_bytes.
	big := strings.Repeat("Grüße, 世界! ", 2<<20/16)
	ts := put(t, s, uid, "passwords", upd("big", big))
	wantBSO(t, s, uid, "passwords", rec{"big", ts, nil, big})
	if n := must(s.Usage(ctx, uid))(t); n != int64(len(big)) {
		t.Fatalf("usage %d, want %d bytes", n, len(big))
	}
	p := getAll(t, s, uid, "passwords", weave.Query{})
	if len(p.BSOs) != 1 || p.BSOs[0].Payload != big {
		t.Fatal("large payload does not read back through GetBSOs")
	}
	// Every printable ASCII character, and JSON-looking text, survive.
	var ascii strings.Builder
	for ch := byte(' '); ch <= '~'; ch++ {
		ascii.WriteByte(ch)
	}
	ts = put(t, s, uid, "passwords", upd("ascii", ascii.String()+"\n\t\\\""))
	wantBSO(t, s, uid, "passwords", rec{"ascii", ts, nil, ascii.String() + "\n\t\\\""})
}

// testOddIDs uses ids with every kind of printable ASCII that could upset
// SQL text or placeholders, and ids that only a bytewise comparison tells
// apart (case, trailing spaces).
func testOddIDs(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	ids := []string{"?", "$1", "a b", "'; DROP TABLE bsos; --", `"quoted"`, `back\slash`, "%_*", "~", " ", strings.Repeat("x", weave.MaxIDLength), "A", "a", "a ", "a  ", " a", ":", "=", "{}"}
	var us []weave.Update
	for _, id := range ids {
		us = append(us, upd(id, "payload "+id))
	}
	ts := post(t, s, uid, "clients", us...)
	for _, id := range ids {
		wantBSO(t, s, uid, "clients", rec{id, ts, nil, "payload " + id})
	}
	p := getAll(t, s, uid, "clients", weave.Query{IDs: ids[:5]})
	if len(p.BSOs) != 5 {
		t.Fatalf("ids query found %d of 5", len(p.BSOs))
	}
	// Paging through ids that are prefixes of each other and contain ":".
	var got []string
	q := weave.Query{Limit: 2, Sort: weave.SortOldest, IDsOnly: true}
	for {
		p := getAll(t, s, uid, "clients", q)
		for _, b := range p.BSOs {
			got = append(got, b.ID)
		}
		if p.NextOffset == "" {
			break
		}
		q.Offset = p.NextOffset
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("paged ids %q, want %q", got, want)
	}
	must(s.DeleteBSOs(ctx, uid, "clients", ids[:3], noPre))(t)
	must(s.DeleteBSO(ctx, uid, "clients", ids[3], noPre))(t)
	if n := must(s.CollectionCounts(ctx, uid))(t)["clients"]; n != int64(len(ids)-4) {
		t.Fatalf("%d records left, want %d", n, len(ids)-4)
	}
}

func testCollectionNames(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	// Standard, custom, case variants and the longest legal name are all
	// distinct collections.
	names := []string{"bookmarks", "Bookmarks", "custom-" + fmt.Sprint(uid), "a.b_c-d", strings.Repeat("z", 32), "creditcards", "0"}
	want := map[string]weave.Timestamp{}
	for _, n := range names {
		if !weave.ValidCollection(n) {
			t.Fatalf("test bug: %q is not a valid name", n)
		}
		want[n] = put(t, s, uid, n, upd("id", n))
	}
	colls, st, err := s.CollectionTimestamps(ctx, uid)
	check(t, err)
	if !maps.Equal(colls, want) {
		t.Fatalf("CollectionTimestamps %v, want %v", colls, want)
	}
	wantTS(t, st, want["0"], "storage timestamp")
	for _, n := range names {
		wantBSO(t, s, uid, n, rec{"id", want[n], nil, n})
	}
	counts := must(s.CollectionCounts(ctx, uid))(t)
	for _, n := range names {
		if counts[n] != 1 {
			t.Fatalf("CollectionCounts %v", counts)
		}
	}
	// A name another user created is known to this user only once used.
	other := newUID()
	colls, _, err = s.CollectionTimestamps(ctx, other)
	check(t, err)
	if len(colls) != 0 {
		t.Fatalf("new user sees collections %v", colls)
	}
}

func testSortIndexBounds(t *testing.T, s weave.Store) {
	uid := newUID()
	ts := post(t, s, uid, "bookmarks",
		updSort("max", "", weave.MaxSortIndex),
		updSort("min", "", weave.MinSortIndex),
		updSort("zero", "", 0),
		upd("none", ""),
		updSort("neg", "", -1),
	)
	p := getAll(t, s, uid, "bookmarks", weave.Query{Sort: weave.SortIndex})
	want := []rec{
		{"max", ts, ptr(weave.MaxSortIndex), ""},
		{"zero", ts, ptr(0), ""},
		{"neg", ts, ptr(-1), ""},
		{"min", ts, ptr(weave.MinSortIndex), ""},
		{"none", ts, nil, ""},
	}
	wantRecs(t, p.BSOs, want, "index order: records without sortindex last")
	// Paging across the record without sortindex.
	var got []weave.BSO
	q := weave.Query{Sort: weave.SortIndex, Limit: 1}
	for {
		p := getAll(t, s, uid, "bookmarks", q)
		got = append(got, p.BSOs...)
		if p.NextOffset == "" {
			break
		}
		q.Offset = p.NextOffset
	}
	wantRecs(t, got, want, "index order paged one by one")
}

// testIncrementalReads has clients sync one collection the way Firefox
// does, each asking for records newer than the timestamp its last read
// returned, while writers keep adding records. A timestamp that runs ahead
// of the records a read returned would make a client skip records for
// good, so every client must end up with every record.
func testIncrementalReads(t *testing.T, s weave.Store) {
	ctx := t.Context()
	uid := newUID()
	const c = "history"
	const writers, posts, readers = 2, 25, 3
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+readers)
	var written sync.Map
	for w := range writers {
		wg.Go(func() {
			for p := range posts {
				id := fmt.Sprintf("w%d-%02d", w, p)
				if _, err := s.PostBSOs(ctx, uid, c, []weave.Update{upd(id, id)}, noPre); err != nil {
					errs <- err
					return
				}
				written.Store(id, true)
			}
		})
	}
	seen := make([]map[string]bool, readers)
	var rg sync.WaitGroup
	for r := range readers {
		seen[r] = map[string]bool{}
		rg.Go(func() {
			var last weave.Timestamp
			read := func() error {
				p, err := s.GetBSOs(ctx, uid, c, weave.Query{Newer: last})
				if err != nil {
					return err
				}
				if p.Modified < last {
					return fmt.Errorf("reader %d: collection timestamp went back from %v to %v", r, last, p.Modified)
				}
				for _, b := range p.BSOs {
					seen[r][b.ID] = true
				}
				last = p.Modified
				return nil
			}
			for {
				select {
				case <-done:
					if err := read(); err != nil {
						errs <- err
					}
					return
				default:
				}
				if err := read(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	written.Range(func(id, _ any) bool {
		for r := range readers {
			if !seen[r][id.(string)] {
				t.Errorf("reader %d never got record %s", r, id)
			}
		}
		return true
	})
}
