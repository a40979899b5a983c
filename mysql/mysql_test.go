package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
)

func TestParseURL(t *testing.T) {
	cfg, err := mysql.ParseURL("mysql://weave:p%40ss:w%2Frd@db.example:3307/sync")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "weave" || cfg.Passwd != "p@ss:w/rd" || cfg.Addr != "db.example:3307" || cfg.DBName != "sync" || cfg.Net != "tcp" {
		t.Errorf("parsed %+v", cfg)
	}
	if !cfg.InterpolateParams || !cfg.MultiStatements || !cfg.ClientFoundRows || cfg.Timeout != 5*time.Second || cfg.ParseTime || cfg.MaxAllowedPacket != 0 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if !strings.Contains(cfg.Params["sql_mode"], "STRICT_ALL_TABLES") {
		t.Errorf("sql_mode %q", cfg.Params["sql_mode"])
	}

	cfg, err = mysql.ParseURL("mariadb://root@/?interpolateParams=false&multiStatements=false&maxAllowedPacket=1048576&timeout=1s&sql_mode=%27ANSI%27&tls=false")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:3306" || cfg.DBName != "" || cfg.InterpolateParams || cfg.MultiStatements || cfg.MaxAllowedPacket != 1<<20 || cfg.Timeout != time.Second || cfg.Params["sql_mode"] != "'ANSI'" {
		t.Errorf("overrides not kept: %+v", cfg)
	}
	cfg, err = mysql.ParseURL("mysql://u@[::1]/db")
	if err != nil || cfg.Addr != "[::1]:3306" {
		t.Errorf("IPv6: %+v, %v", cfg, err)
	}
	cfg, err = mysql.ParseURL("mysql://u@db.example:3307/db?tls=true")
	if err != nil || cfg.TLS == nil || cfg.TLS.ServerName != "db.example" {
		t.Errorf("TLS: %+v, %v", cfg, err)
	}

	for _, bad := range []string{"postgres://u:secret@h/db", "mysql://u:secret@h/db?interpolateParams=maybe", "mysql://u:secret@h/a/b", "mysql://u:secret@h:port/db"} {
		_, err := mysql.ParseURL(bad)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseURL(%q) error shows the password: %v", bad, err)
		}
	}
	if _, err := mysql.Open(context.Background(), "mysql://u:secret@127.0.0.1/", sqlstore.PoolOptions{}); err == nil || !strings.Contains(err.Error(), "names no database") {
		t.Errorf("Open without a database: %v", err)
	}
}

func TestClassify(t *testing.T) {
	d := mysql.Dialect{}
	retry := []error{
		&mysqldrv.MySQLError{Number: 1213, Message: "Deadlock found"},
		fmt.Errorf("wrapped: %w", &mysqldrv.MySQLError{Number: 1205}),
	}
	down := []error{
		&mysqldrv.MySQLError{Number: 1053, Message: "Server shutdown in progress"},
		&mysqldrv.MySQLError{Number: 1927, Message: "Connection was killed"},
		&mysqldrv.MySQLError{Number: 2006},
		&mysqldrv.MySQLError{Number: 2013},
		&mysqldrv.MySQLError{Number: 1040},
		mysqldrv.ErrInvalidConn,
		io.ErrUnexpectedEOF,
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		fmt.Errorf("x: %w", syscall.ECONNRESET),
	}
	other := []error{
		&mysqldrv.MySQLError{Number: 1062, Message: "Duplicate entry"},
		&mysqldrv.MySQLError{Number: 1064, Message: "syntax"},
		errors.New("boom"),
	}
	sqltest.CheckClassify(t, d, retry, down, other)
	tooLarge := []error{
		mysqldrv.ErrPktTooLarge,
		&mysqldrv.MySQLError{Number: 1153, Message: "Got a packet bigger than 'max_allowed_packet' bytes"},
		&mysqldrv.MySQLError{Number: 1105, Message: "Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_allowed_packet' bytes"},
	}
	db := &sqlstore.DB{Dialect: d}
	for _, err := range tooLarge {
		if k := weave.ErrorKindOf(db.Classify(fmt.Errorf("insert: %w", err))); k != weave.KindTooLarge {
			t.Errorf("%v: kind %v, want %v", err, k, weave.KindTooLarge)
		}
	}
	for _, err := range append(other, &mysqldrv.MySQLError{Number: 1105, Message: "Unknown error"}) {
		if d.TooLarge(err) {
			t.Errorf("%v: too large", err)
		}
	}
	if q := "SELECT ? FROM t WHERE a = '?'"; d.Rebind(q) != q {
		t.Errorf("Rebind changed %q", q)
	}
	if got := d.Upsert([]string{"uid", "id"}, []string{"v"}); got != " ON DUPLICATE KEY UPDATE v = VALUES(v)" {
		t.Errorf("Upsert = %q", got)
	}
}

// TestSession checks the settings every connection gets.
func TestSession(t *testing.T) {
	db, err := mysql.Open(context.Background(), dbtest.MySQL(t), sqlstore.PoolOptions{LockTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode, charset string
	var lockWait int
	if err := db.Write.QueryRow("SELECT @@SESSION.sql_mode, @@SESSION.character_set_connection, @@SESSION.innodb_lock_wait_timeout").Scan(&mode, &charset, &lockWait); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"STRICT_ALL_TABLES", "ANSI_QUOTES", "NO_ENGINE_SUBSTITUTION"} {
		if !strings.Contains(mode, m) {
			t.Errorf("sql_mode %q lacks %s", mode, m)
		}
	}
	if charset != "utf8mb4" || lockWait != 3 {
		t.Errorf("charset %q, innodb_lock_wait_timeout %d", charset, lockWait)
	}
	for pool, want := range map[string]string{"write": "READ-COMMITTED", "read": "REPEATABLE-READ"} {
		p := db.Write
		if pool == "read" {
			p = db.Read
		}
		// tx_isolation on MariaDB < 11.1, transaction_isolation on MySQL 8.
		var got string
		err := p.QueryRow("SELECT @@SESSION.transaction_isolation").Scan(&got)
		if err != nil {
			err = p.QueryRow("SELECT @@SESSION.tx_isolation").Scan(&got)
		}
		if err != nil || got != want {
			t.Errorf("%s pool isolation %q (%v), want %s", pool, got, err, want)
		}
	}
}

// BenchmarkInterpolateParams compares client-side interpolation (weave's
// default: one round trip per statement) with server-side prepared
// statements (prepare, execute, close) on a primary-key read and an upsert.
func BenchmarkInterpolateParams(b *testing.B) {
	url := dbtest.MySQL(b)
	setup, err := mysql.Open(context.Background(), url, sqlstore.PoolOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	if _, err := setup.Write.Exec("CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(64) NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	for _, interp := range []bool{true, false} {
		db, err := mysql.Open(context.Background(), fmt.Sprintf("%s?interpolateParams=%v", url, interp), sqlstore.PoolOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("interpolate=%v/select", interp), func(b *testing.B) {
			var v string
			for i := 0; b.Loop(); i++ {
				err := db.Read.QueryRow("SELECT v FROM kv WHERE k = ?", i%100).Scan(&v)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("interpolate=%v/upsert", interp), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := db.Write.Exec("INSERT INTO kv (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)", i%100, "value"); err != nil {
					b.Fatal(err)
				}
			}
		})
		db.Close()
	}
}
