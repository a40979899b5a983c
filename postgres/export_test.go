package postgres

import "time"

// Pipelined reports whether a driver connection (from sql.Conn.Raw) sends
// through pipeConn.
func Pipelined(driverConn any) bool {
	_, ok := driverConn.(*pipeConn)
	return ok
}

// SetRollbackTimeout sets the bound of pipeConn's ROLLBACK until the
// returned func restores it. Not for parallel tests.
func SetRollbackTimeout(d time.Duration) (restore func()) {
	old := rollbackTimeout
	rollbackTimeout = d
	return func() { rollbackTimeout = old }
}
