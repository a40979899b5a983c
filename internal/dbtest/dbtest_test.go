package dbtest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/sqlstore"
)

func TestNames(t *testing.T) {
	a, b := NewName(), NewName()
	if a == b {
		t.Fatalf("NewName twice gave %s", a)
	}
	if len(a) > 63 || !strings.HasPrefix(a, namePrefix) {
		t.Fatalf("NewName = %q", a)
	}
	now := time.Now()
	if isStale(a, now) {
		t.Errorf("fresh name %s counted as stale", a)
	}
	if !isStale(a, now.Add(staleAfter+time.Minute)) {
		t.Errorf("old name %s not counted as stale", a)
	}
	for _, n := range []string{"weave", "weavetest_", "weavetest_x_1", "other_1_2"} {
		if isStale(n, now.Add(100*staleAfter)) {
			t.Errorf("isStale(%q) = true", n)
		}
	}
}

func TestURLs(t *testing.T) {
	u, err := WithDatabase("postgres://postgres@127.0.0.1:5432/?sslmode=disable", "db1")
	if err != nil || u != "postgres://postgres@127.0.0.1:5432/db1?sslmode=disable" {
		t.Errorf("WithDatabase = %q, %v", u, err)
	}
	u, err = WithHost("mysql://root:pw@127.0.0.1:3306/db1?x=1", "127.0.0.1:9")
	if err != nil || u != "mysql://root:pw@127.0.0.1:9/db1?x=1" {
		t.Errorf("WithHost = %q, %v", u, err)
	}
	for in, want := range map[string]string{
		"mysql://root@127.0.0.1:3306/":          "127.0.0.1:3306",
		"mysql://root@/db":                      "127.0.0.1:3306",
		"postgres://u@localhost/db":             "localhost:5432",
		"postgres://u@[::1]:6000/?sslmode=none": "[::1]:6000",
	} {
		if got, err := Addr(in); err != nil || got != want {
			t.Errorf("Addr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// fakeTB records Skip and Fatal instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

type stop struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = sprint(args...)
	panic(stop{})
}
func (f *fakeTB) Fatal(args ...any) { f.failed = sprint(args...); panic(stop{}) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	panic(stop{})
}

func sprint(args ...any) string {
	var b strings.Builder
	for _, a := range args {
		if s, ok := a.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

func run(f *fakeTB, fn func(testing.TB) string) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
		}
	}()
	fn(f)
}

// deadPort returns a loopback port nobody listens on.
func deadPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachableSkipsOrFails(t *testing.T) {
	dead := deadPort(t)
	for _, tc := range []struct {
		env, url, name string
		fresh          func(testing.TB) string
	}{
		{EnvMySQL, "mysql://root@" + dead + "/", "MariaDB/MySQL", MySQL},
		{EnvPostgres, "postgres://postgres@" + dead + "/?sslmode=disable", "PostgreSQL", Postgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.env, tc.url)
			t.Setenv(EnvRequire, "")
			f := &fakeTB{TB: t}
			run(f, tc.fresh)
			t.Log(f.skipped)
			if f.skipped == "" || f.failed != "" {
				t.Fatalf("unreachable server: skipped %q, failed %q; want a skip", f.skipped, f.failed)
			}
			for _, want := range []string{tc.name, tc.env, "WEAVE_REQUIRE_BACKENDS=1", dead} {
				if !strings.Contains(f.skipped, want) {
					t.Errorf("skip message %q does not mention %q", f.skipped, want)
				}
			}
			t.Setenv(EnvRequire, "1")
			f = &fakeTB{TB: t}
			run(f, tc.fresh)
			if f.failed == "" || f.skipped != "" {
				t.Fatalf("unreachable server with %s=1: skipped %q, failed %q; want a failure", EnvRequire, f.skipped, f.failed)
			}
		})
	}
}

func TestFreshDatabase(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh func(testing.TB) string
		b     *backend
		open  func(context.Context, string) (*sqlstore.DB, error)
		list  string
	}{
		{"mysql", MySQL, mysqlBackend, func(ctx context.Context, u string) (*sqlstore.DB, error) {
			return sqlstore.Open(ctx, u, sqlstore.PoolOptions{})
		}, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"},
		{"postgres", Postgres, postgresBackend, func(ctx context.Context, u string) (*sqlstore.DB, error) {
			return sqlstore.Open(ctx, u, sqlstore.PoolOptions{})
		}, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var url, name string
			t.Run("create", func(t *testing.T) {
				url = tc.fresh(t)
				name = url[strings.LastIndex(url, "/")+1:]
				name, _, _ = strings.Cut(name, "?")
				ctx := context.Background()
				db, err := tc.open(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				var n int
				if err := db.Read.QueryRowContext(ctx, tc.list).Scan(&n); err != nil || n != 0 {
					t.Fatalf("new database has %d tables (%v)", n, err)
				}
				if _, err := db.Write.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
					t.Fatal(err)
				}
				// A second database in the same test is another one.
				if other := tc.fresh(t); other == url {
					t.Fatalf("two fresh databases share the URL %s", url)
				}
			})
			if t.Skipped() || url == "" {
				return
			}
			// The subtest's cleanup dropped the database.
			ctx := context.Background()
			admin, err := tc.b.open(ctx, ServerURL(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			var n int
			q := "SELECT COUNT(*) FROM pg_database WHERE datname = $1"
			if tc.name == "mysql" {
				q = "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?"
			}
			if err := admin.Read.QueryRowContext(ctx, q, name).Scan(&n); err != nil || n != 0 {
				t.Fatalf("database %s still exists after the test (%d, %v)", name, n, err)
			}
		})
	}
}

// TestServers says which database servers the backend tests will use: run
// it with -v to see it (go test hides the skips of passing packages).
func TestServers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh func(testing.TB) string
	}{{"MariaDB/MySQL", MySQL}, {"PostgreSQL", Postgres}} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.fresh(t)
			t.Logf("%s tests run against %s", tc.name, sqlstore.RedactURL(url))
		})
	}
}
