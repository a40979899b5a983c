package sqlstore

import (
	"errors"
	"testing"

	"github.com/weave-sync/weave"
)

func TestUpsertClauses(t *testing.T) {
	key := []string{"uid", "collection_id"}
	for _, tc := range []struct{ got, want string }{
		{OnConflictUpsert(key, []string{"modified", "payload"}), " ON CONFLICT (uid, collection_id) DO UPDATE SET modified = excluded.modified, payload = excluded.payload"},
		{OnConflictUpsert(key, nil), " ON CONFLICT (uid, collection_id) DO NOTHING"},
		{DuplicateKeyUpsert(key, []string{"modified", "payload"}), " ON DUPLICATE KEY UPDATE modified = VALUES(modified), payload = VALUES(payload)"},
		{DuplicateKeyUpsert(key, nil), " ON DUPLICATE KEY UPDATE uid = uid"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
}

func TestOffsets(t *testing.T) {
	si := int64(-5)
	for _, tc := range []struct {
		sort weave.Sort
		b    weave.BSO
		key  int64
	}{
		{weave.SortNewest, weave.BSO{ID: "a:b c", Modified: 1700000000120}, 1700000000120},
		{weave.SortOldest, weave.BSO{ID: "~", Modified: 10}, 10},
		{weave.SortIndex, weave.BSO{ID: "x", Modified: 10, SortIndex: &si}, -5},
		{weave.SortIndex, weave.BSO{ID: "x", Modified: 10}, noSortIndex},
	} {
		tok := encodeOffset(tc.sort, &tc.b)
		off, err := decodeOffset(tok, weave.Query{Sort: tc.sort})
		if err != nil || off.key != tc.key || off.id != tc.b.ID {
			t.Errorf("%d %+v: token %q decodes to %+v, %v", tc.sort, tc.b, tok, off, err)
		}
		for _, other := range []weave.Sort{weave.SortNewest, weave.SortOldest, weave.SortIndex} {
			if other == tc.sort {
				continue
			}
			if _, err := decodeOffset(tok, weave.Query{Sort: other}); !errors.Is(err, weave.ErrInvalidOffset) {
				t.Errorf("token %q of sort %d accepted for sort %d", tok, tc.sort, other)
			}
		}
	}
	tok := encodeOffset(weave.SortNewest, &weave.BSO{ID: "a", Modified: 500})
	for _, q := range []weave.Query{{Newer: 500}, {Newer: 600}, {Older: 500}, {Older: 100}} {
		if _, err := decodeOffset(tok, q); !errors.Is(err, weave.ErrInvalidOffset) {
			t.Errorf("offset at 500 accepted for %+v", q)
		}
	}
	if _, err := decodeOffset(tok, weave.Query{Newer: 490, Older: 510}); err != nil {
		t.Errorf("offset at 500 refused within (490, 510): %v", err)
	}
}

func TestBatchIDs(t *testing.T) {
	for _, id := range []int64{0, 1, 1<<63 - 1, 1536198976921} {
		s := encodeBatchID(id)
		if got, ok := decodeBatchID(s); !ok || got != id {
			t.Errorf("batch id %d: %q decodes to %d, %v", id, s, got, ok)
		}
	}
	for _, bad := range []string{"", "true", "AAAAAAAAAA", "AAAAAAAAAAAA", "__________8", "AAAAAAAAAA=", "/AAAAAAAAAA"} {
		if id, ok := decodeBatchID(bad); ok {
			t.Errorf("batch id %q accepted as %d", bad, id)
		}
	}
}

func TestMergeUpdates(t *testing.T) {
	us := []weave.Update{
		{ID: "a", Payload: weave.Some("1")},
		{ID: "b", SortIndex: weave.Some[int64](1)},
		{ID: "a", SortIndex: weave.Some[int64](2), TTL: weave.Optional[int64]{Set: true, Null: true}},
		{ID: "a", Payload: weave.Some("3")},
	}
	got := mergeUpdates(us)
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("merged: %+v", got)
	}
	a := got[0]
	if a.Payload.Value != "3" || a.SortIndex.Value != 2 || !a.TTL.Null {
		t.Fatalf("merged a: %+v", a)
	}
	if us[0].Payload.Value != "1" {
		t.Fatal("mergeUpdates modified its input")
	}
}

// TestIntColumn: the integer scanner takes every form a driver gives an
// integer in, NULL included, and refuses what is not one.
func TestIntColumn(t *testing.T) {
	for _, tc := range []struct {
		src   any
		v     int64
		valid bool
	}{
		{int64(1 << 40), 1 << 40, true},
		{int64(-5), -5, true},
		{nil, 0, false},
		{[]byte("1765000000123"), 1765000000123, true}, // MySQL's text protocol
		{"42", 42, true},
	} {
		c := intColumn{v: 7, valid: !tc.valid}
		if err := c.Scan(tc.src); err != nil || c.v != tc.v || c.valid != tc.valid {
			t.Errorf("Scan(%#v): %d %v %v, want %d %v", tc.src, c.v, c.valid, err, tc.v, tc.valid)
		}
	}
	var c intColumn
	if err := c.Scan("x"); err == nil {
		t.Error("Scan(\"x\") succeeded")
	}
}
