//go:build unix

package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// shmDMS is the byte of the -shm file on which every connection to a WAL
// database holds a shared lock for as long as it is open (SQLite's unix
// VFS: UNIX_SHM_DMS, after the 8 WAL lock bytes that start at 120).
const shmDMS = 128

// InUse reports whether another process has the SQLite database at path
// open (a WAL connection, or a lock on the database file). It asks the
// kernel which POSIX locks others hold, the ones SQLite itself uses, so
// it sees idle connections of a running server too. Locks of the calling
// process are not seen.
func InUse(path string) (bool, error) {
	for _, probe := range []struct {
		file       string
		start, len int64
	}{
		{path + "-shm", shmDMS, 1},
		{path, 0, 0}, // any byte: the pending, reserved and shared locks
	} {
		f, err := os.OpenFile(probe.file, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: probe.start, Len: probe.len}
		err = syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk)
		f.Close()
		if err != nil {
			return false, err
		}
		if lk.Type != syscall.F_UNLCK {
			return true, nil
		}
	}
	return false, nil
}
