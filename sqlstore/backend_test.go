package sqlstore_test

import (
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

func TestLookup(t *testing.T) {
	for url, want := range map[string]string{
		"sqlite:///var/lib/weave/weave.db":        "sqlite",
		"mysql://u:p@db:3306/weave":               "mysql",
		"mariadb://u@db/weave":                    "mysql",
		"MySQL://u@db/weave":                      "mysql",
		"postgres://u@db/weave?sslmode=disable":   "postgres",
		"postgresql://u@db/weave?sslmode=disable": "postgres",
	} {
		b, err := sqlstore.Lookup(url)
		if err != nil || b.Name != want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", url, b, err, want)
		}
	}
	for _, url := range []string{"oracle://u:secret@db/x", "weave.db", "", "sqlite3:///x.db"} {
		_, err := sqlstore.Lookup(url)
		if err == nil {
			t.Errorf("Lookup(%q) succeeded", url)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "unsupported database URL") || strings.Contains(msg, "secret") {
			t.Errorf("Lookup(%q): %q", url, msg)
		}
		for _, form := range []string{"sqlite:///", "mysql://", "postgres://"} {
			if !strings.Contains(msg, form) {
				t.Errorf("Lookup(%q): %q does not show the form %s", url, msg, form)
			}
		}
	}
	var names []string
	for _, b := range sqlstore.Backends() {
		names = append(names, b.Name)
	}
	if !slices.Equal(names, []string{"mysql", "postgres", "sqlite"}) {
		t.Errorf("Backends() = %v", names)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"mysql://weave:s3cret@db:3306/weave":        "mysql://weave:xxxxx@db:3306/weave",
		"postgres://weave@db/weave?sslmode=disable": "postgres://weave@db/weave?sslmode=disable",
		"sqlite:///var/lib/weave/weave.db":          "sqlite:///var/lib/weave/weave.db",
		"oracle://u:s3cret@db/x":                    "oracle://u:xxxxx@db/x",
		"mysql://u:s3cret@db:port%zz/x":             "mysql://…@db:port%zz/x",
		"mysql:u:s3cret@db":                         "(unparsable URL)",
		"no password here %zz":                      "no password here %zz",
	} {
		if got := sqlstore.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestMigrationSets checks that every backend has the same schema sets with
// the same migrations, so that a set or migration added to one backend and
// forgotten in another fails here.
func TestMigrationSets(t *testing.T) {
	// migrations maps each set (a directory) to its migrations' names.
	migrations := func(b *sqlstore.Backend) map[string][]string {
		dirs, err := fs.ReadDir(b.Migrations, "migrations")
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		// The sets of the backend's own files and the shared ones.
		sets := []string{sqlstore.SetStorage, sqlstore.SetTokens, sqlstore.SetAccounts, sqlstore.SetPush}
		for _, d := range dirs {
			if d.IsDir() {
				sets = append(sets, d.Name())
			}
		}
		out := map[string][]string{}
		for _, set := range sets {
			ms, err := b.MigrationsOf(set)
			if err != nil {
				t.Fatalf("%s: %v", b.Name, err)
			}
			out[set] = nil
			for _, m := range ms {
				out[set] = append(out[set], m.Name)
			}
		}
		return out
	}
	all := sqlstore.Backends()
	first := migrations(all[0])
	for _, s := range []string{sqlstore.SetStorage, sqlstore.SetTokens, sqlstore.SetAccounts, sqlstore.SetPush} {
		if len(first[s]) == 0 {
			t.Errorf("%s has no migrations of set %s", all[0].Name, s)
		}
	}
	for _, b := range all[1:] {
		got := migrations(b)
		if !maps.EqualFunc(got, first, slices.Equal) {
			t.Errorf("schema sets differ:\n%s: %v\n%s: %v", all[0].Name, first, b.Name, got)
		}
	}
}

func TestPoolDefaults(t *testing.T) {
	o := sqlstore.PoolOptions{}.WithDefaults(7)
	want := sqlstore.PoolOptions{MaxOpenConns: 7, MaxIdleConns: 7, ConnMaxLifetime: 30 * time.Minute,
		ConnMaxIdleTime: 5 * time.Minute, Timeout: 10 * time.Second, LockTimeout: 5 * time.Second, MaxRetries: 3}
	if o != want {
		t.Errorf("defaults: %+v; want %+v", o, want)
	}
	o = sqlstore.PoolOptions{MaxOpenConns: 2, MaxIdleConns: 9, MaxRetries: -1, Timeout: time.Second}.WithDefaults(7)
	if o.MaxOpenConns != 2 || o.MaxIdleConns != 2 || o.MaxRetries != 0 || o.Timeout != time.Second {
		t.Errorf("explicit values: %+v", o)
	}
	if n := sqlstore.DefaultServerConns(); n < 8 || n > 16 {
		t.Errorf("DefaultServerConns() = %d", n)
	}
}
