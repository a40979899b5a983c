package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/sqlstore"
)

// forEachAccountBackend yields a migrated AccountStore on every backend.
func forEachAccountBackend(t *testing.T, test func(t *testing.T, s *sqlstore.AccountStore)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			test(t, sqlstore.NewAccountStore(migratedDB(t, kind, sqlstore.SetAccounts, 2)))
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

// TestAccountCommands: the device command queue hands out increasing
// indexes that survive deletion of the newest command, reads from an
// inclusive index with a limit and says when the end is reached, hides
// expired commands, caps a device's queue, and is emptied by device
// deletion, account deletion and the purge.
func TestAccountCommands(t *testing.T) {
	forEachAccountBackend(t, func(t *testing.T, s *sqlstore.AccountStore) {
		ctx := context.Background()
		uid, dev, other := "0123456789abcdef0123456789abcdef", "dd000000000000000000000000000000", "ee000000000000000000000000000000"
		if err := s.CreateAccount(ctx, testAccount(uid, "cmd@example.org"), nil); err != nil {
			t.Fatal(err)
		}
		put := func(device string, data string, expires int64) int64 {
			t.Helper()
			idx, err := s.PutCommand(ctx, accounts.Command{UID: uid, DeviceID: device, Data: []byte(data), CreatedAt: 100, ExpiresAt: expires}, 0)
			if err != nil {
				t.Fatal(err)
			}
			return idx
		}
		// SwapTokenData: only over the data it was computed from, never a
		// deleted token.
		tok := accounts.Token{ID: dev, Kind: accounts.KindDevice, UID: uid, Data: []byte(`{"v":1}`), CreatedAt: 1}
		if err := s.PutToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SwapTokenData(ctx, dev, []byte(`{"v":0}`), []byte(`{"v":2}`)); ok || err != nil {
			t.Fatalf("swap over stale data: %v %v", ok, err)
		}
		if ok, err := s.SwapTokenData(ctx, dev, []byte(`{"v":1}`), []byte(`{"v":2}`)); !ok || err != nil {
			t.Fatalf("swap: %v %v", ok, err)
		}
		if got, _ := s.Token(ctx, dev); string(got.Data) != `{"v":2}` || got.ID != dev {
			t.Fatalf("after swap: %+v", got)
		}
		s.DeleteToken(ctx, dev)
		if ok, err := s.SwapTokenData(ctx, dev, []byte(`{"v":2}`), []byte(`{"v":3}`)); ok || err != nil {
			t.Fatalf("swap revived a deleted token: %v %v", ok, err)
		}
		if _, err := s.Token(ctx, dev); err == nil {
			t.Fatal("deleted token is back")
		}
		i1 := put(dev, `{"n":1}`, 1000)
		i2 := put(dev, `{"n":2}`, 1000)
		io := put(other, `{"n":"other"}`, 1000)
		i3 := put(dev, `{"n":3}`, 150) // expires first
		if !(i1 > 0 && i2 > i1 && io > i2 && i3 > io) {
			t.Fatalf("indexes %d %d %d %d", i1, i2, io, i3)
		}
		indexes := func(cs []accounts.Command) []int64 {
			var out []int64
			for _, c := range cs {
				out = append(out, c.Index)
			}
			return out
		}
		cs, last, err := s.Commands(ctx, uid, dev, 0, 100, 100)
		if err != nil || !last || len(cs) != 3 || string(cs[1].Data) != `{"n":2}` || cs[1].Index != i2 || cs[1].ExpiresAt != 1000 {
			t.Fatalf("all: %+v %v %v", cs, last, err)
		}
		if cs, last, _ = s.Commands(ctx, uid, dev, i2, 1, 100); last || len(cs) != 1 || cs[0].Index != i2 {
			t.Fatalf("from i2 limit 1: %v %v", indexes(cs), last)
		}
		if cs, last, _ = s.Commands(ctx, uid, dev, i2+1, 100, 100); !last || len(cs) != 1 || cs[0].Index != i3 {
			t.Fatalf("after i2: %v %v", indexes(cs), last)
		}
		// Expired: invisible at once, gone after the purge.
		if cs, last, _ = s.Commands(ctx, uid, dev, 0, 100, 151); !last || len(cs) != 2 {
			t.Fatalf("at 151: %v %v", indexes(cs), last)
		}
		if cs, _, _ = s.Commands(ctx, "ffffffffffffffffffffffffffffffff", dev, 0, 100, 100); len(cs) != 0 {
			t.Fatalf("another account reads the queue: %v", indexes(cs))
		}
		if n, err := s.PurgeExpired(ctx, 151); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		// Indexes only grow, even after the newest one is gone.
		if i4 := put(dev, `{"n":4}`, 1000); i4 <= i3 {
			t.Fatalf("index reused: %d after %d", i4, i3)
		}
		// The cap counts unexpired commands of the device.
		if _, err := s.PutCommand(ctx, accounts.Command{UID: uid, DeviceID: dev, Data: []byte(`{}`), CreatedAt: 100, ExpiresAt: 1000}, 3); !errors.Is(err, accounts.ErrQueueFull) {
			t.Fatalf("cap: %v", err)
		}
		if _, err := s.PutCommand(ctx, accounts.Command{UID: uid, DeviceID: other, Data: []byte(`{}`), CreatedAt: 100, ExpiresAt: 1000}, 3); err != nil {
			t.Fatalf("cap of another device: %v", err)
		}
		if err := s.DeleteCommands(ctx, uid, dev); err != nil {
			t.Fatal(err)
		}
		if cs, _, _ = s.Commands(ctx, uid, dev, 0, 100, 100); len(cs) != 0 {
			t.Fatalf("after device deletion: %v", indexes(cs))
		}
		if cs, _, _ = s.Commands(ctx, uid, other, 0, 100, 100); len(cs) != 2 {
			t.Fatalf("other device after deletion: %v", indexes(cs))
		}
		if err := s.DeleteAccount(ctx, uid); err != nil {
			t.Fatal(err)
		}
		if cs, _, _ = s.Commands(ctx, uid, other, 0, 100, 100); len(cs) != 0 {
			t.Fatalf("after account deletion: %v", indexes(cs))
		}
	})
}

// TestAccountRemoveDevice: RemoveDevice drops the device, its session and
// its queue and stores the revocation together, leaves other devices and
// other accounts alone, is a no-op for ids that name nothing of the account,
// and on a fault in its last statement undoes the others.
func TestAccountRemoveDevice(t *testing.T) {
	forEachAccountBackend(t, func(t *testing.T, s *sqlstore.AccountStore) {
		ctx := context.Background()
		uid, uid2 := "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
		id64 := func(p string) string { return p + string(bytes.Repeat([]byte("0"), 64-len(p))) }
		sess := accounts.Token{ID: id64("a1"), Kind: accounts.KindSession, UID: uid, Data: []byte(`{}`), CreatedAt: 1}
		dev := accounts.Token{ID: "d1000000000000000000000000000000", Kind: accounts.KindDevice, UID: uid, Data: []byte(`{}`), CreatedAt: 2}
		sess2 := accounts.Token{ID: id64("a2"), Kind: accounts.KindSession, UID: uid, Data: []byte(`{}`), CreatedAt: 3}
		dev2 := accounts.Token{ID: "d2000000000000000000000000000000", Kind: accounts.KindDevice, UID: uid, Data: []byte(`{}`), CreatedAt: 4}
		sess4 := accounts.Token{ID: id64("a4"), Kind: accounts.KindSession, UID: uid, Data: []byte(`{}`), CreatedAt: 6}
		// Another account's session: RemoveDevice under uid must not touch it.
		foreign := accounts.Token{ID: id64("a3"), Kind: accounts.KindSession, UID: uid2, Data: []byte(`{}`), CreatedAt: 5}
		if err := s.CreateAccount(ctx, testAccount(uid, "rm@example.org"), []accounts.Token{sess, dev, sess2, dev2, sess4}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, testAccount(uid2, "rm2@example.org"), []accounts.Token{foreign}); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{dev.ID, dev2.ID} {
			if _, err := s.PutCommand(ctx, accounts.Command{UID: uid, DeviceID: d, Data: []byte(`{}`), CreatedAt: 1, ExpiresAt: 1000}, 0); err != nil {
				t.Fatal(err)
			}
		}
		revoked := func(p string) *accounts.Token {
			return &accounts.Token{ID: id64(p), Kind: accounts.KindRevoked, UID: uid, Data: []byte(`{}`), CreatedAt: 7, ExpiresAt: 1000}
		}
		exists := func(id string) bool {
			t.Helper()
			_, err := s.Token(ctx, id)
			if err != nil && !errors.Is(err, accounts.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		queued := func(d string) int {
			t.Helper()
			cs, _, err := s.Commands(ctx, uid, d, 0, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			return len(cs)
		}

		if err := s.RemoveDevice(ctx, uid, dev.ID, sess.ID, revoked("e1")); err != nil {
			t.Fatal(err)
		}
		if exists(dev.ID) || exists(sess.ID) || queued(dev.ID) != 0 {
			t.Fatal("device, session or queue outlived RemoveDevice")
		}
		if got, err := s.Token(ctx, id64("e1")); err != nil || got.Kind != accounts.KindRevoked || got.UID != uid || got.ExpiresAt != 1000 {
			t.Fatalf("revocation: %+v %v", got, err)
		}
		if !exists(dev2.ID) || !exists(sess2.ID) || queued(dev2.ID) != 1 {
			t.Fatal("RemoveDevice touched another device")
		}

		// Nothing left to remove, another account's session named: no
		// error, nothing of the other account goes, the revocation is
		// still (re)written.
		if err := s.RemoveDevice(ctx, uid, dev.ID, foreign.ID, revoked("e1")); err != nil {
			t.Fatalf("removing a gone device: %v", err)
		}
		if !exists(foreign.ID) {
			t.Fatal("RemoveDevice deleted another account's token")
		}
		if err := s.RemoveDevice(ctx, uid, "d3000000000000000000000000000000", "", nil); err != nil {
			t.Fatalf("no session, no revocation: %v", err)
		}

		// EndToken (a sign-out): the session goes and the revocation is
		// stored, together; another account's token is left alone.
		if err := s.EndToken(ctx, uid, sess4.ID, *revoked("e3")); err != nil {
			t.Fatal(err)
		}
		if exists(sess4.ID) || !exists(id64("e3")) || !exists(dev2.ID) || queued(dev2.ID) != 1 {
			t.Fatal("EndToken: session kept, revocation missing, or another device touched")
		}
		if err := s.EndToken(ctx, uid, foreign.ID, *revoked("e3")); err != nil || !exists(foreign.ID) {
			t.Fatalf("EndToken of another account's token: %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.EndToken(cctx, uid, sess2.ID, *revoked("e4")); err == nil || !exists(sess2.ID) || exists(id64("e4")) {
			t.Fatalf("cancelled EndToken: %v, or it wrote", err)
		}

		// A cancelled context changes nothing.
		if err := s.RemoveDevice(cctx, uid, dev2.ID, sess2.ID, revoked("e2")); err == nil {
			t.Fatal("cancelled RemoveDevice succeeded")
		}
		if !exists(dev2.ID) || !exists(sess2.ID) || exists(id64("e2")) {
			t.Fatal("cancelled RemoveDevice wrote")
		}

		// A fault in the last statement (the queue's table is gone) rolls
		// back the revocation and both deletions.
		if _, err := s.DB().Write.ExecContext(ctx, `DROP TABLE accounts_commands`); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveDevice(ctx, uid, dev2.ID, sess2.ID, revoked("e2")); err == nil {
			t.Fatal("RemoveDevice succeeded without its queue table")
		}
		if !exists(dev2.ID) || !exists(sess2.ID) || exists(id64("e2")) {
			t.Fatal("failed RemoveDevice was not rolled back")
		}
	})
}
