package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// TestLegacyUserStore is the conformance test of the 1.1 account store on
// every backend: create, lookup, exact-case names, conditional password
// updates, reset codes, paging, deletion, and concurrent sign-ups of one
// name.
func TestLegacyUserStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tokenBackend) {
		ctx := context.Background()
		tdb, err := b.open(ctx, b.fresh(t), sqlstore.PoolOptions{}, sqlstore.TokenDBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer tdb.Close()
		var s weave.LegacyUserStore = sqlstore.NewLegacyUserStore(tdb.DB())

		if _, err := s.LegacyUser(ctx, "nobody"); !errors.Is(err, weave.ErrNotFound) {
			t.Fatalf("LegacyUser(missing) = %v, want ErrNotFound", err)
		}
		u := weave.LegacyUser{Username: "kismw365lo7emoxr3ohojgpild6lph4b", Email: "john@example.com", PasswordHash: "{MD5-HEX}5f4dcc3b5aa765d61d8327deb882cf99"}
		if err := s.CreateLegacyUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateLegacyUser(ctx, u); !errors.Is(err, weave.ErrLegacyUserExists) {
			t.Fatalf("second CreateLegacyUser = %v, want ErrLegacyUserExists", err)
		}
		if err := s.CreateLegacyUser(ctx, weave.LegacyUser{Username: "Bad Name", PasswordHash: "x"}); err == nil {
			t.Fatal("CreateLegacyUser accepted an invalid username")
		}
		got, err := s.LegacyUser(ctx, u.Username)
		if err != nil || got.Email != u.Email || got.PasswordHash != u.PasswordHash || got.CreatedAt == 0 || got.PasswordChangedAt != got.CreatedAt {
			t.Fatalf("LegacyUser = %+v, %v", got, err)
		}
		// Names compare exactly (the client lower-cases them).
		if _, err := s.LegacyUser(ctx, "KISMW365LO7EMOXR3OHOJGPILD6LPH4B"); !errors.Is(err, weave.ErrNotFound) {
			t.Fatalf("LegacyUser(upper case) = %v, want ErrNotFound", err)
		}

		// A reset code is stored, and any password change clears it.
		if err := s.SetLegacyResetCode(ctx, u.Username, "ab12", 12345); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LegacyUser(ctx, u.Username); got.ResetCodeHash != "ab12" || got.ResetExpiresAt != 12345 {
			t.Fatalf("after SetLegacyResetCode: %+v", got)
		}
		// Conditional update against a stale hash: refused, nothing changes.
		if err := s.UpdateLegacyPassword(ctx, u.Username, "{MD5-HEX}stale", "$argon2id$new"); !errors.Is(err, weave.ErrConflict) {
			t.Fatalf("UpdateLegacyPassword(stale) = %v, want ErrConflict", err)
		}
		if got, _ := s.LegacyUser(ctx, u.Username); got.PasswordHash != u.PasswordHash || got.ResetCodeHash != "ab12" {
			t.Fatalf("stale update changed the row: %+v", got)
		}
		if err := s.UpdateLegacyPassword(ctx, u.Username, u.PasswordHash, "$argon2id$new"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LegacyUser(ctx, u.Username); got.PasswordHash != "$argon2id$new" || got.ResetCodeHash != "" || got.ResetExpiresAt != 0 {
			t.Fatalf("after UpdateLegacyPassword: %+v", got)
		}
		// Unconditional update (operator reset), also of the same value.
		for range 2 {
			if err := s.UpdateLegacyPassword(ctx, u.Username, "", "$argon2id$reset"); err != nil {
				t.Fatal(err)
			}
		}
		for _, err := range []error{
			s.UpdateLegacyPassword(ctx, "nobody", "", "h"),
			s.UpdateLegacyPassword(ctx, "nobody", "old", "h"),
			s.SetLegacyEmail(ctx, "nobody", "a@b.c"),
			s.SetLegacyResetCode(ctx, "nobody", "", 0),
			s.DeleteLegacyUser(ctx, "nobody"),
		} {
			if !errors.Is(err, weave.ErrNotFound) {
				t.Fatalf("update of a missing user = %v, want ErrNotFound", err)
			}
		}
		if err := s.SetLegacyEmail(ctx, u.Username, "new@example.com"); err != nil {
			t.Fatal(err)
		}
		// Setting the same e-mail again is not "not found" (MySQL reports 0
		// changed rows).
		if err := s.SetLegacyEmail(ctx, u.Username, "new@example.com"); err != nil {
			t.Fatal(err)
		}

		// Paging by username.
		for i := range 5 {
			if err := s.CreateLegacyUser(ctx, weave.LegacyUser{Username: fmt.Sprintf("user%d", i), PasswordHash: "h", CreatedAt: 1000, PasswordChangedAt: 2000}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.ListLegacyUsers(ctx, "user0", 3)
		if err != nil || len(page) != 3 || page[0].Username != "user1" || page[2].Username != "user3" || page[0].CreatedAt != 1000 || page[0].PasswordChangedAt != 2000 {
			t.Fatalf("ListLegacyUsers = %+v, %v", page, err)
		}
		if n, err := s.CountLegacyUsers(ctx); err != nil || n != 6 {
			t.Fatalf("CountLegacyUsers = %d, %v", n, err)
		}

		// Concurrent sign-ups of one name: exactly one wins.
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CreateLegacyUser(ctx, weave.LegacyUser{Username: "race", PasswordHash: fmt.Sprint(i)})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, weave.ErrLegacyUserExists):
				t.Fatalf("concurrent CreateLegacyUser: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent sign-ups of one name succeeded", won)
		}

		if err := s.DeleteLegacyUser(ctx, u.Username); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LegacyUser(ctx, u.Username); !errors.Is(err, weave.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

func TestLegacyTokenEmail(t *testing.T) {
	e := weave.LegacyTokenEmail("abc")
	if name, ok := weave.IsLegacyTokenEmail(e); !ok || name != "abc" {
		t.Fatalf("IsLegacyTokenEmail(%q) = %q, %v", e, name, ok)
	}
	if _, ok := weave.IsLegacyTokenEmail("0123456789abcdef0123456789abcdef@api.accounts.firefox.com"); ok {
		t.Fatal("an FxA key taken for a 1.1 user")
	}
}
