// Package privfile creates the files and directories weave keeps secrets
// in (databases, the master secret, certificates, backups, keys) readable
// by their owner only, whatever the process umask: 0600 files, 0700
// directories.
//
// The umask can only take bits away, but a packaged data directory that
// already exists (say /var/lib/weave, 0755) must not make weave's own files
// readable by other local users, so the mode of every file is set
// explicitly rather than left to the creating library.
package privfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileMode and DirMode are the modes weave gives what it creates.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// MkdirAll creates dir and any missing parents with mode 0700. Directories
// that already exist keep their mode: an operator's /var/lib/weave is
// theirs to set, and the files weave puts in it are private anyway.
func MkdirAll(dir string) error {
	if dir == "" || dir == "." {
		return nil
	}
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
			return nil
		}
		return err
	}
	// A umask such as 0277 would leave the directory unusable.
	return os.Chmod(dir, DirMode)
}

// Create creates path exclusively (it must not exist) with mode 0600,
// creating its directory with MkdirAll.
func Create(path string) (*os.File, error) {
	if err := MkdirAll(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// WriteFile writes data to a new file at path (it must not exist) with mode
// 0600; on failure nothing is left behind.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// Tighten removes group and other permissions from path if it exists, and
// reports whether it changed anything. It mends files an older weave (or a
// permissive umask) created readable by others.
func Tighten(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
		return false, nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&^0o077); err != nil {
		return false, err
	}
	return true, nil
}

// Exposed reports whether path is readable or writable by group or others.
func Exposed(fi fs.FileInfo) bool { return fi.Mode().Perm()&0o077 != 0 }
