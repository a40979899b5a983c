package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/sqltest"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

func TestParseURL(t *testing.T) {
	cfg, err := postgres.ParseURL("postgres://weave:p%40ss@db.example:5433/sync?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "weave" || cfg.Password != "p@ss" || cfg.Host != "db.example" || cfg.Port != 5433 || cfg.Database != "sync" || cfg.TLSConfig != nil {
		t.Errorf("parsed %+v", cfg)
	}
	if cfg.ConnectTimeout != 5*time.Second || cfg.RuntimeParams["application_name"] != "weave" {
		t.Errorf("defaults not applied: timeout %v, params %v", cfg.ConnectTimeout, cfg.RuntimeParams)
	}
	cfg, err = postgres.ParseURL("postgresql://u@127.0.0.1/db?connect_timeout=2&application_name=node7&search_path=weave")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnectTimeout != 2*time.Second || cfg.RuntimeParams["application_name"] != "node7" || cfg.RuntimeParams["search_path"] != "weave" {
		t.Errorf("overrides not kept: timeout %v, params %v", cfg.ConnectTimeout, cfg.RuntimeParams)
	}
	for _, bad := range []string{"mysql://u:secret@h/db", "postgres://u:secret@h/db?sslmode=sometimes", "postgres://u:secret@h:port/db"} {
		_, err := postgres.ParseURL(bad)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseURL(%q) error shows the password: %v", bad, err)
		}
	}
}

func TestRebind(t *testing.T) {
	d := postgres.Dialect{}
	for in, want := range map[string]string{
		"SELECT 1": "SELECT 1",
		"SELECT a FROM t WHERE b = ? AND c IN (?, ?)": "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)",
		"SELECT '?', \"a?\" FROM t WHERE x = ?":       "SELECT '?', \"a?\" FROM t WHERE x = $1",
		"SELECT 'it''s ?' WHERE x = ?":                "SELECT 'it''s ?' WHERE x = $1",
		"SELECT x -- why?\nFROM t WHERE y = ?":        "SELECT x -- why?\nFROM t WHERE y = $1",
		"SELECT /* ? */ ? , ?":                        "SELECT /* ? */ $1 , $2",
		"UPDATE t SET a = ? WHERE 'open":              "UPDATE t SET a = $1 WHERE 'open",
	} {
		if got := d.Rebind(in); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", in, got, want)
		}
	}
	var b strings.Builder
	var w strings.Builder
	for i := 1; i <= 12; i++ {
		b.WriteString("?,")
		fmt.Fprintf(&w, "$%d,", i)
	}
	if got := d.Rebind(b.String()); got != w.String() {
		t.Errorf("Rebind of 12 = %q", got)
	}
}

func TestClassify(t *testing.T) {
	d := postgres.Dialect{}
	retry := []error{
		&pgconn.PgError{Code: "40001"},
		fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01"}),
		&pgconn.PgError{Code: "55P03"},
	}
	down := []error{
		&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"},
		&pgconn.PgError{Code: "57P02"},
		&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"},
		&pgconn.PgError{Code: "08006"},
		&pgconn.PgError{Code: "53300", Message: "too many clients"},
		pgconn.ErrConnClosed,
		io.ErrUnexpectedEOF,
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
	}
	other := []error{
		&pgconn.PgError{Code: "23505"},
		&pgconn.PgError{Code: "42601"},
		errors.New("boom"),
	}
	sqltest.CheckClassify(t, d, retry, down, other)
	if got := d.Upsert([]string{"uid", "id"}, []string{"v"}); got != " ON CONFLICT (uid, id) DO UPDATE SET v = excluded.v" {
		t.Errorf("Upsert = %q", got)
	}
}

// TestSession checks the settings every connection gets.
func TestSession(t *testing.T) {
	db, err := postgres.Open(context.Background(), dbtest.Postgres(t), sqlstore.PoolOptions{LockTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for pool, want := range map[string][2]string{"write": {"read committed", "3s"}, "read": {"repeatable read", "0"}} {
		p := db.Write
		if pool == "read" {
			p = db.Read
		}
		var iso, lock, enc string
		if err := p.QueryRow("SELECT current_setting('default_transaction_isolation'), current_setting('lock_timeout'), current_setting('server_encoding')").Scan(&iso, &lock, &enc); err != nil {
			t.Fatal(err)
		}
		if iso != want[0] || lock != want[1] || enc != "UTF8" {
			t.Errorf("%s pool: isolation %q, lock_timeout %q, encoding %q; want %v, UTF8", pool, iso, lock, enc, want)
		}
	}
}
