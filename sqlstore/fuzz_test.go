package sqlstore

import (
	"errors"
	"testing"

	"github.com/weave-sync/weave"
)

// FuzzClientTokens feeds the two tokens clients echo back to the store —
// batch ids and pagination offsets — through their decoders. Refusals of
// an offset are ErrInvalidOffset (a 400 upstream); anything accepted lies
// inside the query it resumes and encodes back to the same position.
func FuzzClientTokens(f *testing.F) {
	f.Add(encodeBatchID(1234567890), uint8(0), int64(0), int64(0))
	f.Add(encodeOffset(weave.SortNewest, &weave.BSO{ID: "abc", Modified: 1700000000120}), uint8(0), int64(1700000000000), int64(0))
	f.Add(encodeOffset(weave.SortIndex, &weave.BSO{ID: "a b~"}), uint8(2), int64(0), int64(0))
	f.Add("bjE6YQ", uint8(1), int64(0), int64(2))
	f.Add("____________", uint8(3), int64(-1), int64(-1))
	f.Add("aS05OTk5OTk5OTk6eA", uint8(2), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, s string, sort uint8, newer, older int64) {
		if id, ok := decodeBatchID(s); ok {
			if id < 0 {
				t.Fatalf("batch id %q → %d", s, id)
			}
			if back, ok := decodeBatchID(encodeBatchID(id)); !ok || back != id {
				t.Fatalf("batch id %d does not round-trip", id)
			}
		}
		if ForeignBatchID(s) < 0 {
			t.Fatalf("foreign batch id of %q is negative", s)
		}
		q := weave.Query{Sort: weave.Sort(sort % 3), Newer: weave.Timestamp(newer), Older: weave.Timestamp(older)}
		o, err := decodeOffset(s, q)
		if err != nil {
			if !errors.Is(err, weave.ErrInvalidOffset) {
				t.Fatalf("offset %q: %v", s, err)
			}
			return
		}
		if !weave.ValidBSOID(o.id) {
			t.Fatalf("offset %q → id %q", s, o.id)
		}
		last := weave.BSO{ID: o.id, Modified: weave.Timestamp(o.key)}
		if q.Sort == weave.SortIndex {
			if o.key < noSortIndex || o.key > weave.MaxSortIndex {
				t.Fatalf("offset %q → sortindex %d", s, o.key)
			}
			if o.key != noSortIndex {
				last.SortIndex = &o.key
			}
		} else if o.key <= 0 || (newer > 0 && o.key <= newer) || (older > 0 && o.key >= older) {
			t.Fatalf("offset %q → modified %d outside (%d, %d)", s, o.key, newer, older)
		}
		back, err := decodeOffset(encodeOffset(q.Sort, &last), q)
		if err != nil || back != o {
			t.Fatalf("offset %q → %+v → %+v, %v", s, o, back, err)
		}
	})
}
