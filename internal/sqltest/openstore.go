package sqltest

import (
	"context"
	"testing"

	"github.com/weave-sync/weave/sqlstore"
)

// Opener is an adapter's OpenStore and OpenTokenDB, reduced to what
// RunOpenStore varies.
type Opener struct {
	Fresh       func(t testing.TB) string
	OpenStore   func(ctx context.Context, url string, noMigrate bool) (*sqlstore.Store, error)
	OpenTokenDB func(ctx context.Context, url string, migrate bool) (*sqlstore.TokenDB, error)
	Migrations  func(set string) ([]sqlstore.Migration, error)
}

// RunOpenStore checks that OpenStore migrates an empty database (and with
// NoMigrate refuses it), that a second process finds the schema current,
// and that the token schema is a set of its own.
func RunOpenStore(t *testing.T, o Opener) {
	ctx := context.Background()
	url := o.Fresh(t)
	if s, err := o.OpenStore(ctx, url, true); err == nil {
		s.Close()
		t.Fatal("OpenStore with NoMigrate accepted an empty database")
	}
	s, err := o.OpenStore(ctx, url, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := o.Migrations(sqlstore.SetStorage)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.DB().Status(ctx, sqlstore.SetStorage, ms)
	if err != nil || st.Pending() || st.Current == 0 {
		t.Fatalf("after OpenStore: %+v, %v", st, err)
	}
	second, err := o.OpenStore(ctx, url, true)
	if err != nil {
		t.Fatalf("a second process does not find the schema current: %v", err)
	}
	second.Close()
	if tok, err := o.OpenTokenDB(ctx, url, false); err == nil {
		tok.Close()
		t.Fatal("OpenTokenDB without Migrate accepted a database without the token schema")
	}
	tok, err := o.OpenTokenDB(ctx, url, true)
	if err != nil {
		t.Fatal(err)
	}
	tok.Close()
}
