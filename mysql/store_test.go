package mysql_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
	"github.com/weave-sync/weave/storagetest"
)

// openStore opens a migrated store on url, closed when t ends.
func openStore(t testing.TB, url string, opts mysql.Options) *sqlstore.Store {
	t.Helper()
	s, err := mysql.OpenStore(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStorage(t *testing.T) {
	url := dbtest.MySQL(t)
	s := openStore(t, url, mysql.Options{})
	storagetest.Run(t, func(*testing.T) weave.Store { return s },
		storagetest.WithBatchLifetime(func(t *testing.T, lifetime time.Duration) weave.Store {
			return openStore(t, url, mysql.Options{Store: sqlstore.StoreOptions{BatchLifetime: lifetime}})
		}))
}

func TestOpenStoreMigrates(t *testing.T) {
	ctx := context.Background()
	url := dbtest.MySQL(t)
	if _, err := mysql.OpenStore(ctx, url, mysql.Options{NoMigrate: true}); err == nil {
		t.Fatal("OpenStore with NoMigrate accepted an empty database")
	}
	s := openStore(t, url, mysql.Options{})
	ms, err := mysql.Migrations(sqlstore.SetStorage)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.DB().Status(ctx, sqlstore.SetStorage, ms)
	if err != nil || st.Pending() || st.Current == 0 {
		t.Fatalf("after OpenStore: %+v, %v", st, err)
	}
	// A second process finds the schema current.
	openStore(t, url, mysql.Options{NoMigrate: true})
	// The token schema is a set of its own, in the same database or not.
	if _, err := mysql.OpenTokenDB(ctx, url, mysql.TokenDBOptions{}); err == nil {
		t.Fatal("OpenTokenDB without Migrate accepted a database without the token schema")
	}
	tok, err := mysql.OpenTokenDB(ctx, url, mysql.TokenDBOptions{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	tok.Close()
}

// TestIDsBytewise: ids that differ only in case or trailing spaces are
// different records (a PAD SPACE or case-insensitive collation would merge
// them), and they sort bytewise.
func TestIDsBytewise(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, dbtest.MySQL(t), mysql.Options{})
	ids := []string{"a", "a ", "a  ", "A", " a", "b", "B"}
	var us []weave.Update
	for _, id := range ids {
		us = append(us, weave.Update{ID: id, Payload: weave.Some("p[" + id + "]")})
	}
	if _, err := s.PostBSOs(ctx, 1, "tabs", us, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		b, err := s.GetBSO(ctx, 1, "tabs", id)
		if err != nil || b.ID != id || b.Payload != "p["+id+"]" {
			t.Errorf("GetBSO(%q) = %q %q, %v", id, b.ID, b.Payload, err)
		}
	}
	p, err := s.GetBSOs(ctx, 1, "tabs", weave.Query{Sort: weave.SortOldest, IDsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range p.BSOs {
		got = append(got, b.ID)
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ids in order %q, want %q", got, want)
	}
	if _, err := s.DeleteBSO(ctx, 1, "tabs", "a ", weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CollectionCounts(ctx, 1); err != nil || n["tabs"] != int64(len(ids)-1) {
		t.Errorf("after deleting one id: %v, %v", n, err)
	}
}

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, openStore(b, dbtest.MySQL(b), mysql.Options{}))
}
