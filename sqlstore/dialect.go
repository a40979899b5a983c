package sqlstore

import "strings"

// OnConflictUpsert is Dialect.Upsert for databases with PostgreSQL-style
// upserts (SQLite 3.24+, PostgreSQL 9.5+).
func OnConflictUpsert(key, update []string) string {
	return OnConflictUpsertSet(key, copyAssignments(update, OnConflictInserted))
}

// OnConflictUpsertSet is Dialect.UpsertSet for PostgreSQL-style upserts.
func OnConflictUpsertSet(key, set []string) string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (")
	b.WriteString(strings.Join(key, ", "))
	if len(set) == 0 {
		b.WriteString(") DO NOTHING")
		return b.String()
	}
	b.WriteString(") DO UPDATE SET ")
	b.WriteString(strings.Join(set, ", "))
	return b.String()
}

// OnConflictInserted is Dialect.Inserted for PostgreSQL-style upserts.
func OnConflictInserted(column string) string { return "excluded." + column }

// DuplicateKeyUpsert is Dialect.Upsert for MySQL and MariaDB. VALUES(c) is
// deprecated in MySQL 8.0.20 but still works there, and it is the only form
// MariaDB knows; it also works after INSERT ... SELECT.
func DuplicateKeyUpsert(key, update []string) string {
	return DuplicateKeyUpsertSet(key, copyAssignments(update, DuplicateKeyInserted))
}

// DuplicateKeyUpsertSet is Dialect.UpsertSet for MySQL and MariaDB.
func DuplicateKeyUpsertSet(key, set []string) string {
	if len(set) == 0 {
		// A no-op assignment keeps the existing row (and, unlike INSERT
		// IGNORE, does not turn other errors into warnings).
		return " ON DUPLICATE KEY UPDATE " + key[0] + " = " + key[0]
	}
	return " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
}

// DuplicateKeyInserted is Dialect.Inserted for MySQL and MariaDB.
func DuplicateKeyInserted(column string) string { return "VALUES(" + column + ")" }

func copyAssignments(columns []string, inserted func(string) string) []string {
	set := make([]string, len(columns))
	for i, c := range columns {
		set[i] = c + " = " + inserted(c)
	}
	return set
}
