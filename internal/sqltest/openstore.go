package sqltest

import (
	"context"
	"testing"

	"github.com/weave-sync/weave/sqlstore"
)

// RunOpenStore checks, on a fresh database of a registered backend, that
// sqlstore.OpenStore migrates an empty database (and without migrate
// refuses it), that a second process finds the schema current, and that
// the token schema is a set of its own.
func RunOpenStore(t *testing.T, fresh func(t testing.TB) string) {
	ctx := context.Background()
	url := fresh(t)
	var pool sqlstore.PoolOptions
	if s, err := sqlstore.OpenStore(ctx, url, pool, false, sqlstore.StoreOptions{}); err == nil {
		s.Close()
		t.Fatal("OpenStore without migrate accepted an empty database")
	}
	s, err := sqlstore.OpenStore(ctx, url, pool, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	be, err := sqlstore.Lookup(url)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := be.MigrationsOf(sqlstore.SetStorage)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.DB().Status(ctx, sqlstore.SetStorage, ms)
	if err != nil || st.Pending() || st.Current == 0 {
		t.Fatalf("after OpenStore: %+v, %v", st, err)
	}
	second, err := sqlstore.OpenStore(ctx, url, pool, false, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatalf("a second process does not find the schema current: %v", err)
	}
	second.Close()
	if tok, err := sqlstore.OpenTokenDB(ctx, url, pool, false, sqlstore.TokenDBOptions{}); err == nil {
		tok.Close()
		t.Fatal("OpenTokenDB without migrate accepted a database without the token schema")
	}
	tok, err := sqlstore.OpenTokenDB(ctx, url, pool, true, sqlstore.TokenDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok.Close()
}

// OpenStore opens a migrated store on url (of any registered backend),
// closed when t ends.
func OpenStore(t testing.TB, url string, opts sqlstore.StoreOptions) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenStore(context.Background(), url, sqlstore.PoolOptions{}, true, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Classifier is the part of a Dialect that sorts driver errors.
type Classifier interface {
	Retryable(error) bool
	Unavailable(error) bool
}

// CheckClassify checks that d finds exactly the errors of retry retryable,
// exactly those of down unavailable, and those of other neither.
func CheckClassify(t *testing.T, d Classifier, retry, down, other []error) {
	t.Helper()
	for _, err := range retry {
		if !d.Retryable(err) || d.Unavailable(err) {
			t.Errorf("%v: want retryable only", err)
		}
	}
	for _, err := range down {
		if d.Retryable(err) || !d.Unavailable(err) {
			t.Errorf("%v: want unavailable only", err)
		}
	}
	for _, err := range other {
		if d.Retryable(err) || d.Unavailable(err) {
			t.Errorf("%v: want neither", err)
		}
	}
}
