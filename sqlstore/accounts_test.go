package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// openAccountStores yields a migrated AccountStore on every backend.
func forEachAccountBackend(t *testing.T, test func(t *testing.T, s *sqlstore.AccountStore)) {
	ctx := context.Background()
	type backend struct {
		name string
		open func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error)
	}
	for _, b := range []backend{
		{"sqlite", func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error) {
			db, err := sqlite.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "accounts.db"), sqlite.Options{})
			ms, _ := sqlite.Migrations(sqlstore.SetAccounts)
			return db, ms, err
		}},
		{"mysql", func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error) {
			db, err := mysql.Open(ctx, dbtest.MySQL(t), mysql.Options{})
			ms, _ := mysql.Migrations(sqlstore.SetAccounts)
			return db, ms, err
		}},
		{"postgres", func(t *testing.T) (*sqlstore.DB, []sqlstore.Migration, error) {
			db, err := postgres.Open(ctx, dbtest.Postgres(t), postgres.Options{})
			ms, _ := postgres.Migrations(sqlstore.SetAccounts)
			return db, ms, err
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			db, ms, err := b.open(t)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if len(ms) != 1 {
				t.Fatalf("%d accounts migrations", len(ms))
			}
			if err := db.Migrate(ctx, sqlstore.SetAccounts, ms, nil); err != nil {
				t.Fatal(err)
			}
			if err := db.CheckSchema(ctx, sqlstore.SetAccounts, ms); err != nil {
				t.Fatal(err)
			}
			test(t, sqlstore.NewAccountStore(db))
		})
	}
}

func testAccount(uid, email string) accounts.Account {
	k := bytes.Repeat([]byte{1}, 32)
	return accounts.Account{UID: uid, Email: email, NormEmail: accounts.NormalizeEmail(email), AuthSalt: k, VerifyHash: k,
		ScryptN: 1024, KA: k, WrapWrapKb: k, CreatedAt: 1, VerifierSet: 1, KeysChanged: 1}
}

func TestAccountStore(t *testing.T) {
	forEachAccountBackend(t, func(t *testing.T, s *sqlstore.AccountStore) {
		ctx := context.Background()
		uid := "0123456789abcdef0123456789abcdef"
		sess := accounts.Token{ID: "aa" + string(bytes.Repeat([]byte("0"), 62)), Kind: accounts.KindSession, UID: uid, AuthKey: []byte{1, 2}, Data: []byte(`{}`), CreatedAt: 5}
		dev := accounts.Token{ID: "dd" + string(bytes.Repeat([]byte("0"), 30)), Kind: accounts.KindDevice, UID: uid, Data: []byte(`{"name":"x"}`), CreatedAt: 6}
		if err := s.CreateAccount(ctx, testAccount(uid, "Who@Example.org"), []accounts.Token{sess, dev}); err != nil {
			t.Fatal(err)
		}
		// Duplicate email (any case) fails and creates nothing: not even its tokens.
		other := accounts.Token{ID: "bb" + string(bytes.Repeat([]byte("0"), 62)), Kind: accounts.KindSession, UID: "ff", Data: []byte(`{}`)}
		if err := s.CreateAccount(ctx, testAccount("ffffffffffffffffffffffffffffffff", "who@example.ORG"), []accounts.Token{other}); !errors.Is(err, accounts.ErrEmailExists) {
			t.Fatalf("duplicate: %v", err)
		}
		if _, err := s.Token(ctx, other.ID); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("half-created token: %v", err)
		}
		a, err := s.AccountByEmail(ctx, "who@example.org")
		if err != nil || a.UID != uid || a.Email != "Who@Example.org" || !bytes.Equal(a.KA, bytes.Repeat([]byte{1}, 32)) {
			t.Fatalf("by email: %+v %v", a, err)
		}
		if _, err := s.AccountByUID(ctx, "nope"); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatal(err)
		}
		got, err := s.Token(ctx, sess.ID)
		if err != nil || !bytes.Equal(got.AuthKey, []byte{1, 2}) || got.Kind != accounts.KindSession {
			t.Fatalf("token: %+v %v", got, err)
		}

		// TakeToken: exactly one of many concurrent takers wins.
		kf := accounts.Token{ID: "cc" + string(bytes.Repeat([]byte("0"), 62)), Kind: accounts.KindKeyFetch, UID: uid, Data: []byte(`{}`)}
		if err := s.PutToken(ctx, kf); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.TakeToken(ctx, kf.ID); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, accounts.ErrNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d takers won", wins)
		}

		// UpdateCredentials drops tokens except devices, inserts new ones.
		a.VerifierSet, a.KeysChanged = 99, 98
		newSess := accounts.Token{ID: "ee" + string(bytes.Repeat([]byte("0"), 62)), Kind: accounts.KindSession, UID: uid, Data: []byte(`{}`)}
		if err := s.UpdateCredentials(ctx, a, []accounts.Token{newSess}); err != nil {
			t.Fatal(err)
		}
		sessions, _ := s.Tokens(ctx, uid, accounts.KindSession)
		devs, _ := s.Tokens(ctx, uid, accounts.KindDevice)
		if len(sessions) != 1 || sessions[0].ID != newSess.ID || len(devs) != 1 {
			t.Fatalf("after update: %v %v", sessions, devs)
		}
		if a2, _ := s.AccountByUID(ctx, uid); a2.VerifierSet != 99 || a2.KeysChanged != 98 {
			t.Fatalf("update: %+v", a2)
		}

		// Expiry purge.
		exp := accounts.Token{ID: "ab" + string(bytes.Repeat([]byte("0"), 62)), Kind: accounts.KindCode, UID: uid, Data: []byte(`{}`), ExpiresAt: 10}
		s.PutToken(ctx, exp)
		if n, err := s.PurgeExpired(ctx, 11); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}

		// Signing keys: the first stored kid wins a race.
		if err := s.AddSigningKey(ctx, accounts.SigningKey{KID: "k1", PrivatePEM: "a", CreatedAt: 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSigningKey(ctx, accounts.SigningKey{KID: "k1", PrivatePEM: "b", CreatedAt: 2}); err != nil {
			t.Fatal(err)
		}
		if ks, err := s.SigningKeys(ctx); err != nil || len(ks) != 1 || ks[0].PrivatePEM != "a" {
			t.Fatalf("keys: %v %v", ks, err)
		}

		s.CreateAccount(ctx, testAccount("00000000000000000000000000000001", "a@x.org"), nil)
		if l, err := s.ListAccounts(ctx, "", 1); err != nil || len(l) != 1 || l[0].UID != "00000000000000000000000000000001" {
			t.Fatalf("list: %v %v", l, err)
		}
		if l, err := s.ListAccounts(ctx, "00000000000000000000000000000001", 10); err != nil || len(l) != 1 || l[0].UID != uid {
			t.Fatalf("list page 2: %v %v", l, err)
		}
		if err := s.DeleteAccount(ctx, uid); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAccount(ctx, uid); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatal(err)
		}
		if devs, _ := s.Tokens(ctx, uid, accounts.KindDevice); len(devs) != 0 {
			t.Fatal("tokens outlived the account")
		}
	})
}
