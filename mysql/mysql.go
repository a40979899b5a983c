// Package mysql runs weave on MariaDB (10.6+) and MySQL (8.0+) through
// go-sql-driver/mysql.
//
// Connections are configured for weave's SQL, whatever the server's
// defaults: utf8mb4, strict sql_mode with ANSI_QUOTES (so "identifiers" mean
// the same as on PostgreSQL and SQLite), found-rows counting for UPDATE (the
// RowsAffected of an UPDATE is the number of matched rows, as elsewhere) and
// client-side parameter interpolation (one round trip per statement instead
// of prepare + execute + close), which the write pool also uses to send
// several statements of a transaction in one packet (pipeline.go). The
// interpolation is the driver's: it escapes for utf8mb4 (it refuses the
// multi-byte character sets where escaping is unsafe), and by quote
// doubling when the server says NO_BACKSLASH_ESCAPES is on.
//
// Isolation: Open returns two pools. The write pool runs READ COMMITTED:
// writers serialise on the rows they lock (SELECT ... FOR UPDATE), and
// READ COMMITTED takes no gap locks, so concurrent writers of different
// users never deadlock on each other's index gaps, and every statement after
// a lock sees what the previous lock holder committed. The read pool runs
// REPEATABLE READ, so that a read-only transaction sees one snapshot (the
// collection timestamp and its records agree). (With binary logging on,
// READ COMMITTED writes need binlog_format ROW or MIXED, the defaults of
// MySQL 8 and MariaDB.)
//
// Importing the package registers the backend of mysql:// and mariadb://
// URLs with sqlstore.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

//go:embed migrations
var migrations embed.FS

var backend = &sqlstore.Backend{
	Name:        "mysql",
	Schemes:     []string{"mysql", "mariadb"},
	Form:        "mysql://USER:PASS@HOST:PORT/DB",
	DefaultPort: "3306",
	Open:        Open,
	Migrations:  migrations,
	DDL: sqlstore.DDL{
		Rerunnable:   true,
		TableOptions: " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		Bytes:        "VARBINARY({n})",
		LongText:     "MEDIUMTEXT",
		// InnoDB keeps the counter across restarts (MariaDB 10.2.4+,
		// MySQL 8), so a number is never handed out twice.
		Identity: "{type} NOT NULL AUTO_INCREMENT PRIMARY KEY",
		RowID:    "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
		RowKey:   "BIGINT",
	},
	BackupTool: "mysqldump --single-transaction",
}

func init() { sqlstore.Register(backend) }

// Migrations returns the MariaDB/MySQL migrations of a schema set.
func Migrations(set string) ([]sqlstore.Migration, error) {
	return backend.MigrationsOf(set)
}

// strictMode is the session sql_mode: errors instead of silent truncation
// or conversion, and ANSI quoting of identifiers.
const strictMode = "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,ANSI_QUOTES'"

// ParseURL turns a mysql://USER:PASS@HOST:PORT/DB?params URL into a driver
// configuration. Query parameters are go-sql-driver/mysql DSN parameters
// (e.g. tls=true, timeout=3s) or session variables; weave's defaults apply
// to those left out (multiStatements=false or interpolateParams=false turn
// off the write pool's pipeline, pipeline.go; maxAllowedPacket is read from
// the server unless given). "mariadb://" is accepted as a synonym. The host
// defaults to 127.0.0.1 and the port to 3306; the database may be empty
// (for administrative connections).
func ParseURL(rawURL string) (*mysqldrv.Config, error) {
	u, err := sqlstore.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return nil, fmt.Errorf("mysql: %s is not a mysql:// URL (want mysql://USER:PASS@HOST:PORT/DB)", sqlstore.RedactURL(rawURL))
	}
	q := u.Query()
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "3306"
	}
	// The driver derives settings from the address (the TLS server name),
	// so it parses the parameters with the address in place. The user,
	// password and database name are set afterwards: they need no escaping
	// that way.
	cfg, err := mysqldrv.ParseDSN("tcp(" + net.JoinHostPort(host, port) + ")/?" + u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("mysql: URL %s: %w", sqlstore.RedactURL(rawURL), err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(cfg.DBName, "/") {
		return nil, fmt.Errorf("mysql: URL %s: database name may not contain /", sqlstore.RedactURL(rawURL))
	}

	if !q.Has("interpolateParams") {
		cfg.InterpolateParams = true
	}
	if !q.Has("multiStatements") {
		// Only the write pool sends multi-statement packets (pipeConn).
		cfg.MultiStatements = true
	}
	if !q.Has("maxAllowedPacket") {
		// The driver's default (64 MiB) is not the server's (16 MiB on
		// MariaDB): a statement between the two goes out and the server
		// drops the connection. Read from the server at connect, it makes
		// the driver refuse to interpolate a statement that would not fit
		// (driver.ErrSkip), so that pipeConn sends what it joined one
		// statement at a time.
		cfg.MaxAllowedPacket = 0
	}
	if !q.Has("clientFoundRows") {
		cfg.ClientFoundRows = true
	}
	if !q.Has("collation") && !q.Has("charset") {
		cfg.Collation = "utf8mb4_general_ci"
	}
	if !q.Has("timeout") {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = strictMode
	}
	cfg.Logger = &mysqldrv.NopLogger{} // errors are returned and classified
	return cfg, nil
}

// Open connects to the MariaDB/MySQL database of a mysql:// URL and checks
// that it answers. The database must exist; its schema is applied with
// sqlstore.DB.Migrate and Migrations.
func Open(ctx context.Context, rawURL string, opts sqlstore.PoolOptions) (*sqlstore.DB, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("mysql: URL %s names no database (want mysql://USER:PASS@HOST:PORT/DB)", sqlstore.RedactURL(rawURL))
	}
	return OpenConfig(ctx, cfg, opts)
}

// OpenConfig is Open with a driver configuration, e.g. from ParseURL with
// TLS settings added. cfg is not modified.
func OpenConfig(ctx context.Context, cfg *mysqldrv.Config, opts sqlstore.PoolOptions) (*sqlstore.DB, error) {
	opts = opts.WithDefaults(sqlstore.DefaultServerConns())
	lockWait := int64(math.Ceil(opts.LockTimeout.Seconds()))
	// Write transactions go out in fewer round trips (pipeConn) where the
	// driver may send several statements in one packet, their arguments
	// interpolated. Reads are one statement each and need neither.
	pipeline := cfg.MultiStatements && cfg.InterpolateParams
	readCfg := cfg.Clone()
	readCfg.MultiStatements = false
	write, err := openPool(cfg, pipeline,
		"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
		fmt.Sprintf("SET SESSION innodb_lock_wait_timeout = %d", lockWait))
	if err != nil {
		return nil, err
	}
	read, err := openPool(readCfg, false, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
	if err != nil {
		write.Close()
		return nil, err
	}
	db, err := sqlstore.OpenServer(ctx, write, read, Dialect{}, opts)
	if err != nil {
		return nil, fmt.Errorf("mysql: connect to %s as %s: %w", cfg.Addr, cfg.User, err)
	}
	return db, nil
}

func openPool(cfg *mysqldrv.Config, pipeline bool, session ...string) (*sql.DB, error) {
	c, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	return sql.OpenDB(sessionConnector{Connector: c, session: session, pipeline: pipeline}), nil
}

// sessionConnector runs session set-up statements on every new connection.
// (Isolation levels cannot go through DSN parameters portably: the variable
// is tx_isolation on MariaDB before 11.1 and transaction_isolation on MySQL 8.)
type sessionConnector struct {
	driver.Connector
	session []string
	// pipeline wraps connections in pipeConn.
	pipeline bool
}

func (c sessionConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.connect(ctx)
	if err != nil || !c.pipeline {
		return conn, err
	}
	pc, err := newPipeConn(conn, c.connect)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return pc, nil
}

// connect opens a driver connection and sets up its session.
func (c sessionConnector) connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("mysql: driver connection cannot execute statements")
	}
	for _, s := range c.session {
		if _, err := ex.ExecContext(ctx, s, nil); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// Dialect is MariaDB/MySQL's sqlstore.Dialect.
type Dialect struct{}

var _ sqlstore.Dialect = Dialect{}

// Name implements sqlstore.Dialect.
func (Dialect) Name() string { return "mysql" }

// Rebind implements sqlstore.Dialect: MySQL takes ? as is.
func (Dialect) Rebind(q string) string { return q }

// Server error numbers (MariaDB and MySQL share them unless noted).
const (
	erConCount          = 1040 // too many connections
	erServerShutdown    = 1053
	erAbortingConn      = 1152
	erNetReadError      = 1158
	erNetReadInterrupt  = 1159
	erNetErrorOnWrite   = 1160
	erNetWriteInterrupt = 1161
	erNewAbortingConn   = 1184
	erLockWaitTimeout   = 1205
	erTooManyUserConns  = 1203
	erLockDeadlock      = 1213
	erOptionPrevents    = 1290 // e.g. --read-only during a failover
	erQueryInterrupted  = 1317
	erReadOnlyMode      = 1836
	erConnectionKilled  = 1927 // MariaDB
	erUnknownError      = 1105 // among others, a prepared statement's value over max_allowed_packet
	erNetPacketTooLarge = 1153 // a packet over max_allowed_packet; the server closes the connection
	erCheckRead         = 1020 // MariaDB snapshot isolation: record changed since last read
	erDiskFull          = 1021
	erRecordFileFull    = 1114 // "The table is full": InnoDB cannot grow its tablespace
	crServerGone        = 2006
	crServerLost        = 2013
	erSessionWasKilled  = 3169 // MySQL 8
	erClientIdleTimeout = 4031 // MySQL 8
)

func number(err error) int {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		return int(me.Number)
	}
	return -1
}

// Upsert implements sqlstore.Dialect.
func (Dialect) Upsert(key, update []string) string {
	return sqlstore.DuplicateKeyUpsert(key, update)
}

// UpsertSet implements sqlstore.Dialect.
func (Dialect) UpsertSet(key, set []string) string {
	return sqlstore.DuplicateKeyUpsertSet(key, set)
}

// Inserted implements sqlstore.Dialect.
func (Dialect) Inserted(column string) string { return sqlstore.DuplicateKeyInserted(column) }

// ForUpdate implements sqlstore.Dialect.
func (Dialect) ForUpdate() string { return " FOR UPDATE" }

// LockingJoins implements sqlstore.Dialect.
func (Dialect) LockingJoins() bool { return true }

// Retryable implements sqlstore.Dialect: deadlocks and lock wait timeouts.
// (A lock wait timeout only rolls back the statement; sqlstore rolls back
// the rest of the transaction before it retries.)
func (Dialect) Retryable(err error) bool {
	switch number(err) {
	case erLockDeadlock, erLockWaitTimeout, erCheckRead:
		return true
	}
	return false
}

// Unavailable implements sqlstore.Dialect: the server cannot be reached,
// went away mid-call, is shutting down, is out of connections or is
// read-only.
func (Dialect) Unavailable(err error) bool {
	switch number(err) {
	case erConCount, erServerShutdown, erAbortingConn, erNetReadError, erNetReadInterrupt,
		erNetErrorOnWrite, erNetWriteInterrupt, erNewAbortingConn, erTooManyUserConns,
		erOptionPrevents, erQueryInterrupted, erReadOnlyMode, erConnectionKilled,
		crServerGone, crServerLost, erSessionWasKilled, erClientIdleTimeout:
		return true
	}
	var ne net.Error
	return errors.Is(err, mysqldrv.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// StorageFull implements sqlstore.Dialect.
func (Dialect) StorageFull(err error) bool {
	n := number(err)
	return n == erDiskFull || n == erRecordFileFull
}

// TooLarge implements sqlstore.TooLargeDialect: a write beyond the
// server's max_allowed_packet. The driver refuses to send a packet over
// the limit it knows (ErrPktTooLarge); the server refuses a packet over its
// own (1153: when the URL's maxAllowedPacket is above it) and a prepared
// statement's value over it, which the driver sends in pieces (1105 with a
// message naming the variable: MariaDB and MySQL 8 both). A statement too
// large to be interpolated becomes a prepared one (pipeline.go), so the
// last is how a record over the server's limit fails.
func (Dialect) TooLarge(err error) bool {
	if errors.Is(err, mysqldrv.ErrPktTooLarge) {
		return true
	}
	var me *mysqldrv.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	return me.Number == erNetPacketTooLarge ||
		me.Number == erUnknownError && strings.Contains(me.Message, "max_allowed_packet")
}

// WarnPacketLimit logs a warning when db is a MariaDB/MySQL database whose
// max_allowed_packet is below the largest record payload lim accepts: a
// write of such a record would fail (413, weave.ErrTooLarge) until the
// server's limit is raised. Other databases have no such limit.
//
// The payload is what counts, not the largest statement: a statement
// over the packet limit goes as a prepared statement whose large values
// the driver sends in pieces (pipeline.go), and the server refuses only a
// single value over its max_allowed_packet. The value read is the write
// pool's sessions' (the server's global one when they connected).
func WarnPacketLimit(ctx context.Context, db *sqlstore.DB, lim weave.Limits, log *slog.Logger) {
	if _, ok := db.Dialect.(Dialect); !ok {
		return
	}
	var server int64
	if err := db.Write.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&server); err != nil {
		log.Warn("could not read the database's max_allowed_packet", "err", err)
		return
	}
	need := lim.MaxRecordPayloadBytes
	if server >= need {
		return
	}
	fix := (need + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB: the server rounds down to 1 KiB
	log.Warn(fmt.Sprintf("the database's max_allowed_packet (%d bytes) is below the largest record payload weave accepts "+
		"(%d bytes, --max-record-payload-bytes): a write of a record whose payload is over max_allowed_packet will be refused "+
		"with 413. Raise it on the server: SET GLOBAL max_allowed_packet = %d, and max_allowed_packet = %dM under [mysqld] "+
		"in my.cnf to keep it after a restart; then restart weave (its open connections keep the old value)", server, need, fix, fix>>20),
		"max_allowed_packet", server, "max_record_payload_bytes", need)
}

// migrationLock names the lock that serialises migrations. GET_LOCK names
// are server-wide, so the name carries a digest of the database name.
const migrationLock = "CONCAT('weave:migrate:', MD5(DATABASE()))"

// LockMigrations implements sqlstore.Dialect with GET_LOCK on the
// connection, waiting until ctx's deadline (at most 10 minutes).
func (Dialect) LockMigrations(ctx context.Context, conn *sql.Conn) (func(), error) {
	wait := int64(600)
	if dl, ok := ctx.Deadline(); ok {
		wait = max(0, int64(time.Until(dl).Seconds()))
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+migrationLock+", ?)", wait).Scan(&got); err != nil {
		return nil, err
	}
	if !got.Valid || got.Int64 != 1 {
		return nil, errors.New("timed out waiting for another process's migration (GET_LOCK)")
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// If the connection broke, the server released the lock already.
		_, _ = conn.ExecContext(ctx, "DO RELEASE_LOCK("+migrationLock+")")
	}, nil
}

// CacheStatements implements sqlstore.Dialect: the driver interpolates
// parameters client-side, and statements prepared on every connection
// would only use up the server's statement limit.
func (Dialect) CacheStatements() bool { return false }

// InProcess implements sqlstore.Dialect: a server.
func (Dialect) InProcess() bool { return false }

// InsertOrder implements sqlstore.Dialect: InnoDB keeps rows in primary key order.
func (Dialect) InsertOrder() bool { return false }

// TimestampRow implements sqlstore.Dialect: a read that matches nothing
// would otherwise cost a second round trip.
func (Dialect) TimestampRow() bool { return true }

// ReadTxOptions implements sqlstore.Dialect: the read pool's sessions run
// REPEATABLE READ already, and naming it would cost a round trip per
// transaction.
func (Dialect) ReadTxOptions() *sql.TxOptions { return &sql.TxOptions{ReadOnly: true} }

// Returning implements sqlstore.Dialect: MySQL 8 has no INSERT ...
// RETURNING; the driver reports LastInsertId.
func (Dialect) Returning(string) string { return "" }

// SyncIdentity implements sqlstore.Dialect: AUTO_INCREMENT continues after
// the largest value.
func (Dialect) SyncIdentity(string, string) string { return "" }

// ColumnsQuery implements sqlstore.Dialect.
func (Dialect) ColumnsQuery() string {
	return `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE()`
}
