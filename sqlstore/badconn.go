package sqlstore

import "database/sql/driver"

// driverBadConn is the driver's signal that a connection broke.
var driverBadConn = driver.ErrBadConn
