package postgres

import (
	"context"
	"net"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// shouldPing decides, each time the pool hands out a connection, whether to
// ping it first. database/sql then replaces a connection that fails the
// ping, so a request never runs on a connection the server has dropped
// (restart, failover, idle timeout, a cut network) and fails with an error
// that cannot tell whether the statement reached the server. pgx pings
// connections idle for over a second; weave also pings those whose socket
// shows the server's side closed, found without a round trip.
func shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	return p.IdleDuration > time.Second || !socketAlive(p.Conn.PgConn().Conn())
}

// netConn unwraps a TLS connection to its TCP connection.
func netConn(c net.Conn) net.Conn {
	if w, ok := c.(interface{ NetConn() net.Conn }); ok {
		return w.NetConn()
	}
	return c
}
