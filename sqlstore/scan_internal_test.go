package sqlstore

import (
	"database/sql"
	"testing"

	"github.com/weave-sync/weave"
	_ "modernc.org/sqlite"
)

// TestScanHeaderRow: with the collection timestamp as a row of its own
// (readKey.header, MySQL), scanBSOs takes it wherever it comes, never as a
// record, and a byte budget still ends the page with the timestamp known
// (MariaDB sends the header first; the late header guards the page's
// timestamp should a server ever not).
func TestScanHeaderRow(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	header := "SELECT 7000, '', 0, NULL, 0, NULL, NULL, ''"
	a := "SELECT NULL, 'a', 6000, NULL, 0, NULL, NULL, 'payload'"
	b := "SELECT NULL, 'b', 5000, NULL, 0, NULL, NULL, 'payload'"
	for _, tc := range []struct {
		name, query string
		maxBytes    int
		ids         []string
		full        bool
		ts          weave.Timestamp
	}{
		{"header first", header + " UNION ALL " + a + " UNION ALL " + b, 0, []string{"a", "b"}, false, 7000},
		{"header last", a + " UNION ALL " + b + " UNION ALL " + header, 0, []string{"a", "b"}, false, 7000},
		{"header first, budget", header + " UNION ALL " + a + " UNION ALL " + b, 1, []string{"a"}, true, 7000},
		{"header last, budget", a + " UNION ALL " + b + " UNION ALL " + header, 1, []string{"a"}, true, 7000},
		{"header only", header, 0, nil, false, 7000},
		// No collection row: timestamp 0, and the budget still says more.
		{"no header, budget", a + " UNION ALL " + b, 1, []string{"a"}, true, 0},
	} {
		rows, err := db.Query(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		res, err := scanBSOs(rows, weave.Query{MaxBytes: tc.maxBytes}, true, func(r *weave.BSO) error {
			ids = append(ids, r.ID)
			return nil
		})
		rows.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ts, full := res.modified, res.full
		if ts != tc.ts || full != tc.full || len(ids) != len(tc.ids) || (len(ids) > 0 && ids[0] != tc.ids[0]) {
			t.Errorf("%s: records %v at %v, full %v; want %v at %v, full %v", tc.name, ids, ts, full, tc.ids, tc.ts, tc.full)
		}
	}
}
