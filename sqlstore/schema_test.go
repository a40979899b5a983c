package sqlstore_test

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/sqlstore"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite testdata/schema/*.txt from the migrations")

// TestSchemaSnapshot migrates every schema set on a fresh database of each
// backend and compares what the database reports (tables, columns and their
// types, defaults and collations, indexes, constraints, seed rows) with
// testdata/schema/<backend>.txt. A database migrated by an older weave must
// look exactly like a new one, so a change to how migrations are written or
// rendered must leave these files alone; a new migration changes them
// deliberately (go test ./sqlstore -run TestSchemaSnapshot -update-schema).
func TestSchemaSnapshot(t *testing.T) {
	for _, b := range sqlstore.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := b.Open(ctx, dbtest.Fresh(t, b.Name), sqlstore.PoolOptions{MaxOpenConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, set := range []string{sqlstore.SetStorage, sqlstore.SetTokens, sqlstore.SetAccounts, sqlstore.SetPush} {
				ms, err := b.MigrationsOf(set)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Migrate(ctx, set, ms, nil); err != nil {
					t.Fatal(err)
				}
			}
			got := dumpSchema(t, db.Write, schemaQueries[b.Name])
			file := filepath.Join("testdata", "schema", b.Name+".txt")
			if *updateSchema {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := range max(len(gl), len(wl)) {
					g, w := "", ""
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("schema differs from %s at line %d:\ngot:  %s\nwant: %s", file, i+1, g, w)
					}
				}
			}
		})
	}
}

// schemaQueries lists, per backend, queries whose rows describe the schema;
// every row is printed as its columns joined by " | ", the rows sorted.
var schemaQueries = map[string][]string{
	"sqlite": {
		`SELECT 'column', m.name, c.cid, c.name, c.type, c."notnull", coalesce(c.dflt_value, 'NULL'), c.pk, c.hidden
			FROM sqlite_master m, pragma_table_xinfo(m.name) c WHERE m.type = 'table'`,
		`SELECT 'index', m.name, il.name, il."unique", il.origin, il.partial, ii.seqno, coalesce(ii.name, 'NULL')
			FROM sqlite_master m, pragma_index_list(m.name) il, pragma_index_info(il.name) ii WHERE m.type = 'table'`,
		`SELECT 'flag', name, CASE WHEN lower(sql) LIKE '%autoincrement%' THEN 'autoincrement' ELSE '' END,
			CASE WHEN lower(sql) LIKE '%without rowid%' THEN 'without rowid' ELSE '' END
			FROM sqlite_master WHERE type = 'table'`,
		`SELECT 'row collections', id, name FROM collections`,
		`SELECT 'row token_services', id, service, pattern FROM token_services`,
		// The planner statistics sqlite.Dialect.Tune seeds.
		`SELECT 'row sqlite_stat1', tbl, idx, stat FROM sqlite_stat1`,
	},
	"postgres": {
		`SELECT 'column', table_name, ordinal_position, column_name, data_type, coalesce(character_maximum_length, -1),
			is_nullable, coalesce(column_default, 'NULL'), is_identity, coalesce(identity_generation, ''), coalesce(collation_name, '')
			FROM information_schema.columns WHERE table_schema = current_schema()`,
		`SELECT 'storage', c.relname, a.attname, a.attstorage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`,
		`SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()`,
		`SELECT 'constraint', c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) FROM pg_constraint k
			JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()`,
		`SELECT 'sequence', sequencename, data_type, increment_by FROM pg_sequences WHERE schemaname = current_schema()`,
		`SELECT 'row collections', id, name FROM collections`,
		`SELECT 'row token_services', id, service, pattern FROM token_services`,
	},
	"mysql": {
		`SELECT 'table', table_name, engine, table_collation FROM information_schema.tables WHERE table_schema = DATABASE()`,
		`SELECT 'column', table_name, ordinal_position, column_name, column_type, is_nullable, coalesce(column_default, 'NULL'),
			coalesce(collation_name, ''), extra, column_key FROM information_schema.columns WHERE table_schema = DATABASE()`,
		`SELECT 'index', table_name, index_name, non_unique, seq_in_index, column_name, coalesce(sub_part, ''), index_type
			FROM information_schema.statistics WHERE table_schema = DATABASE()`,
		`SELECT 'row collections', id, name FROM collections`,
		`SELECT 'row token_services', id, service, pattern FROM token_services`,
	},
}

func dumpSchema(t *testing.T, db *sql.DB, queries []string) string {
	t.Helper()
	var lines []string
	for _, q := range queries {
		_, rows := sqltest.Rows(t, db, q)
		for _, r := range rows {
			lines = append(lines, strings.Join(r, " | "))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
