package importer_test

import (
	"errors"
	"path/filepath"
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
			src.ChangeAccountA(t, -1000)
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

// TestRunLegacyRefuses checks that databases RunLegacy cannot read are
// refused with a message saying what to do, before anything is written.
func TestRunLegacyRefuses(t *testing.T) {
	ctx := t.Context()
	tokens, node, store := weaveDest(t)
	accounts := sqlstore.NewLegacyUserStore(tokens.DB())
	cases := []struct {
		name   string
		schema importer.Schema
		stmts  []string
		users  []string // a separate user database's tables
		want   string
	}{
		{"empty", "", nil, nil, "neither FSyncMS's tables"},
		{"server-storage without users", "", []string{
			`CREATE TABLE collections (userid INTEGER, collectionid INTEGER, name VARCHAR(32))`,
			`CREATE TABLE wbo (id VARCHAR(64), username INTEGER, collection INTEGER, modified BIGINT, ttl INTEGER)`,
		}, nil, "--from-users-url"},
		{"users elsewhere, but not there either", "", []string{
			`CREATE TABLE collections (userid INTEGER, collectionid INTEGER, name VARCHAR(32))`,
			`CREATE TABLE wbo (id VARCHAR(64), username INTEGER, collection INTEGER, modified BIGINT, ttl INTEGER)`,
		}, []string{`CREATE TABLE accounts (name TEXT)`}, "neither server-core's users table"},
		{"shard missing", "", []string{
			`CREATE TABLE collections (userid INTEGER, collectionid INTEGER, name VARCHAR(32))`,
			`CREATE TABLE wbo0 (id VARCHAR(64), username INTEGER, collection INTEGER, modified BIGINT, ttl INTEGER)`,
			`CREATE TABLE wbo2 (id VARCHAR(64), username INTEGER, collection INTEGER, modified BIGINT, ttl INTEGER)`,
		}, nil, "numbered [0 2]"},
		{"no collections", "", []string{
			`CREATE TABLE wbo (id VARCHAR(64), username INTEGER, collection INTEGER, modified BIGINT, ttl INTEGER)`,
		}, nil, "lacks its collections table"},
		{"wrong --from-schema", importer.ServerStorage, []string{
			`CREATE TABLE wbo (username VARCHAR(100), id VARCHAR(65), collection VARCHAR(100), modified REAL, ttl INT)`,
			`CREATE TABLE users (username VARCHAR(255), md5 VARCHAR(64))`,
		}, nil, "--from-schema says server-storage, but the source database has the tables of fsyncms"},
		{"FSyncMS with a user database", "", []string{
			`CREATE TABLE wbo (username VARCHAR(100), id VARCHAR(65), collection VARCHAR(100), modified REAL, ttl INT)`,
			`CREATE TABLE users (username VARCHAR(255), md5 VARCHAR(64))`,
		}, []string{`CREATE TABLE users (id INTEGER)`}, "drop --from-users-url"},
		{"a 1.5 schema", importer.SyncstorageRS, nil, nil, "not a 1.1 source schema"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mk := func(name string, stmts []string) *sqlstore.DB {
				db, err := sqlite.Open(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(dir, name)), sqlstore.PoolOptions{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				for _, q := range stmts {
					if _, err := db.Write.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				return db
			}
			o := importer.LegacyOptions{Storage: mk("src.db", tc.stmts), Schema: tc.schema, Dest: tokens, Accounts: accounts, Node: node, Shard: store}
			if tc.users != nil {
				o.Users = mk("users.db", tc.users)
			}
			if _, err := importer.RunLegacy(ctx, o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if n, err := accounts.CountLegacyUsers(ctx); err != nil || n != 0 {
		t.Errorf("%d accounts in weave (%v), want none", n, err)
	}
}

// TestRunLegacyRefusedAccounts checks that accounts weave cannot take are
// named at the end, and the others imported: a name no client sends, two
// names equal once lower-cased, a hash in no known format.
func TestRunLegacyRefusedAccounts(t *testing.T) {
	ctx := t.Context()
	tokens, node, store := weaveDest(t)
	accounts := sqlstore.NewLegacyUserStore(tokens.DB())
	src, err := sqlite.Open(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "weave_db")), sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, q := range []string{
		`create table wbo ( username varchar(100), id varchar(65), collection varchar(100), parentid varchar(65), predecessorid int, modified real, sortindex int, payload text, payload_size int, ttl int, primary key (username,collection,id))`,
		`create table users ( username varchar(255), md5 varchar(64), primary key (username))`,
		`insert into users values ('Bob', 'c4ca4238a0b923820dcc509a6f75849b'), ('bob', 'c4ca4238a0b923820dcc509a6f75849b'),
			('bad name!', 'c4ca4238a0b923820dcc509a6f75849b'), ('carol', 'plaintext?'), ('dave', 'c4ca4238a0b923820dcc509a6f75849b')`,
		`insert into wbo (username, id, collection, modified, payload) values ('dave', 'global', 'meta', 1300000000.25, '{}')`,
	} {
		if _, err := src.Write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := importer.RunLegacy(ctx, importer.LegacyOptions{Storage: src, Dest: tokens, Accounts: accounts, Node: node, Shard: store})
	if err == nil || !strings.Contains(err.Error(), "3 account(s) not imported") || !strings.Contains(err.Error(), `"bad name!"`) ||
		!strings.Contains(err.Error(), `"bob" (the same name as "Bob"`) || !strings.Contains(err.Error(), `"carol"`) {
		t.Fatalf("got %v, want the three accounts named", err)
	}
	if rep.Imported != 2 || rep.BSOs != 1 {
		t.Errorf("report %+v, want Bob and dave imported", rep)
	}
	for name, want := range map[string]bool{"bob": true, "dave": true, "carol": false} {
		u, err := accounts.LegacyUser(ctx, name)
		if (err == nil) != want {
			t.Errorf("%s in weave: %v (%v), want %v", name, err == nil, err, want)
		}
		if ok, _ := passwd.Verify(u.PasswordHash, "1"); want && !ok {
			t.Errorf("%s: password does not verify", name)
		}
	}
}
