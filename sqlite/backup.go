package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/weave-sync/weave/internal/privfile"
)

// ErrInUse: a process (a running weave serve, say) has the database open.
var ErrInUse = errors.New("sqlite: database in use")

// Backup writes a consistent copy of the database of dsn to path while
// other processes keep reading and writing it: VACUUM INTO copies one read
// snapshot, so the copy holds exactly the commits made before it began. The
// copy is 0600, synced and checked with integrity_check in a temporary file
// of path's directory, and only then appears at path, which must not exist.
func Backup(ctx context.Context, dsn, path string) error {
	src, err := PathFromURL(dsn)
	if err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("sqlite: backup: %s already exists: give a new file name", path)
	}
	tmp, err := tempFile(path)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer os.Remove(tmp)
	db, err := sql.Open("sqlite", fileURL(src)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("sqlite: backup of %s: %w", src, err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := IntegrityCheck(ctx, tmp); err != nil {
		return fmt.Errorf("sqlite: backup: the copy of %s: %w", src, err)
	}
	// A link, unlike a rename, never replaces a file created meanwhile.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// Restore replaces the database of dsn with the backup at path. It checks
// the backup (integrity_check, and that it is a weave database) and a copy
// of it before touching anything, and refuses with ErrInUse while a process
// has the database open. The database it replaces is kept beside it; its
// name is returned ("" when there was none).
func Restore(ctx context.Context, path, dsn string) (saved string, err error) {
	dst, err := PathFromURL(dsn)
	if err != nil {
		return "", err
	}
	if err := checkBackup(ctx, path); err != nil {
		return "", fmt.Errorf("sqlite: restore: backup %s: %w", path, err)
	}
	if err := refuseInUse(dst); err != nil {
		return "", err
	}
	if err := privfile.MkdirAll(filepath.Dir(dst)); err != nil {
		return "", err
	}
	tmp, err := tempFile(dst)
	if err != nil {
		return "", fmt.Errorf("sqlite: restore: %w", err)
	}
	defer os.Remove(tmp)
	if err := copyFile(path, tmp); err != nil {
		return "", fmt.Errorf("sqlite: restore: copy %s: %w", path, err)
	}
	if err := IntegrityCheck(ctx, tmp); err != nil {
		return "", fmt.Errorf("sqlite: restore: the copy of %s: %w", path, err)
	}

	if _, err := os.Stat(dst); err == nil {
		// Fold the old database's WAL into it so the kept file is whole.
		if err := checkpoint(ctx, dst); err != nil {
			return "", fmt.Errorf("sqlite: restore: checkpoint %s: %w", dst, err)
		}
		if err := refuseInUse(dst); err != nil {
			return "", err
		}
		saved = dst + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dst, saved); err != nil {
			return "", fmt.Errorf("sqlite: restore: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	// The old database's WAL and index must not be applied to the backup.
	for _, p := range []string{dst + "-wal", dst + "-shm", dst + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return saved, fmt.Errorf("sqlite: restore: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return saved, fmt.Errorf("sqlite: restore: %w", err)
	}
	return saved, syncDir(filepath.Dir(dst))
}

// IntegrityCheck runs PRAGMA integrity_check on the database file at path,
// read-only.
func IntegrityCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", fileURL(path)+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check(5)") // the first five problems
	if err != nil {
		return fmt.Errorf("integrity_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity_check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("integrity_check failed: %q", problems)
	}
	return nil
}

// checkBackup verifies that path is an intact weave database.
func checkBackup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	if err := IntegrityCheck(ctx, path); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", fileURL(path)+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM weave_schema").Scan(&n); err != nil {
		return fmt.Errorf("not a weave database: %w", err)
	}
	return nil
}

func refuseInUse(path string) error {
	busy, err := InUse(path)
	if err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	if busy {
		return fmt.Errorf("%w: %s is open in another process: stop `weave serve` (and any other weave command) using it, then restore", ErrInUse, path)
	}
	return nil
}

// checkpoint copies the WAL of the database at path into it and empties
// the WAL.
func checkpoint(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", fileURL(path)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

func fileURL(path string) string { return "file:" + (&url.URL{Path: path}).EscapedPath() }

// tempFile creates an empty 0600 file next to path.
func tempFile(path string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = errors.Join(f.Chmod(privfile.FileMode), f.Close())
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
