//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package postgres

import "net"

// socketAlive cannot look at the socket here; pgx's idle ping remains.
func socketAlive(net.Conn) bool { return true }
