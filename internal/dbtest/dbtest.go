// Package dbtest gives tests a fresh, empty database on the local MariaDB/
// MySQL or PostgreSQL server, created under a unique name for the test and
// dropped when it ends.
//
// The servers are found through WEAVE_TEST_MYSQL_URL (default
// mysql://root@127.0.0.1:3306/) and WEAVE_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/?sslmode=disable); the user needs the
// right to create and drop databases. When a server cannot be reached the
// test is skipped with a message saying how to run it, unless
// WEAVE_REQUIRE_BACKENDS=1 (as in CI), which makes it a failure.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/faultproxy"
	_ "github.com/weave-sync/weave/mysql" // the backends of the servers
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

// Environment variables read by this package.
const (
	EnvMySQL    = "WEAVE_TEST_MYSQL_URL"
	EnvPostgres = "WEAVE_TEST_POSTGRES_URL"
	EnvRequire  = "WEAVE_REQUIRE_BACKENDS"
)

// Default server URLs.
const (
	DefaultMySQL    = "mysql://root@127.0.0.1:3306/"
	DefaultPostgres = "postgres://postgres@127.0.0.1:5432/?sslmode=disable"
)

// namePrefix starts the name of every database this package creates; the
// creation time (Unix seconds) follows, so that leftovers of killed test runs
// can be recognised and dropped.
const namePrefix = "weavetest_"

// staleAfter is the age past which a leftover test database is dropped.
const staleAfter = 3 * time.Hour

// backend describes one server kind.
type backend struct {
	name     string // for messages: "MariaDB/MySQL"
	env, def string
	form     string // the URL form, for messages
	// adminDB is the database administrative connections name when the
	// server URL names none: MySQL URLs must name one, and every user may
	// use information_schema.
	adminDB string
	list    string // lists database names
	create  func(name string) string
	drop    func(name string) string

	mu     sync.Mutex
	probed map[string]error // server URL → why it is unreachable (nil: it answers)
	clean  sync.Once
}

var (
	mysqlBackend = &backend{
		name: "MariaDB/MySQL", env: EnvMySQL, def: DefaultMySQL, form: "mysql://USER:PASS@HOST:PORT/",
		adminDB: "information_schema",
		list:    "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'weavetest\\_%'",
		create: func(n string) string {
			// The usual server default, case-insensitive: tables that
			// need exact comparisons must say so themselves.
			return "CREATE DATABASE " + n + " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
		},
		drop: func(n string) string { return "DROP DATABASE IF EXISTS " + n },
	}
	postgresBackend = &backend{
		name: "PostgreSQL", env: EnvPostgres, def: DefaultPostgres, form: "postgres://USER:PASS@HOST:PORT/?sslmode=disable",
		list:   "SELECT datname FROM pg_database WHERE datname LIKE 'weavetest\\_%'",
		create: func(n string) string { return "CREATE DATABASE " + n + " ENCODING 'UTF8' TEMPLATE template0" },
		// WITH (FORCE) ends sessions a failed test left behind (PG 13+).
		drop: func(n string) string { return "DROP DATABASE IF EXISTS " + n + " WITH (FORCE)" },
	}
	servers = map[string]*backend{"mysql": mysqlBackend, "postgres": postgresBackend}
)

// open makes an administrative connection to the server, through the
// registered backend of its URL.
func (b *backend) open(ctx context.Context, server string) (*sqlstore.DB, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("dbtest: bad server URL %s: %w", sqlstore.RedactURL(server), err)
	}
	if b.adminDB != "" && strings.Trim(u.Path, "/") == "" {
		u.Path = "/" + b.adminDB
	}
	return sqlstore.Open(ctx, u.String(), sqlstore.PoolOptions{MaxOpenConns: 2, MaxRetries: -1})
}

// MySQL creates an empty database on the MariaDB/MySQL server for t and
// returns its mysql:// URL. The database is dropped when t ends.
func MySQL(t testing.TB) string { return mysqlBackend.fresh(t) }

// Postgres creates an empty database on the PostgreSQL server for t and
// returns its postgres:// URL. The database is dropped when t ends.
func Postgres(t testing.TB) string { return postgresBackend.fresh(t) }

// SQLite returns the sqlite:// URL of a new database file in t's temporary
// directory.
func SQLite(t testing.TB) string {
	return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "weave.db"))
}

// Fresh returns an empty database of kind ("sqlite", "mysql" or
// "postgres") for t.
func Fresh(t testing.TB, kind string) string {
	t.Helper()
	switch kind {
	case "mysql":
		return MySQL(t)
	case "postgres":
		return Postgres(t)
	case "sqlite":
		return SQLite(t)
	}
	t.Fatalf("dbtest: no backend %q", kind)
	return ""
}

// ServerURL returns the URL of the MariaDB/MySQL ("mysql") or PostgreSQL
// ("postgres") test server, from the environment or the default.
func ServerURL(kind string) string {
	b := servers[kind]
	if b == nil {
		panic("dbtest: unknown backend " + kind)
	}
	return b.serverURL()
}

func (b *backend) serverURL() string {
	if u := os.Getenv(b.env); u != "" {
		return u
	}
	return b.def
}

// Required reports whether WEAVE_REQUIRE_BACKENDS asks that tests fail
// rather than skip when a database server is missing.
func Required() bool {
	v, _ := strconv.ParseBool(os.Getenv(EnvRequire))
	return v
}

func (b *backend) fresh(t testing.TB) string {
	t.Helper()
	server := b.serverURL()
	if reach := b.reachable(server); reach != nil {
		msg := fmt.Sprintf("%s tests skipped: no server at %s (%v). To run them, start %s there or set %s=%s (a user that may create databases). %s=1 turns this skip into a failure.",
			b.name, sqlstore.RedactURL(server), reach, b.name, b.env, b.form, EnvRequire)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := b.open(ctx, server)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", b.name, err)
	}
	defer admin.Close()
	b.clean.Do(func() { b.dropStale(ctx, t, admin) })

	name := NewName()
	if _, err := admin.Write.ExecContext(ctx, b.create(name)); err != nil {
		t.Fatalf("dbtest: %s: create database %s: %v", b.name, name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := b.open(ctx, server)
		if err == nil {
			defer admin.Close()
			_, err = admin.Write.ExecContext(ctx, b.drop(name))
		}
		if err != nil {
			t.Errorf("dbtest: %s: drop database %s: %v", b.name, name, err)
		}
	})
	u, err := WithDatabase(server, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// reachable probes a server once per process and URL.
func (b *backend) reachable(server string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err, ok := b.probed[server]; ok {
		return err
	}
	if b.probed == nil {
		b.probed = map[string]error{}
	}
	err := b.probe(server)
	b.probed[server] = err
	return err
}

// probe tells whether the server answers at all. Errors other than "cannot
// reach" (bad password, missing rights) are not a reason to skip: they
// surface as failures when the database is created.
func (b *backend) probe(server string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := b.open(ctx, server)
	if err == nil {
		db.Close()
		return nil
	}
	var ne net.Error
	if errors.Is(err, weave.ErrUnavailable) || errors.As(err, &ne) {
		return err
	}
	return nil
}

// dropStale drops test databases older than staleAfter, left behind by
// test runs that were killed before their cleanup ran.
func (b *backend) dropStale(ctx context.Context, t testing.TB, admin *sqlstore.DB) {
	rows, err := admin.Write.QueryContext(ctx, b.list)
	if err != nil {
		t.Logf("dbtest: %s: list old test databases: %v", b.name, err)
		return
	}
	var stale []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil && isStale(n, time.Now()) {
			stale = append(stale, n)
		}
	}
	rows.Close()
	for _, n := range stale {
		if _, err := admin.Write.ExecContext(ctx, b.drop(n)); err != nil {
			t.Logf("dbtest: %s: drop old test database %s: %v", b.name, n, err)
		}
	}
}

func isStale(name string, now time.Time) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return false
	}
	sec, _, _ := strings.Cut(rest, "_")
	s, err := strconv.ParseInt(sec, 10, 64)
	return err == nil && now.Sub(time.Unix(s, 0)) > staleAfter
}

// NewName returns a unique database name: weavetest_<unix seconds>_<random>.
func NewName() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return namePrefix + strconv.FormatInt(time.Now().Unix(), 10) + "_" + hex.EncodeToString(r[:])
}

// WithDatabase returns the server URL with its path set to the database.
func WithDatabase(server, name string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("dbtest: bad server URL %s: %w", sqlstore.RedactURL(server), err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// WithHost returns the URL with its host:port replaced, e.g. to go through
// a fault proxy.
func WithHost(rawURL, hostport string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("dbtest: bad URL %s: %w", sqlstore.RedactURL(rawURL), err)
	}
	u.Host = hostport
	return u.String(), nil
}

// Addr returns the host:port a mysql:// or postgres:// URL points at, with
// the backend's default port filled in.
func Addr(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("dbtest: bad URL %s: %w", sqlstore.RedactURL(rawURL), err)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		b, err := sqlstore.Lookup(rawURL)
		if err != nil {
			return "", fmt.Errorf("dbtest: %w", err)
		}
		port = b.DefaultPort
	}
	return net.JoinHostPort(host, port), nil
}

// Proxy puts a fault proxy, closed when t ends, in front of the database
// server of url and returns it with the URL through it.
func Proxy(t testing.TB, url string) (*faultproxy.Proxy, string) {
	t.Helper()
	addr, err := Addr(url)
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	purl, err := WithHost(url, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return p, purl
}
