//go:build unix

package privfile_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/weave-sync/weave/internal/privfile"
)

// TestModesWhateverTheUmask: files are 0600 and new directories 0700 under
// a permissive umask and under one that would leave them unusable.
func TestModesWhateverTheUmask(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o277} {
		old := syscall.Umask(mask)
		dir := filepath.Join(t.TempDir(), "x", "y")
		file := filepath.Join(dir, "secret")
		err := privfile.WriteFile(file, []byte("s"))
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("umask %04o: %v", mask, err)
		}
		for p, want := range map[string]os.FileMode{file: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("umask %04o: %s: %v %v, want %04o", mask, p, fi.Mode().Perm(), err, want)
			}
		}
		if err := privfile.WriteFile(file, []byte("t")); !os.IsExist(err) {
			t.Errorf("second write: %v, want exists", err)
		}
	}
}

func TestTighten(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o664); err != nil {
		t.Fatal(err)
	}
	if changed, err := privfile.Tighten(p); !changed || err != nil {
		t.Fatalf("Tighten: %v %v", changed, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	if changed, err := privfile.Tighten(filepath.Join(t.TempDir(), "missing")); changed || err != nil {
		t.Fatalf("missing file: %v %v", changed, err)
	}
}
