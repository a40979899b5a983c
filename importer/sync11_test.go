package importer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/importer/importertest"
	"github.com/weave-sync/weave/legacy/passwd"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestImportLegacySources imports every 1.1 source (FSyncMS on SQLite and
// MySQL, server-storage with server-core's user tables on MySQL and
// SQLite) into weave: accounts with their e-mail and old password hash
// (which takes the old password), records with their timestamps and
// expiries; disabled accounts stay out; an import interrupted midway is
// finished by running it again; a run after a write at the source names
// the account, and with Reimport brings it up to date.
func TestImportLegacySources(t *testing.T) {
	for _, c := range importertest.LegacyCases() {
		t.Run(c.Name, func(t *testing.T) {
			ctx := t.Context()
			src := c.Open(t, time.Now())
			var users *sqlstore.DB
			if src.UsersURL != "" {
				var err error
				if users, err = sqlite.OpenReadOnly(ctx, src.UsersURL, 0); err != nil {
					t.Fatal(err)
				}
				defer users.Close()
			}
			storage := src.Storage
			if c.DB == "sqlite" {
				var err error
				if storage, err = sqlite.OpenReadOnly(ctx, src.StorageURL, 0); err != nil {
					t.Fatal(err)
				}
				defer storage.Close()
			}
			tokens, node, store := weaveDest(t)
			accounts := sqlstore.NewLegacyUserStore(tokens.DB())
			opts := func(shard weave.UserMover) importer.LegacyOptions {
				return importer.LegacyOptions{Storage: storage, Users: users, Dest: tokens, Accounts: accounts, Node: node, Shard: shard}
			}
			disabled := 0
			if c.Schema == importer.ServerStorage {
				disabled = 1
			}

			// Interrupted between the first account's copy and its check:
			// that account does not exist in weave yet.
			shard := &faultyShard{UserMover: store}
			shard.failDigest.Store(1)
			_, err := importer.RunLegacy(ctx, opts(shard))
			if err == nil || !strings.Contains(err.Error(), "connection lost") || !strings.Contains(err.Error(), importertest.LegacyB) {
				t.Fatalf("interrupted import: %v", err)
			}
			if _, err := accounts.LegacyUser(ctx, importertest.LegacyB); !errors.Is(err, weave.ErrNotFound) {
				t.Errorf("account B exists after a failed import (%v)", err)
			}

			// Running again finishes the job, with the storage record the
			// first run allocated.
			rep, err := importer.RunLegacy(ctx, opts(store))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(rep.Source, string(c.Schema)) || rep.Accounts != 3+disabled || rep.Imported != 3 || rep.Disabled != disabled ||
				rep.Records != 2 || rep.Collections != 6 || rep.BSOs != 7 {
				t.Errorf("import: %+v, want 3 accounts imported (2 new storage records), %d disabled, 6 collections, 7 records", rep, disabled)
			}
			src.CheckImported(t, ctx, tokens, accounts, store, node.ID)
			if n, err := tokens.NodeByID(ctx, node.ID); err != nil || n.CurrentLoad != 3 {
				t.Errorf("node load %d (%v), want 3", n.CurrentLoad, err)
			}

			// A third run changes nothing.
			rep, err = importer.RunLegacy(ctx, opts(store))
			if err != nil || rep.Imported != 0 || rep.Skipped != 3 || rep.Records != 0 || rep.BSOs != 0 {
				t.Errorf("third run: %+v (%v), want everything skipped", rep, err)
			}

			// A write at the old server after the import.
			src.ChangeAccountA(t, 5000)
			rep, err = importer.RunLegacy(ctx, opts(store))
			var changed *importer.ChangedError
			if !errors.As(err, &changed) || len(changed.Accounts) != 1 || !strings.Contains(err.Error(), importertest.LegacyA) {
				t.Fatalf("run after a change at the source: %v (%+v), want a ChangedError naming account A", err, rep)
			}
			o := opts(store)
			o.Reimport = true
			rep, err = importer.RunLegacy(ctx, o)
			if err != nil || rep.Reimported != 1 || rep.Skipped != 2 || rep.BSOs != 6 {
				t.Fatalf("reimport: %+v (%v), want A's 6 records imported again", rep, err)
			}
			src.CheckImported(t, ctx, tokens, accounts, store, node.ID)

			// A password changed at the old server after the import: an
			// account that has not signed in to weave takes the new one;
			// one that has (its hash is weave's own now) keeps weave's.
			a, err := accounts.LegacyUser(ctx, importertest.LegacyA)
			if err != nil {
				t.Fatal(err)
			}
			signedIn, err := passwd.HashWith("weave password", passwd.Params{Memory: 64, Time: 1, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := accounts.UpdateLegacyPassword(ctx, importertest.LegacyA, a.PasswordHash, signedIn); err != nil {
				t.Fatal(err)
			}
			src.ChangePassword(t, importertest.LegacyB, "new secret b")
			src.ChangePassword(t, importertest.LegacyA, "new secret a")
			rep, err = importer.RunLegacy(ctx, opts(store))
			if err != nil || rep.Passwords != 1 || rep.Skipped != 3 {
				t.Fatalf("run after password changes: %+v (%v), want B's password updated", rep, err)
			}
			for name, pw := range map[string]string{importertest.LegacyB: "new secret b", importertest.LegacyA: "weave password"} {
				u, err := accounts.LegacyUser(ctx, name)
				if ok, _ := passwd.Verify(u.PasswordHash, pw); err != nil || !ok {
					t.Errorf("%s: password %q does not verify (%v)", name, pw, err)
				}
			}
		})
	}
}
