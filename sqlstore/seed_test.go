package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/sqlstore"
)

// TestSeed checks on every backend that seeded records read back through
// the Store like uploaded ones, and that a non-empty database is refused
// unless appending.
func TestSeed(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			s := sqltest.OpenStore(t, dbtest.Fresh(t, kind), sqlstore.StoreOptions{})
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			var progress []int64
			o := sqlstore.SeedOptions{Users: 3, FirstUID: 10, RecordsPerUser: 1201, Collections: []string{"history", "custom-x"},
				Now: now, Progress: func(n int64) { progress = append(progress, n) }}
			n, err := s.Seed(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if n != 3*1201 || len(progress) == 0 || progress[len(progress)-1] != n {
				t.Fatalf("seeded %d records, progress %v; want %d", n, progress, 3*1201)
			}
			counts, err := s.CollectionCounts(ctx, 11)
			if err != nil {
				t.Fatal(err)
			}
			if counts["history"] != 601 || counts["custom-x"] != 600 || len(counts) != 2 {
				t.Errorf("counts %v, want history 601 and custom-x 600", counts)
			}
			ts, storage, err := s.CollectionTimestamps(ctx, 12)
			if err != nil {
				t.Fatal(err)
			}
			page, err := s.GetBSOs(ctx, 12, "history", weave.Query{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.BSOs) != 100 || page.NextOffset == "" {
				t.Fatalf("page of %d records, offset %q", len(page.BSOs), page.NextOffset)
			}
			newest := page.BSOs[0]
			if ts["history"] != newest.Modified || page.Modified != newest.Modified || storage < newest.Modified {
				t.Errorf("history timestamp %v, page %v, storage %v; newest record %v", ts["history"], page.Modified, storage, newest.Modified)
			}
			if newest.Modified > weave.Timestamp(now.UnixMilli()) || newest.Modified < weave.Timestamp(now.Add(-31*24*time.Hour).UnixMilli()) ||
				newest.Modified%10 != 0 {
				t.Errorf("modified %v outside the 30 days before %v or off the 10 ms grid", newest.Modified, now)
			}
			if len(newest.ID) != 12 || !strings.HasPrefix(newest.Payload, `{"ciphertext":"`) || newest.SortIndex == nil {
				t.Errorf("record %+v does not look like Firefox's", newest)
			}
			// A record reads back by id too (the primary key).
			if _, err := s.GetBSO(ctx, 12, "history", newest.ID); err != nil {
				t.Errorf("GetBSO(%s): %v", newest.ID, err)
			}

			if _, err := s.Seed(ctx, sqlstore.SeedOptions{Users: 1, FirstUID: 100, RecordsPerUser: 1}); !errors.Is(err, sqlstore.ErrNotEmpty) {
				t.Errorf("seeding a non-empty database: %v, want ErrNotEmpty", err)
			}
			if n, err := s.Seed(ctx, sqlstore.SeedOptions{Users: 2, FirstUID: 100, RecordsPerUser: 5, Append: true}); err != nil || n != 10 {
				t.Errorf("appending: %d, %v; want 10 records", n, err)
			}
			if u, err := s.Usage(ctx, 101); err != nil || u == 0 {
				t.Errorf("usage of an appended user: %d, %v", u, err)
			}
		})
	}
}
