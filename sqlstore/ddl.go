package sqlstore

import (
	"embed"
	"strconv"
	"strings"
	"text/template"
)

// sharedMigrations holds the migrations written once for every backend:
// migrations/<set>/NNNN_description.sql, text/template sources that leave
// what the dialects spell differently to a DDL (see ddlWriter for the
// words they use). A backend's own migrations/<set>/ holds the ones whose
// SQL differs beyond that; a version is in one place or the other.
//
//go:embed migrations
var sharedMigrations embed.FS

// DDL is how a backend spells what the shared migrations leave open.
type DDL struct {
	// Rerunnable makes every statement harmless to run again, for
	// databases that commit each DDL statement (MySQL), where a migration
	// that failed halfway is retried from its start: tables are created IF
	// NOT EXISTS with their indexes inside the definition (MySQL 8 has no
	// CREATE INDEX IF NOT EXISTS), and seed rows keep an existing row.
	Rerunnable bool
	// TableOptions follows every table definition (MySQL: engine, charset
	// and a bytewise collation).
	TableOptions string
	// Bytewise follows the type of text that is compared byte by byte,
	// where the database's own collation would not do that (PostgreSQL:
	// COLLATE "C").
	Bytewise string
	// Bytes is the type of ids compared and ordered byte by byte, case and
	// trailing spaces included, up to {n} bytes (MySQL: VARBINARY, as its
	// older _bin collations ignore trailing spaces).
	Bytes string
	// LongText is the type of texts of up to 16 MiB (MySQL's TEXT holds
	// 64 KiB).
	LongText string
	// Uncompressed is the statement that has the database store a large
	// column's values as they are, out of line ({table}, {column}); ""
	// where there is nothing to say. Encrypted payloads do not compress.
	Uncompressed string
	// Identity defines an integer primary key the database numbers and
	// never numbers twice, even after the newest row is deleted; {type}
	// stands for the integer type the migration asks for.
	Identity string
	// RowID defines a BIGINT primary key the database numbers (SQLite
	// may reuse the number of a deleted newest row).
	RowID string
	// RowKey is the type of a BIGINT primary key the migration numbers
	// itself (SQLite: INTEGER, which makes it the row id).
	RowKey string
	// Clustered follows a table definition whose rows are to be stored in
	// their primary key's order (SQLite: WITHOUT ROWID; InnoDB always
	// does).
	Clustered string
}

// ddlWriter is what a shared migration's template sees as ".": one per
// rendering, since it collects the indexes of the table being defined.
type ddlWriter struct {
	ddl   DDL
	table string
	after []string // statements that follow the table's definition
}

// renderMigration executes a shared migration's template for a backend.
func renderMigration(name, src string, ddl DDL) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, &ddlWriter{ddl: ddl}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Table starts the definition of a table: {{.Table "t"}} (columns...
// {{.Index ...}}){{.End}};
func (w *ddlWriter) Table(name string) string {
	w.table, w.after = name, nil
	if w.ddl.Rerunnable {
		return "CREATE TABLE IF NOT EXISTS " + name
	}
	return "CREATE TABLE " + name
}

// Index declares an index of the table being defined; it stands after the
// last column or constraint, before the closing parenthesis.
func (w *ddlWriter) Index(name, columns string) string { return w.index("", name, columns) }

// UniqueIndex declares a unique index, as Index does.
func (w *ddlWriter) UniqueIndex(name, columns string) string {
	return w.index("UNIQUE ", name, columns)
}

func (w *ddlWriter) index(unique, name, columns string) string {
	if w.ddl.Rerunnable {
		return ",\n\t" + unique + "KEY " + name + " (" + columns + ")"
	}
	w.after = append(w.after, "CREATE "+unique+"INDEX "+name+" ON "+w.table+" ("+columns+")")
	return ""
}

// Unique declares a unique constraint on columns, placed as Index is. The
// name is the MySQL index's; elsewhere the database names the constraint
// itself, as it does for a column declared UNIQUE.
func (w *ddlWriter) Unique(name, columns string) string {
	if w.ddl.Rerunnable {
		return ",\n\tUNIQUE KEY " + name + " (" + columns + ")"
	}
	return ",\n\tUNIQUE (" + columns + ")"
}

// End follows the closing parenthesis of a table definition: the table
// options, then the indexes declared in it as statements of their own.
func (w *ddlWriter) End() string {
	out := w.ddl.TableOptions
	for _, s := range w.after {
		out += ";\n" + s
	}
	w.table, w.after = "", nil
	return out
}

// Bytewise follows the type of a text column compared byte by byte.
func (w *ddlWriter) Bytewise() string { return w.ddl.Bytewise }

// LongText is the type of a text of up to 16 MiB.
func (w *ddlWriter) LongText() string { return w.ddl.LongText }

// Bytes is the type of ids of up to n bytes compared byte by byte.
func (w *ddlWriter) Bytes(n int) string {
	return strings.ReplaceAll(w.ddl.Bytes, "{n}", strconv.Itoa(n))
}

// Uncompressed follows the type of a column of the table being defined
// whose large values are stored as they are.
func (w *ddlWriter) Uncompressed(column string) string {
	if w.ddl.Uncompressed != "" {
		w.after = append(w.after, strings.NewReplacer("{table}", w.table, "{column}", column).Replace(w.ddl.Uncompressed))
	}
	return ""
}

// Identity defines an integer primary key of type typ that the database
// numbers and never numbers twice.
func (w *ddlWriter) Identity(typ string) string {
	return strings.ReplaceAll(w.ddl.Identity, "{type}", typ)
}

// RowID defines a BIGINT primary key that the database numbers.
func (w *ddlWriter) RowID() string { return w.ddl.RowID }

// RowKey is the type of a BIGINT primary key numbered by the migration.
func (w *ddlWriter) RowKey() string { return w.ddl.RowKey }

// Clustered follows the closing parenthesis of a table, before End, to
// store its rows in primary key order.
func (w *ddlWriter) Clustered() string { return w.ddl.Clustered }

// KeepExisting ends an INSERT of seed rows: when Rerunnable, a row whose
// key column is already there stays as it is.
func (w *ddlWriter) KeepExisting(column string) string {
	if w.ddl.Rerunnable {
		return "\n\t" + strings.TrimPrefix(DuplicateKeyUpsertSet([]string{column}, nil), " ")
	}
	return ""
}
