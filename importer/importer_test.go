package importer_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/importer/importertest"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestImportUserRecords checks the token side of an import on every
// dialect: records keep their uids and fields, a second import is a no-op,
// a uid held by another account is refused, and uids allocated afterwards
// never reuse an imported one.
func TestImportUserRecords(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"sqlite", "mysql", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			tokens, err := sqlstore.OpenTokenDB(ctx, dbtest.Fresh(t, kind), sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tokens.Close()
			node, err := tokens.AddNode(ctx, weave.Node{URL: "http://127.0.0.1:9", Capacity: 10})
			if err != nil {
				t.Fatal(err)
			}
			email := "abc@api.accounts.firefox.com"
			recs := []weave.TokenUser{
				{UID: 30, Email: email, Generation: 5, ClientState: "aa", KeysChangedAt: 100, CreatedAt: 1000, ReplacedAt: 2000},
				{UID: 77, Email: email, Generation: 9, ClientState: "bb", CreatedAt: 2000},
			}
			for round, wantN := range []int{2, 0} {
				n, err := tokens.ImportUserRecords(ctx, node.ID, recs)
				if err != nil || n != wantN {
					t.Fatalf("round %d: inserted %d (%v), want %d", round, n, err, wantN)
				}
			}
			for _, r := range recs {
				got, err := tokens.UserByUID(ctx, r.UID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Email != r.Email || got.Generation != r.Generation || got.ClientState != r.ClientState ||
					got.KeysChangedAt != r.KeysChangedAt || got.CreatedAt != r.CreatedAt || got.ReplacedAt != r.ReplacedAt || got.NodeID != node.ID {
					t.Errorf("uid %d: %+v, want %+v", r.UID, got, r)
				}
			}
			cur, err := tokens.GetUser(ctx, email)
			if err != nil || cur.UID != 77 || len(cur.OldClientStates) != 1 || cur.OldClientStates[0] != "aa" {
				t.Errorf("current record %+v (%v)", cur, err)
			}
			if n, err := tokens.NodeByID(ctx, node.ID); err != nil || n.CurrentLoad != 1 {
				t.Errorf("node load %d (%v), want 1 (the live record)", n.CurrentLoad, err)
			}
			_, err = tokens.ImportUserRecords(ctx, node.ID, []weave.TokenUser{{UID: 77, Email: "other@x", CreatedAt: 1}})
			if err == nil || !strings.Contains(err.Error(), "already taken") {
				t.Errorf("conflicting uid: %v", err)
			}
			nu, err := tokens.AllocateUser(ctx, "new@api.accounts.firefox.com", weave.NewTokenUser{Generation: 1})
			if err != nil || nu.UID <= 77 {
				t.Errorf("new user uid %d (%v), want > 77", nu.UID, err)
			}
		})
	}
}

// weaveDest is a weave token database with one node and that node's store,
// on SQLite: the sources are what these tests are about.
func weaveDest(t *testing.T) (*sqlstore.TokenDB, weave.Node, *sqlstore.Store) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	tokens, err := sqlstore.OpenTokenDB(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "tokens.db")), sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tokens.Close() })
	node, err := tokens.AddNode(ctx, weave.Node{URL: "https://weave.example.net", Capacity: 100})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.OpenStore(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "shard.db")), sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return tokens, node, store
}

// faultyShard is a shard that corrupts or loses what passes through it.
type faultyShard struct {
	weave.UserMover
	// tamper, if set, changes a user's data on its way into the store.
	tamper func(d *weave.UserData)
	// failDigest, while positive, makes that many DigestUser calls fail,
	// as a crash between the copy and its verification would.
	failDigest atomic.Int32
}

func (f *faultyShard) ImportUser(ctx context.Context, d weave.UserData) error {
	if f.tamper != nil {
		d = deepCopy(d)
		f.tamper(&d)
	}
	return f.UserMover.ImportUser(ctx, d)
}

func (f *faultyShard) DigestUser(ctx context.Context, uid int64) (map[string]weave.CollectionDigest, error) {
	if f.failDigest.Add(-1) >= 0 {
		return nil, errors.New("connection lost")
	}
	return f.UserMover.DigestUser(ctx, uid)
}

func deepCopy(d weave.UserData) weave.UserData {
	cs := make([]weave.UserCollection, len(d.Collections))
	for i, c := range d.Collections {
		c.BSOs = append([]weave.UserBSO(nil), c.BSOs...)
		cs[i] = c
	}
	d.Collections = cs
	bs := make([]weave.UserBatch, len(d.Batches))
	for i, b := range d.Batches {
		b.Items = append([]weave.StagedItem(nil), b.Items...)
		bs[i] = b
	}
	d.Batches = bs
	return d
}

// TestImportSources imports every supported source (schema × database)
// into weave: records, expiries, timestamps, open batches and token
// records arrive as they were; a copy that differs from the source is
// caught and its account left unimported; an import interrupted midway is
// finished by running it again; and a third run changes nothing.
func TestImportSources(t *testing.T) {
	for _, c := range importertest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Now()
			src := c.Open(t, now)
			tokens, node, store := weaveDest(t)
			opts := func(shard weave.UserMover) importer.Options {
				return importer.Options{Storage: src.Storage, Tokens: src.Tokens, Dest: tokens, Node: node, Shard: shard,
					Now: func() time.Time { return now }}
			}
			accountA := importertest.FxAA + importertest.Domain
			wantUnimported := func(what string) {
				t.Helper()
				if _, err := tokens.UserByUID(ctx, 41); !errors.Is(err, weave.ErrNotFound) {
					t.Errorf("%s: account A has a token record (%v)", what, err)
				}
			}

			// A copy that loses a record's new payload, or a staged record's
			// sortindex, does not verify. Account B (first in email order)
			// is imported; A is not.
			tampers := map[string]func(d *weave.UserData){
				`collection "bookmarks" differs`: func(d *weave.UserData) {
					for i := range d.Collections {
						if d.Collections[i].Name == "bookmarks" {
							d.Collections[i].BSOs[0].Payload = "tampered"
						}
					}
				},
				"open batch": func(d *weave.UserData) {
					if len(d.Batches) > 0 {
						si := int64(12345)
						d.Batches[0].Items[0].SortIndex, d.Batches[0].Items[0].SortIndexOK = &si, true
					}
				},
			}
			for wantErr, tamper := range tampers {
				rep, err := importer.Run(ctx, opts(&faultyShard{UserMover: store, tamper: tamper}))
				if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), accountA) {
					t.Fatalf("tampered copy: %v, want an error about account A's %s", err, wantErr)
				}
				if rep.Accounts != 2 || rep.Imported+rep.Skipped != 1 {
					t.Errorf("tampered copy: report %+v, want B imported and A failed", rep)
				}
				wantUnimported("tampered copy")
			}
			if _, err := tokens.UserByUID(ctx, 57); err != nil {
				t.Errorf("account B not imported: %v", err)
			}

			// Interrupted between A's copy and its verification.
			shard := &faultyShard{UserMover: store}
			shard.failDigest.Store(1)
			if _, err := importer.Run(ctx, opts(shard)); err == nil || !strings.Contains(err.Error(), "connection lost") {
				t.Fatalf("interrupted import: %v", err)
			}
			wantUnimported("interrupted import")

			// Running again finishes the job.
			rep, err := importer.Run(ctx, opts(store))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Source == "" || !strings.HasPrefix(rep.Source, string(c.Schema)) {
				t.Errorf("source %q, want %s", rep.Source, c.Schema)
			}
			if rep.Accounts != 2 || rep.Imported != 1 || rep.Skipped != 1 || rep.Records != 2 || rep.Collections != 3 || rep.BSOs != 5 || rep.Batches != 2 {
				t.Errorf("second run: %+v, want A imported (2 token records, 3 collections, 5 records, 2 open batches), B skipped", rep)
			}
			src.CheckImported(t, ctx, tokens, store, node.ID)
			if n, err := tokens.NodeByID(ctx, node.ID); err != nil || n.CurrentLoad != 2 {
				t.Errorf("node load %d (%v), want 2", n.CurrentLoad, err)
			}

			// A third run changes nothing.
			rep, err = importer.Run(ctx, opts(store))
			if err != nil || rep.Imported != 0 || rep.Skipped != 2 || rep.Records != 0 {
				t.Errorf("third run: %+v (%v), want everything skipped", rep, err)
			}

			// A client of the old server writes to account A after the
			// import: a run says so, naming A, and leaves weave's copy as
			// it is; with Reimport it brings A up to date.
			before, err := store.ExportUser(ctx, 41)
			if err != nil {
				t.Fatal(err)
			}
			src.ChangeAccountA(t, -1000)
			rep, err = importer.Run(ctx, opts(store))
			var changed *importer.ChangedError
			if !errors.As(err, &changed) || len(changed.Accounts) != 1 || !strings.Contains(err.Error(), accountA) || !strings.Contains(err.Error(), `collection "bookmarks" modified`) {
				t.Fatalf("run after a change at the source: %v, want a ChangedError naming account A's bookmarks", err)
			}
			if rep.Skipped != 1 || rep.Imported != 0 || rep.Reimported != 0 || len(rep.Changed) != 1 {
				t.Errorf("run after a change at the source: %+v, want B skipped, A changed", rep)
			}
			if after, err := store.ExportUser(ctx, 41); err != nil || importertest.Dump(after) != importertest.Dump(before) {
				t.Errorf("weave's copy of A changed without Reimport (%v)", err)
			}
			o := opts(store)
			o.Reimport = true
			var progress []importer.Progress
			o.Progress = func(p importer.Progress) { progress = append(progress, p) }
			rep, err = importer.Run(ctx, o)
			if err != nil || rep.Reimported != 1 || rep.Skipped != 1 || rep.Imported != 0 || rep.Records != 0 || rep.BSOs != 5 {
				t.Fatalf("reimport: %+v (%v), want A imported again (5 records), B skipped", rep, err)
			}
			if p := progress[1]; p.Email != accountA || !p.Reimported || !strings.Contains(p.Changed, "bookmarks") {
				t.Errorf("reimport progress %+v", p)
			}
			src.CheckImported(t, ctx, tokens, store, node.ID)

			// Writes in weave after the import are not a change at the
			// source: skipped, not reported.
			before, err = store.ExportUser(ctx, 57)
			if err != nil {
				t.Fatal(err)
			}
			before.Modified += 60000
			before.Collections[0].Modified += 60000
			if err := store.ImportUser(ctx, before); err != nil {
				t.Fatal(err)
			}
			rep, err = importer.Run(ctx, opts(store))
			if err != nil || rep.Skipped != 2 || len(rep.Changed) != 0 {
				t.Errorf("run after writes in weave: %+v (%v), want everything skipped", rep, err)
			}
		})
	}
}

// TestOpenSourceRefuses checks that databases that are not a supported
// source are refused with a message saying what to do.
func TestOpenSourceRefuses(t *testing.T) {
	ctx := t.Context()
	open := func(t *testing.T, kind string, stmts ...string) *sqlstore.DB {
		t.Helper()
		var db *sqlstore.DB
		var err error
		if kind == "mysql" {
			db, err = mysql.Open(ctx, dbtest.MySQL(t), sqlstore.PoolOptions{MaxOpenConns: 2})
		} else {
			db, err = postgres.Open(ctx, dbtest.Postgres(t), sqlstore.PoolOptions{MaxOpenConns: 2})
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		for _, q := range stmts {
			if _, err := db.Write.Exec(q); err != nil {
				t.Fatalf("%v\n%s", err, q)
			}
		}
		return db
	}
	cases := []struct {
		name, kind string
		schema     importer.Schema
		stmts      []string
		want       string
	}{
		{"empty", "mysql", "", nil, "expected the tables of syncstorage-rs"},
		{"tokenserver", "postgres", "", []string{
			`CREATE TABLE users (uid BIGINT, service INT, email TEXT, generation BIGINT, client_state TEXT)`,
			`CREATE TABLE nodes (id BIGINT, node TEXT)`,
		}, "give it as --from-token-url"},
		{"weave", "mysql", "", []string{
			`CREATE TABLE user_storage (uid BIGINT, modified BIGINT)`,
			`CREATE TABLE bsos (uid BIGINT, collection_id BIGINT, id TEXT)`,
		}, "weave user migrate"},
		{"pre-release syncstorage-rs postgres", "postgres", "", []string{
			`CREATE TABLE bsos (fxa_uid UUID, fxa_kid TEXT, collection_id BIGINT, bso_id TEXT)`,
		}, "pre-release"},
		{"pre-2019 syncstorage-rs mysql", "mysql", "", []string{
			`CREATE TABLE bso (user_id INT, collection_id INT, id VARCHAR(64), sortindex INT, payload TEXT, modified BIGINT, expiry BIGINT)`,
			`CREATE TABLE user_collections (user_id INT, collection_id INT, modified BIGINT)`,
			`CREATE TABLE collections (id INT, name VARCHAR(32))`,
		}, "run syncstorage-rs's migrations first"},
		{"shard missing", "postgres", "", []string{
			`CREATE TABLE bso0 (userid INT)`, `CREATE TABLE bso2 (userid INT)`,
		}, "numbered [0 2]"},
		{"wrong --from-schema", "mysql", importer.ServerSyncstorage, []string{
			`CREATE TABLE bso (userid BIGINT, collection INT, id VARCHAR(64), sortindex INT, payload TEXT, modified BIGINT, ttl BIGINT)`,
			`CREATE TABLE user_collections (userid BIGINT, collection INT, last_modified BIGINT)`,
			`CREATE TABLE collections (id INT, name VARCHAR(32))`,
		}, "--from-schema says server-syncstorage, but the source storage database has the tables of syncstorage-rs"},
		{"unknown --from-schema", "mysql", "go-syncstorage", nil, "unknown source schema"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, tc.kind, tc.stmts...)
			_, err := importer.OpenSource(ctx, db, tc.schema)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLegacyBatchID(t *testing.T) {
	// What syncstorage-rs and server-syncstorage send for batch 1536198976921.
	if got := importer.LegacyBatchID(1536198976921); got != "MTUzNjE5ODk3NjkyMQ==" {
		t.Errorf("LegacyBatchID = %q", got)
	}
}
