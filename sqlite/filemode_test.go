//go:build unix

package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// withUmask runs the rest of the test under a umask. The umask is
// process-wide, so tests using it must not be parallel.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// TestFilesPrivate: in a data directory that already exists and is
// readable by everyone (a packaged /var/lib/weave), under the usual umask
// 022, the database and its -wal and -shm files are 0600.
func TestFilesPrivate(t *testing.T) {
	withUmask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "var-lib-weave")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "weave.db")
	db, err := sqlite.Open(context.Background(), "sqlite://"+path, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write.Exec(`CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('secret')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Read.Exec(`SELECT count(*) FROM t`); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		checkMode(t, p, 0o600)
	}
	// The operator's directory keeps its mode.
	checkMode(t, dir, 0o755)
}

// TestFilesPrivateNewDir: a data directory weave creates is 0700, its
// database 0600, even under a permissive umask.
func TestFilesPrivateNewDir(t *testing.T) {
	withUmask(t, 0)
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "weave.db")
	db, err := sqlite.Open(context.Background(), "sqlite://"+path, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write.Exec(`CREATE TABLE t (x TEXT)`); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Dir(dir), 0o700)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		checkMode(t, p, 0o600)
	}
}

// TestFilesTightened: a database an older weave left readable by others,
// with its -wal and -shm, is made private when opened.
func TestFilesTightened(t *testing.T) {
	withUmask(t, 0o022)
	dir := t.TempDir()
	path := filepath.Join(dir, "weave.db")
	db, err := sqlite.Open(context.Background(), "sqlite://"+path, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec(`CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('secret')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	db, err = sqlite.Open(context.Background(), "sqlite://"+path, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("count: %d, %v", n, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			checkMode(t, p, 0o600)
		}
	}
}
