//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package postgres

import (
	"errors"
	"net"
	"syscall"
)

// socketAlive reports whether an idle connection's socket is still open: a
// non-blocking peek must find nothing to read. An end of file or a reset
// means the server is gone, and data on an idle connection can only be the
// server's goodbye (e.g. "terminating connection due to administrator
// command"), so both count as dead.
//
// The peek goes through Control, not Read: pgx may have a background reader
// parked on the socket, which holds the read lock.
func socketAlive(c net.Conn) bool {
	sc, ok := netConn(c).(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var perr error
	var buf [1]byte
	err = raw.Control(func(fd uintptr) {
		n, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	switch {
	case err != nil:
		return false
	case errors.Is(perr, syscall.EAGAIN) || errors.Is(perr, syscall.EWOULDBLOCK):
		return true
	default: // data (n > 0), end of file (n == 0) or a socket error
		_ = n
		return false
	}
}
