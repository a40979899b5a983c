package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/weave-sync/weave"
)

// A schema set is versioned on its own: "storage" (BSOs, collections,
// batches) and "tokens" (token server users and nodes) may live in different
// databases.
const (
	SetStorage = "storage"
	SetTokens  = "tokens"
)

// Migration is one numbered schema change, read from a file named
// NNNN_description.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the migrations of one set from dir in fsys, sorted by
// version. Versions must start at 1 and have no gaps.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	ms, err := readMigrations(fsys, dir)
	if err != nil {
		return nil, err
	}
	return ms, checkVersions(ms, dir)
}

// readMigrations reads the migration files of dir in fsys, unsorted.
func readMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", dir, err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return ms, nil
}

// checkVersions sorts migrations by version and checks that the versions
// start at 1 and have no gaps or repeats.
func checkVersions(ms []Migration, dir string) error {
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("migrations in %s: expected version %d, found %s", dir, i+1, m.Name)
		}
	}
	return nil
}

// SchemaStatus is where a database stands against the binary's migrations.
type SchemaStatus struct {
	Set     string
	Current int // applied version (0: none)
	Latest  int // newest version this binary knows
}

// Pending reports whether migrations are waiting to be applied.
func (s SchemaStatus) Pending() bool { return s.Current < s.Latest }

const schemaTable = `CREATE TABLE IF NOT EXISTS weave_schema (
	set_name VARCHAR(32) NOT NULL PRIMARY KEY,
	version INTEGER NOT NULL
)`

// Status reports the applied and known versions of a schema set.
func (db *DB) Status(ctx context.Context, set string, ms []Migration) (SchemaStatus, error) {
	st := SchemaStatus{Set: set, Latest: len(ms)}
	if _, err := db.Write.ExecContext(ctx, schemaTable); err != nil {
		return st, db.Classify(err)
	}
	err := db.Write.QueryRowContext(ctx, db.Q(`SELECT version FROM weave_schema WHERE set_name = ?`), set).Scan(&st.Current)
	if err == sql.ErrNoRows {
		err = nil
	}
	return st, db.Classify(err)
}

// CheckSchema returns an error unless the database is exactly at the
// binary's newest version: weave never runs on a schema it does not know.
func (db *DB) CheckSchema(ctx context.Context, set string, ms []Migration) error {
	st, err := db.Status(ctx, set, ms)
	if err != nil {
		return err
	}
	if st.Current > st.Latest {
		return fmt.Errorf("%w: %s schema is at version %d, this weave knows up to %d; upgrade weave", weave.ErrSchemaTooNew, set, st.Current, st.Latest)
	}
	if st.Pending() {
		return fmt.Errorf("%s schema is at version %d of %d: run `weave db migrate`", set, st.Current, st.Latest)
	}
	return nil
}

// Migrate applies the pending migrations of a set, each in its own
// transaction (where the database supports transactional DDL), holding a
// database-wide lock so concurrent processes do not race. It refuses to run
// against a schema newer than the binary's.
func (db *DB) Migrate(ctx context.Context, set string, ms []Migration, progress func(Migration)) error {
	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return db.Classify(err)
	}
	defer conn.Close()
	unlock, err := db.Dialect.LockMigrations(ctx, conn)
	if err != nil {
		return fmt.Errorf("lock for migration: %w", db.Classify(err))
	}
	defer unlock()

	if _, err := conn.ExecContext(ctx, schemaTable); err != nil {
		return db.Classify(err)
	}
	current := 0
	err = conn.QueryRowContext(ctx, db.Q(`SELECT version FROM weave_schema WHERE set_name = ?`), set).Scan(&current)
	if err != nil && err != sql.ErrNoRows {
		return db.Classify(err)
	}
	if current > len(ms) {
		return fmt.Errorf("%w: %s schema is at version %d, this weave knows up to %d; upgrade weave", weave.ErrSchemaTooNew, set, current, len(ms))
	}
	for _, m := range ms[current:] {
		if progress != nil {
			progress(m)
		}
		if err := db.applyMigration(ctx, conn, set, m); err != nil {
			return fmt.Errorf("migration %s/%s: %w", set, m.Name, err)
		}
	}
	if t, ok := db.Dialect.(Tuner); ok {
		if err := t.Tune(ctx, conn, set); err != nil {
			return fmt.Errorf("tune %s schema: %w", set, db.Classify(err))
		}
	}
	return nil
}

// Tuner is implemented by a Dialect that adjusts a schema set once it is
// current, where the adjustment is no schema version of its own (it would
// otherwise bump the version for every backend). Migrate calls it under the
// migration lock on every run; it must be idempotent and leave what an
// operator set alone.
type Tuner interface {
	Tune(ctx context.Context, conn *sql.Conn, set string) error
}

func (db *DB) applyMigration(ctx context.Context, conn *sql.Conn, set string, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return db.Classify(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range SplitStatements(m.SQL) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w\n%s", err, stmt)
		}
	}
	var res sql.Result
	if m.Version == 1 {
		res, err = tx.ExecContext(ctx, db.Q(`INSERT INTO weave_schema (set_name, version) VALUES (?, ?)`), set, m.Version)
	} else {
		res, err = tx.ExecContext(ctx, db.Q(`UPDATE weave_schema SET version = ? WHERE set_name = ? AND version = ?`), m.Version, set, m.Version-1)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("schema version moved underneath us")
	}
	return tx.Commit()
}

// SplitStatements splits a migration file into statements at semicolons that
// end a line. Lines starting with "--" are comments.
func SplitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			if stmt != "" {
				out = append(out, stmt)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Prepare brings a schema set up to date (migrate, reporting each applied
// migration to progress, which may be nil) or checks that it is current.
func (db *DB) Prepare(ctx context.Context, set string, ms []Migration, migrate bool, progress func(Migration)) error {
	if migrate {
		return db.Migrate(ctx, set, ms, progress)
	}
	return db.CheckSchema(ctx, set, ms)
}
