//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/weave-sync/weave/tokenserver"
)

// TestDataDirFilesPrivate: in a packaged data directory that already exists
// with mode 0755, under umask 022, everything weave keeps there is 0600:
// the database with its -wal and -shm, and the master secret, including
// one an older weave left readable by others.
func TestDataDirFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "var-lib-weave")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secretPath := filepath.Join(dir, "master-secret")
	if err := os.WriteFile(secretPath, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := tokenserver.MasterSecret("", dir); err != nil || s != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("masterSecret: %q, %v", s, err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"db", "migrate", "--data-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("db migrate: %d %s", code, errb.String())
	}
	for _, name := range []string{"master-secret", "weave.db", "weave.db-wal", "weave.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if os.IsNotExist(err) && name != "weave.db" && name != "master-secret" {
			continue // removed by SQLite at a clean close
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
	// A fresh secret in a directory weave creates.
	fresh := filepath.Join(t.TempDir(), "new")
	if _, err := tokenserver.MasterSecret("", fresh); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{fresh: 0o700, filepath.Join(fresh, "master-secret"): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want %04o", p, fi.Mode().Perm(), want)
		}
	}
}
