package postgres_test

import (
	"database/sql"
	"regexp"
	"strings"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	_ "github.com/weave-sync/weave/postgres"
)

// TestQueryPlans loads a shard's worth of records and checks with EXPLAIN
// that the Store's hot statements read through the intended indexes.
func TestQueryPlans(t *testing.T) {
	db, d := sqltest.PlanDB(t, dbtest.Postgres(t), "VACUUM ANALYZE bsos, user_collections, user_storage")

	pk := func(table string) string { return table + "_pkey" }
	for _, q := range sqltest.PlanQueries(d, pk) {
		q.SQL = sqltest.HeaderRead(q.SQL) // as sqlstore reads on PostgreSQL
		t.Run(q.Name, func(t *testing.T) {
			plan := explain(t, db.Write, db.Q(q.SQL), q.Args...)
			if regexp.MustCompile(`Seq Scan on ` + q.Table + `\b`).MatchString(plan) {
				t.Errorf("%s scans all of %s", q.Name, q.Table)
			}
			used := false
			for _, idx := range q.Index {
				if regexp.MustCompile(`(using|Index Scan on) ` + idx + ` on ` + q.Table + `\b|Bitmap Index Scan on ` + idx + `\b`).MatchString(plan) {
					used = true
				}
			}
			if !used {
				t.Errorf("%s does not read %s through any of %v", q.Name, q.Table, q.Index)
			}
			if q.Range && !regexp.MustCompile(`Index Cond: \([^\n]*modified [<>]`).MatchString(plan) {
				t.Errorf("%s reads all of the user's collection, not a range of it by modified", q.Name)
			}
			if q.InOrder && regexp.MustCompile(`\bSort\b`).MatchString(plan) {
				t.Errorf("%s sorts instead of reading the index in order", q.Name)
			}
			if t.Failed() || testing.Verbose() {
				t.Log("\n" + plan)
			}
		})
	}
}

// explain returns the text plan of a statement.
func explain(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
