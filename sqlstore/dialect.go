package sqlstore

import "strings"

// OnConflictUpsert is Dialect.Upsert for databases with PostgreSQL-style
// upserts (SQLite 3.24+, PostgreSQL 9.5+).
func OnConflictUpsert(key, update []string) string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (")
	b.WriteString(strings.Join(key, ", "))
	if len(update) == 0 {
		b.WriteString(") DO NOTHING")
		return b.String()
	}
	b.WriteString(") DO UPDATE SET ")
	for i, c := range update {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c)
		b.WriteString(" = excluded.")
		b.WriteString(c)
	}
	return b.String()
}

// DuplicateKeyUpsert is Dialect.Upsert for MySQL and MariaDB. VALUES(c) is
// deprecated in MySQL 8.0.20 but still works there, and it is the only form
// MariaDB knows; it also works after INSERT ... SELECT.
func DuplicateKeyUpsert(key, update []string) string {
	var b strings.Builder
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	if len(update) == 0 {
		// A no-op assignment keeps the existing row (and, unlike INSERT
		// IGNORE, does not turn other errors into warnings).
		b.WriteString(key[0])
		b.WriteString(" = ")
		b.WriteString(key[0])
		return b.String()
	}
	for i, c := range update {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c)
		b.WriteString(" = VALUES(")
		b.WriteString(c)
		b.WriteByte(')')
	}
	return b.String()
}
