package weave_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
)

// mapOnlyStore is a Store that has CollectionTimestamps only.
type mapOnlyStore struct {
	weave.Store
	colls   map[string]weave.Timestamp
	storage weave.Timestamp
	err     error
}

func (s mapOnlyStore) CollectionTimestamps(context.Context, int64) (map[string]weave.Timestamp, weave.Timestamp, error) {
	return s.colls, s.storage, s.err
}

func TestAppendCollectionTimestampsFromMap(t *testing.T) {
	s := mapOnlyStore{colls: map[string]weave.Timestamp{"a": 10, "b": 20}, storage: 30}
	before := weave.CollectionTimestamp{Name: "x", Modified: 1}
	got, ts, err := weave.AppendCollectionTimestamps(t.Context(), s, 7, []weave.CollectionTimestamp{before})
	if err != nil || ts != 30 {
		t.Fatalf("got %v, %v", ts, err)
	}
	slices.SortFunc(got[1:], func(a, b weave.CollectionTimestamp) int { return strings.Compare(a.Name, b.Name) })
	if want := []weave.CollectionTimestamp{before, {"a", 10}, {"b", 20}}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	boom := errors.New("boom")
	if _, _, err := weave.AppendCollectionTimestamps(t.Context(), mapOnlyStore{err: boom}, 7, nil); err != boom {
		t.Fatalf("error %v, want %v", err, boom)
	}
}
