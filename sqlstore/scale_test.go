package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/sqlstore"
)

// BenchmarkScale is issue 14's "flat at scale": one user's two hot reads,
// GET ?newer=T (ids) and GET ?full&limit=100, on a shard that grows from
// 10 k to 10 M records around that user. Only other users' rows grow, so a
// read that stays on its user's index range keeps its latency. It seeds
// and runs only when WEAVE_SCALE_SIZES lists the shard sizes:
//
//	WEAVE_SCALE_SIZES=10k,100k,1M WEAVE_SCALE_KINDS=sqlite,mysql,postgres \
//	    go test -run '^$' -bench Scale -benchtime 2000x -count 1 -timeout 0 ./sqlstore
//
// Seed times are logged (-v). See docs/benchmarks.md, "Flat at scale".
func BenchmarkScale(b *testing.B) {
	sizes, err := parseSizes(os.Getenv("WEAVE_SCALE_SIZES"))
	if err != nil {
		b.Fatal(err)
	}
	if len(sizes) == 0 {
		b.Skip("set WEAVE_SCALE_SIZES=10k,100k,1M,10M to seed shards of those sizes and time the reads")
	}
	ks := kinds
	if s := os.Getenv("WEAVE_SCALE_KINDS"); s != "" {
		ks = strings.Split(s, ",")
	}
	const (
		uid     = 1
		ownRecs = 1000 // the measured user's history
		perUser = 1000 // every other user's records, over two collections
	)
	ctx := context.Background()
	now := time.Now()
	for _, kind := range ks {
		s := sqltest.OpenStore(b, dbtest.Fresh(b, kind), sqlstore.StoreOptions{})
		if _, err := s.Seed(ctx, sqlstore.SeedOptions{Users: 1, FirstUID: uid, RecordsPerUser: ownRecs, Now: now}); err != nil {
			b.Fatal(err)
		}
		total, next := int64(ownRecs), int64(uid+1)
		for _, size := range sizes {
			if users := (size - total) / perUser; users > 0 {
				start := time.Now()
				n, err := s.Seed(ctx, sqlstore.SeedOptions{Users: int(users), FirstUID: next, RecordsPerUser: perUser,
					Collections: []string{"history", "bookmarks"}, Now: now, Append: true})
				if err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				total, next = total+n, next+users
				b.Logf("%s: seeded %d records in %v (%.0f/s), %d in the shard", kind, n, d.Round(time.Millisecond), float64(n)/d.Seconds(), total)
			}
			// The state a server reaches some moments after such a load:
			// the statistics of its background analysis (SQLite has the
			// ones weave seeds when migrating), and on SQLite the WAL
			// copied into the database by the checkpointer; timing reads
			// while it is still hundreds of MB long measured the
			// checkpoint, not the read (1M: 65 µs in one run, 131 µs in
			// the next).
			if q := map[string]string{"postgres": "ANALYZE bsos, user_collections", "mysql": "ANALYZE TABLE bsos, user_collections", "sqlite": "PRAGMA wal_checkpoint(TRUNCATE)"}[kind]; q != "" {
				if _, err := s.DB().Write.ExecContext(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			label := fmt.Sprintf("%s/%s", kind, sizeLabel(size))
			// The work each read does, which the machine's load does not
			// change: rows or pages read, from the database's own account.
			nowMs, newerMs := now.UnixMilli()-1, now.Add(-24*time.Hour).UnixMilli()
			for _, w := range []struct {
				name string
				sql  string
				args []any
			}{
				{"newer", sqltest.ReadSQL("", " AND modified > ?", "modified DESC, id DESC"), []any{uid, 4, uid, 4, nowMs, newerMs}},
				{"full-limit100", sqltest.ReadSQL(", payload", "", "modified DESC, id DESC LIMIT ?"), []any{uid, 4, uid, 4, nowMs, 101}},
			} {
				b.Logf("%s/%s: %s", label, w.name, readWork(b, kind, s.DB(), w.sql, w.args))
			}
			newer := weave.Timestamp(now.Add(-24 * time.Hour).UnixMilli())
			for _, r := range []struct {
				name string
				q    weave.Query
				min  int
			}{
				{"newer", weave.Query{Newer: newer, IDsOnly: true}, 1},
				{"full-limit100", weave.Query{Limit: 100}, 100},
				{"full-limit100-sort-index", weave.Query{Limit: 100, Sort: weave.SortIndex}, 100},
			} {
				b.Run(label+"/"+r.name, func(b *testing.B) {
					for b.Loop() {
						page, err := s.GetBSOs(ctx, uid, "history", r.q)
						if err != nil {
							b.Fatal(err)
						}
						if len(page.BSOs) < r.min {
							b.Fatalf("%d records, want at least %d", len(page.BSOs), r.min)
						}
					}
				})
			}
		}
	}
}

// readWork is the database's account of what a read did: rows read
// (MariaDB's ANALYZE), buffers and rows (PostgreSQL's EXPLAIN ANALYZE),
// or the plan (SQLite).
func readWork(b *testing.B, kind string, db *sqlstore.DB, query string, args []any) string {
	prefix := map[string]string{"mysql": "ANALYZE ", "postgres": "EXPLAIN (ANALYZE, BUFFERS) ", "sqlite": "EXPLAIN QUERY PLAN "}[kind]
	var out []string
	for _, m := range sqltest.RowMaps(b, db.Read, db.Q(prefix+query), args...) {
		switch kind {
		case "mysql":
			out = append(out, fmt.Sprintf("%s by %s: %s rows read (type %s)", m["table"], m["key"], m["r_rows"], m["type"]))
		case "postgres":
			if l := strings.TrimSpace(m["QUERY PLAN"]); strings.Contains(l, "actual") || strings.HasPrefix(l, "Buffers") {
				out = append(out, l)
			}
		default:
			out = append(out, m["detail"])
		}
	}
	return strings.Join(out, "; ")
}

// parseSizes reads "10k,100k,1M,10M".
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := int64(1)
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1_000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("WEAVE_SCALE_SIZES: bad size %q", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func sizeLabel(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return strconv.FormatInt(n, 10)
}
