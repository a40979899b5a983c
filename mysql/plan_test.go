package mysql_test

import (
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	_ "github.com/weave-sync/weave/mysql"
)

// TestQueryPlans loads a shard's worth of records and checks with EXPLAIN
// that the Store's hot statements read through the intended indexes.
func TestQueryPlans(t *testing.T) {
	db, d := sqltest.PlanDB(t, dbtest.MySQL(t), "ANALYZE TABLE bsos", "ANALYZE TABLE user_collections", "ANALYZE TABLE user_storage")

	pk := func(string) string { return "PRIMARY" }
	for _, q := range sqltest.PlanQueries(d, pk) {
		q.SQL = sqltest.HeaderRead(q.SQL) // as sqlstore reads on MySQL
		t.Run(q.Name, func(t *testing.T) {
			rows := explain(t, db.Write, q.SQL, q.Args...)
			found := false
			for _, r := range rows {
				if r["table"] != q.Table {
					continue
				}
				found = true
				if r["type"] == "ALL" || r["type"] == "index" || !slices.Contains(q.Index, r["key"]) {
					t.Errorf("%s reads %s by %s (type %s, rows %s, %s); want one of %v",
						q.Name, q.Table, r["key"], r["type"], r["rows"], r["Extra"], q.Index)
				}
				if q.Range && r["type"] != "range" {
					t.Errorf("%s reads all of the user's collection (type %s, key_len %s), not a range of it", q.Name, r["type"], r["key_len"])
				}
				if strings.Contains(r["Extra"], "filesort") && q.InOrder {
					t.Errorf("%s sorts (%s) instead of reading the index in order", q.Name, r["Extra"])
				}
			}
			if !found {
				t.Errorf("%s: no plan row for %s: %v", q.Name, q.Table, rows)
			}
			if t.Failed() || testing.Verbose() {
				for _, r := range rows {
					t.Logf("%v", r)
				}
			}
		})
	}
}

// explain returns the rows of EXPLAIN as column → value.
func explain(t *testing.T, db *sql.DB, query string, args ...any) []map[string]string {
	t.Helper()
	return sqltest.RowMaps(t, db, "EXPLAIN "+query, args...)
}
