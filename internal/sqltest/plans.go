package sqltest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/sqlstore"
)

// PlanData describes the rows LoadPlanData writes into a migrated storage
// schema: many ordinary users plus one heavy user, a small share of them
// expired, as on a busy shard.
type PlanData struct {
	Users       int   // ordinary users, uids 1..Users
	Collections int   // collections per ordinary user (ids 1..)
	PerColl     int   // records per ordinary user and collection
	HeavyUID    int64 // a user with HeavyRows records in collection 4 (history)
	HeavyRows   int
	Now         int64 // ms; records expired at 1% of the rows are before Now
}

// DefaultPlanData is about 120,000 records.
func DefaultPlanData() PlanData {
	return PlanData{Users: 500, Collections: 4, PerColl: 50, HeavyUID: 1_000_000, HeavyRows: 20_000,
		Now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()}
}

// Rows is the number of records d describes.
func (d PlanData) Rows() int { return d.Users*d.Collections*d.PerColl + d.HeavyRows }

// LoadPlanData writes d's records with multi-row inserts, plus the matching
// user_storage and user_collections rows.
func LoadPlanData(t testing.TB, db *sqlstore.DB, d PlanData) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	const chunk = 1000
	var rows [][]any
	flush := func() {
		if len(rows) == 0 {
			return
		}
		var b strings.Builder
		b.WriteString("INSERT INTO bsos (uid, collection_id, id, sortindex, payload, payload_size, modified, expiry) VALUES ")
		args := make([]any, 0, 8*len(rows))
		for i, r := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, r...)
		}
		if _, err := db.Write.ExecContext(ctx, db.Q(b.String()), args...); err != nil {
			t.Fatalf("load: %v", err)
		}
		rows = rows[:0]
	}
	n := 0
	add := func(uid int64, cid int, i int) {
		n++
		// Timestamps spread over the last ~30 days; 1 in 100 expired.
		modified := d.Now - int64(i)*60_000 - int64(n%997)*10
		expiry := int64(9223372036854775807)
		if n%100 == 0 {
			expiry = d.Now - 3_600_000
		} else if n%7 == 0 {
			expiry = d.Now + 86_400_000*30
		}
		payload := fmt.Sprintf(`{"ciphertext":"%032x","IV":"x","hmac":"y"}`, n)
		rows = append(rows, []any{uid, cid, fmt.Sprintf("id%06d", i), i % 1000, payload, len(payload), modified, expiry})
		if len(rows) == chunk {
			flush()
		}
	}
	for u := 1; u <= d.Users; u++ {
		for c := 1; c <= d.Collections; c++ {
			for i := 0; i < d.PerColl; i++ {
				add(int64(u), c, i)
			}
		}
	}
	for i := 0; i < d.HeavyRows; i++ {
		add(d.HeavyUID, 4, i)
	}
	flush()

	var b strings.Builder
	var args []any
	var cb strings.Builder
	var cargs []any
	users := make([]int64, 0, d.Users+1)
	for u := 1; u <= d.Users; u++ {
		users = append(users, int64(u))
	}
	users = append(users, d.HeavyUID)
	for _, u := range users {
		if len(args) > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
		args = append(args, u, d.Now)
		for c := 1; c <= d.Collections; c++ {
			if len(cargs) > 0 {
				cb.WriteString(", ")
			}
			cb.WriteString("(?, ?, ?)")
			cargs = append(cargs, u, c, d.Now)
		}
	}
	if _, err := db.Write.ExecContext(ctx, db.Q("INSERT INTO user_storage (uid, modified) VALUES "+b.String()), args...); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, db.Q("INSERT INTO user_collections (uid, collection_id, modified) VALUES "+cb.String()), cargs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d records in %v", n, time.Since(start).Round(time.Millisecond))
}

// PlanQuery is one of the Store's hot statements, with arguments, and the
// indexes a good plan reads the bsos (or other) table through.
type PlanQuery struct {
	Name  string
	SQL   string // with ? placeholders
	Args  []any
	Table string   // the table whose access is checked
	Index []string // acceptable indexes ("PRIMARY" for the primary key)
	// InOrder: the plan must read the rows in the index's order, with no
	// sort step (a LIMIT then stops after that many rows).
	InOrder bool
	// Range: the plan bounds the index range by modified too, not only by
	// the user and collection (newer, older and offsets start where the
	// records asked for start).
	Range bool
}

// ReadSQL is GetBSOs's statement (sqlstore/read.go, readText): the
// collection timestamp as a scalar subquery, then the records. payload is
// ", payload" or "" (ids only), where the conditions after expiry, order
// the ORDER BY clause (with LIMIT ?). Its arguments start uid, collection,
// uid, collection, now.
func ReadSQL(payload, where, order string) string {
	return "SELECT (SELECT modified FROM user_collections WHERE uid = ? AND collection_id = ?) AS collection_modified, " +
		"id, modified, sortindex, expiry, parentid, predecessorid" + payload +
		" FROM bsos WHERE uid = ? AND collection_id = ? AND expiry > ?" + where + " ORDER BY " + order
}

// PlanQueries are the statements the plan tests check, as sqlstore issues
// them (sqlstore/queries.go and read.go; keep in step). pk names a table's
// primary key index.
func PlanQueries(d PlanData, pk func(table string) string) []PlanQuery {
	newer := d.Now - 3*60_000 // the last few minutes
	// Offsets of late pages: 90 % down the heavy user's records in each
	// order, where starting the range at the offset matters most.
	deep := d.Now - int64(d.HeavyRows*9/10)*60_000
	shallow := d.Now - int64(d.HeavyRows/10)*60_000
	read := ReadSQL
	return []PlanQuery{
		{
			Name:  "GET ?newer (heavy user, newest first, limit)",
			SQL:   read(", payload", " AND modified > ?", "modified DESC, id DESC LIMIT ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, newer, 101},
			Table: "bsos", Index: []string{"bsos_modified"}, InOrder: true, Range: true,
		},
		{
			Name:  "GET ?newer ids (heavy user, no limit)",
			SQL:   read("", " AND modified > ?", "modified DESC, id DESC"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, newer},
			Table: "bsos", Index: []string{"bsos_modified"}, InOrder: true, Range: true,
		},
		{
			Name:  "GET ?newer (ordinary user, oldest first)",
			SQL:   read(", payload", " AND modified > ?", "modified ASC, id ASC"),
			Args:  []any{int64(7), 2, int64(7), 2, d.Now, newer},
			Table: "bsos", Index: []string{"bsos_modified", pk("bsos")},
		},
		{
			Name:  "GET ?full&limit=100 (heavy user, default order)",
			SQL:   read(", payload", "", "modified DESC, id DESC LIMIT ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, 101},
			Table: "bsos", Index: []string{"bsos_modified"}, InOrder: true,
		},
		{
			Name:  "GET ?full&limit=100&sort=oldest (heavy user)",
			SQL:   read(", payload", "", "modified ASC, id ASC LIMIT ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, 101},
			Table: "bsos", Index: []string{"bsos_modified"}, InOrder: true,
		},
		{
			// A later page: the offset token's keyset position.
			Name:  "GET ?full&limit=100&offset (heavy user, default order)",
			SQL:   read(", payload", " AND modified <= ? AND (modified < ? OR (modified = ? AND id < ?))", "modified DESC, id DESC LIMIT ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, deep, deep, deep, "id018000", 101},
			Table: "bsos", Index: []string{"bsos_modified"}, InOrder: true, Range: true,
		},
		{
			Name:  "GET ?full&limit=100&sort=oldest&offset (heavy user)",
			SQL:   read(", payload", " AND modified >= ? AND (modified > ? OR (modified = ? AND id > ?))", "modified ASC, id ASC LIMIT ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, shallow, shallow, shallow, "id002000", 101},
			Table: "bsos", Index: []string{"bsos_modified"}, InOrder: true, Range: true,
		},
		{
			// No index orders by sortindex: the plan sorts, but only the
			// rows of this user's collection (an index range on the
			// user and collection, never the table).
			Name:  "GET ?full&limit=100&sort=index (heavy user)",
			SQL:   read(", payload", "", "COALESCE(sortindex, -1000000000) DESC, id DESC LIMIT ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, 101},
			Table: "bsos", Index: []string{"bsos_modified", pk("bsos")},
		},
		{
			Name: "GET ?full&limit=100&sort=index&offset (heavy user)",
			SQL: read(", payload", " AND COALESCE(sortindex, -1000000000) <= ? AND (COALESCE(sortindex, -1000000000) < ? OR (COALESCE(sortindex, -1000000000) = ? AND id < ?))",
				"COALESCE(sortindex, -1000000000) DESC, id DESC LIMIT ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, 500, 500, 500, "id010000", 101},
			Table: "bsos", Index: []string{"bsos_modified", pk("bsos")},
		},
		{
			Name:  "GET full collection (heavy user, newest first, limit)",
			SQL:   "SELECT id, modified, sortindex, expiry FROM bsos WHERE uid = ? AND collection_id = ? AND expiry > ? ORDER BY modified DESC, id DESC LIMIT ?",
			Args:  []any{d.HeavyUID, 4, d.Now, 1001},
			Table: "bsos", Index: []string{"bsos_modified"}, InOrder: true,
		},
		{
			// Firefox fetches records it knows the ids of in batches:
			// each id by the primary key, never the collection filtered.
			Name:  "GET ?ids=a,b,c&full (heavy user)",
			SQL:   read(", payload", " AND id IN (?, ?, ?)", "modified DESC, id DESC"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, "id000001", "id010000", "id019999"},
			Table: "bsos", Index: []string{pk("bsos")},
		},
		{
			// A read of more than a page is counted first (CountOnly).
			Name: "count GET ?newer (heavy user)",
			SQL: "SELECT (SELECT modified FROM user_collections WHERE uid = ? AND collection_id = ?) AS collection_modified, COUNT(*)" +
				" FROM bsos WHERE uid = ? AND collection_id = ? AND expiry > ? AND modified > ?",
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, newer},
			Table: "bsos", Index: []string{"bsos_modified"}, Range: true,
		},
		{
			// Most of the user's records come before the offset: a
			// planner may as well sort them, but only them.
			Name:  "count GET ?full&limit (heavy user): the records at the limit",
			SQL:   read("", "", "modified DESC, id DESC LIMIT ? OFFSET ?"),
			Args:  []any{d.HeavyUID, 4, d.HeavyUID, 4, d.Now, 2, 4999},
			Table: "bsos", Index: []string{"bsos_modified", pk("bsos")},
		},
		{
			Name:  "info/collections",
			SQL:   "SELECT collection_id, modified FROM user_collections WHERE uid = ? UNION ALL SELECT 0, modified FROM user_storage WHERE uid = ?",
			Args:  []any{d.HeavyUID, d.HeavyUID},
			Table: "user_collections", Index: []string{pk("user_collections")},
		},
		{
			Name:  "info/collection_counts",
			SQL:   "SELECT collection_id, COUNT(*) FROM bsos WHERE uid = ? AND expiry > ? GROUP BY collection_id",
			Args:  []any{d.HeavyUID, d.Now},
			Table: "bsos", Index: []string{pk("bsos"), "bsos_modified"},
		},
		{
			Name:  "info/quota (usage)",
			SQL:   "SELECT COALESCE(SUM(payload_size), 0) FROM bsos WHERE uid = ? AND expiry > ?",
			Args:  []any{d.HeavyUID, d.Now},
			Table: "bsos", Index: []string{pk("bsos"), "bsos_modified"},
		},
		{
			Name:  "purge: find expired",
			SQL:   "SELECT uid, collection_id, id FROM bsos WHERE expiry <= ? LIMIT ?",
			Args:  []any{d.Now, 1000},
			Table: "bsos", Index: []string{"bsos_expiry"},
		},
		{
			Name:  "purge: delete expired of one collection",
			SQL:   "DELETE FROM bsos WHERE uid = ? AND collection_id = ? AND expiry <= ? AND id IN (?, ?, ?)",
			Args:  []any{int64(7), 2, d.Now, "id000001", "id000002", "id000003"},
			Table: "bsos", Index: []string{pk("bsos")},
		},
	}
}

// PlanDB opens a store on url, loads DefaultPlanData into it and runs the
// analyze statements, so that EXPLAIN shows the plans of a real shard. It
// skips the test with -short.
func PlanDB(t *testing.T, url string, analyze ...string) (*sqlstore.DB, PlanData) {
	t.Helper()
	if testing.Short() {
		t.Skip("loads 120,000 records")
	}
	db := OpenStore(t, url, sqlstore.StoreOptions{}).DB()
	d := DefaultPlanData()
	LoadPlanData(t, db, d)
	start := time.Now()
	for _, q := range analyze {
		if _, err := db.Write.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("analyzed in %v", time.Since(start).Round(time.Millisecond))
	return db, d
}

// RowMaps runs query on db and returns its rows as column → value (NULL
// as ""), for EXPLAIN and ANALYZE output whose columns differ by database.
func RowMaps(t testing.TB, db *sql.DB, query string, args ...any) []map[string]string {
	t.Helper()
	cols, rows := Rows(t, db, query, args...)
	out := make([]map[string]string, 0, len(rows))
	for _, r := range rows {
		m := make(map[string]string, len(cols))
		for i, c := range cols {
			m[c] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// Rows runs query on db and returns its column names and its rows, each
// value as a string in column order (NULL as "").
func Rows(t testing.TB, db *sql.DB, query string, args ...any) (cols []string, rows [][]string) {
	t.Helper()
	rs, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, query)
	}
	defer rs.Close()
	if cols, err = rs.Columns(); err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = v.String
		}
		rows = append(rows, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, rows
}

// HeaderRead rewrites a ReadSQL statement into the form sqlstore uses on
// MySQL (readKey.header): the collection timestamp as a row of its own,
// then the records, in one UNION ALL. Other statements come back as they
// were. The arguments stay the same.
func HeaderRead(query string) string {
	const head = "SELECT (SELECT modified FROM user_collections WHERE uid = ? AND collection_id = ?) AS collection_modified, "
	rest, ok := strings.CutPrefix(query, head)
	cols, _, found := strings.Cut(rest, " FROM bsos ")
	if !ok || !found || strings.Contains(cols, "COUNT(") {
		return query
	}
	var h strings.Builder
	h.WriteString("(SELECT modified")
	for _, c := range strings.Split(cols, ", ") {
		switch c {
		case "id", "payload":
			h.WriteString(", ''")
		case "modified", "expiry":
			h.WriteString(", 0")
		default:
			h.WriteString(", NULL")
		}
	}
	if !strings.Contains(rest, " LIMIT ") {
		rest += " LIMIT 9223372036854775807"
	}
	return h.String() + " FROM user_collections WHERE uid = ? AND collection_id = ?) UNION ALL (SELECT NULL, " + rest + ")"
}
