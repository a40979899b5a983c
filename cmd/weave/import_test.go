package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/importer/importertest"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/testkit"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestImport runs `weave import` from every supported source (see
// importertest.Cases) into a running weave, then syncs as Firefox would:
// the same account gets the same uid and its data, and the batch it was
// uploading to the old server commits on weave.
func TestImport(t *testing.T) {
	// The weave databases vary too, so that every pairing is sound.
	into := map[string]string{
		"syncstorage-rs/mysql":        "mysql",
		"syncstorage-rs/postgres":     "postgres",
		"server-syncstorage/mysql":    "sqlite",
		"server-syncstorage/postgres": "mysql",
	}
	for _, c := range importertest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			ctx := context.Background()
			src := c.Open(t, time.Now())
			weaveURL := dbtest.Fresh(t, into[c.Name])
			srv := startServer(t, weaveURL)
			importArgs := []string{"import", "--from-storage-url", src.StorageURL, "--from-token-url", src.TokenURL,
				"--to-node", srv.base, "--token-database-url", weaveURL, "--data-dir", t.TempDir()}
			if c.DB == "postgres" {
				// Named rather than recognised: both ways work.
				importArgs = append(importArgs, "--from-schema", string(c.Schema))
			}
			runImport := func(extra ...string) string {
				t.Helper()
				var out, errb bytes.Buffer
				if code := run(ctx, append(importArgs, extra...), &out, &errb); code != 0 {
					t.Fatalf("weave import exited with %d\nstdout: %s\nstderr: %s", code, &out, &errb)
				}
				return out.String()
			}
			// Accounts go in email order: B first.
			out := runImport("--users", "1")
			if !strings.HasPrefix(out, "source: "+string(c.Schema)+" on ") ||
				!strings.Contains(out, "\n1 accounts: 1 imported, 0 already imported; 1 token records, 1 collections, 1 records, 0 open batches") {
				t.Fatalf("first partial import: %s", out)
			}
			if out := runImport(); !strings.Contains(out, "2 accounts: 1 imported, 1 already imported; 2 token records, 3 collections, 5 records, 2 open batches") {
				t.Fatalf("import: %s", out)
			}
			if out := runImport(); !strings.Contains(out, "2 accounts: 0 imported, 2 already imported; 0 token records") {
				t.Fatalf("re-run: %s", out)
			}
			// The old server took a write for account A after the import:
			// a re-run names A and fails; --reimport-changed brings A up to
			// date.
			src.ChangeAccountA(t, -1000)
			var out2, errb bytes.Buffer
			if code := run(ctx, importArgs, &out2, &errb); code == 0 || !strings.Contains(errb.String(), importertest.FxAA) || !strings.Contains(errb.String(), "--reimport-changed") ||
				!strings.Contains(errb.String(), "CHANGED at the source") {
				t.Fatalf("re-run after a change at the source: exit %d\nstdout: %s\nstderr: %s", code, &out2, &errb)
			}
			if out := runImport("--reimport-changed"); !strings.Contains(out, "1 accounts changed at the source were imported again") ||
				!strings.Contains(out, "2 accounts: 0 imported, 1 already imported; 0 token records, 3 collections, 5 records") {
				t.Fatalf("--reimport-changed: %s", out)
			}

			// Token records and data as in the source.
			tokens, store := openWeave(t, weaveURL)
			node, err := tokens.NodeByURL(ctx, srv.base)
			if err != nil {
				t.Fatal(err)
			}
			src.CheckImported(t, ctx, tokens, store, node.ID)

			// Firefox with the same account and keys gets the same uid and
			// its data.
			cl := srv.client(t, importertest.FxAA)
			if cl.token.UID != 41 {
				t.Fatalf("token uid %d, want 41", cl.token.UID)
			}
			var colls map[string]float64
			cl.must(200, "GET", "/info/collections", nil).json(t, &colls)
			for _, col := range src.Want[41].Collections {
				if got := int64(colls[col.Name]*1000 + 0.5); got != int64(col.Modified) {
					t.Errorf("info/collections %s = %v, want %d ms", col.Name, colls[col.Name], col.Modified)
				}
			}
			if _, ok := colls["passwords"]; ok || len(colls) != len(src.Want[41].Collections) {
				t.Errorf("info/collections %v: a collection with only an open batch must not show", colls)
			}
			type bso struct {
				ID        string  `json:"id"`
				Payload   string  `json:"payload"`
				SortIndex *int64  `json:"sortindex"`
				Modified  float64 `json:"modified"`
			}
			var tabs []bso
			cl.must(200, "GET", "/storage/tabs?full=1", nil).json(t, &tabs)
			if len(tabs) != 1 || tabs[0].ID != "device1" {
				t.Errorf("tabs (the expired record must stay hidden) %+v", tabs)
			}

			// The upload it had begun on the old server finishes on weave:
			// one more record and the commit, under the old batch id.
			ob := src.OpenBatch
			var commit struct {
				Modified float64  `json:"modified"`
				Success  []string `json:"success"`
			}
			cl.must(200, "POST", "/storage/"+ob.Collection+"?commit=true&batch="+url.QueryEscape(ob.ClientID),
				[]map[string]any{{"id": "toolbar", "payload": "tb2"}}).json(t, &commit)
			var marks []bso
			cl.must(200, "GET", "/storage/bookmarks?full=1&sort=index", nil).json(t, &marks)
			got := map[string]bso{}
			for _, b := range marks {
				got[b.ID] = b
			}
			var menuModified float64
			var menuPayload string
			for _, c := range src.Want[41].Collections {
				for _, b := range c.BSOs {
					if c.Name == "bookmarks" && b.ID == "menu" {
						menuModified, menuPayload = float64(b.Modified)/1000, b.Payload
					}
				}
			}
			for id, w := range map[string]struct {
				payload   string
				sortIndex int64
				modified  float64
			}{
				// The staged sortindex alone: weave, like server-syncstorage,
				// dates a record by its payload.
				"menu":    {menuPayload, 99, menuModified},
				"unfiled": {`{"ciphertext":"unfiled"}`, 7, commit.Modified},
				"mobile":  {`{"ciphertext":"mobile"}`, -1, commit.Modified},
				"toolbar": {"tb2", -5, commit.Modified},
			} {
				b, ok := got[id]
				si := int64(-1)
				if ok && b.SortIndex != nil {
					si = *b.SortIndex
				}
				if !ok || b.Payload != w.payload || si != w.sortIndex || b.Modified != w.modified {
					t.Errorf("bookmarks/%s after the commit: %+v (sortindex %d), want payload %q, sortindex %d, modified %v", id, b, si, w.payload, w.sortIndex, w.modified)
				}
			}
			// The record with a staged TTL expires an hour after the commit.
			mobile, err := store.ExportUser(ctx, 41)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range mobile.Collections {
				for _, b := range c.BSOs {
					if b.ID == "mobile" && int64(b.Expires) != int64(commit.Modified*1000+0.5)+3600*1000 {
						t.Errorf("mobile expires at %d, want an hour after the commit at %v", b.Expires, commit.Modified)
					}
				}
			}

			// A user that is not Mozilla's still gets a fresh uid past the
			// imported ones.
			if n := srv.client(t, "99999999999999999999999999999999"); n.token.UID <= 57 {
				t.Errorf("new user got uid %d, reusing the imported range", n.token.UID)
			}
		})
	}
}

// TestImportRefuses checks the command's answers to sources it cannot read.
func TestImportRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	weaveURL := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "weave.db"))
	tokens, _ := openWeave(t, weaveURL)
	if _, err := tokens.AddNode(ctx, weave.Node{URL: "https://weave.example.net", Capacity: 10, DatabaseURL: weaveURL}); err != nil {
		t.Fatal(err)
	}
	base := []string{"import", "--to-node", "https://weave.example.net", "--token-database-url", weaveURL, "--data-dir", dir}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing sqlite source", []string{"--from-storage-url", "sqlite://" + filepath.ToSlash(filepath.Join(dir, "nothing.db"))}, "no such file"},
		{"sqlite syncstorage", []string{"--from-storage-url", "sqlite://" + filepath.ToSlash(filepath.Join(dir, "weave.db"))}, "neither FSyncMS's tables"},
		{"unknown source", []string{"--from-storage-url", "redis://127.0.0.1:1/0"}, "MySQL/MariaDB (mysql://"},
		{"bad schema flag", []string{"--from-storage-url", "mysql://u@127.0.0.1:1/db", "--from-schema", "go-syncstorage"}, "want auto, syncstorage-rs, server-syncstorage, fsyncms, server-storage"},
		{"tokenserver as storage", nil, "give it as --from-token-url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				// The tokenserver database given as the storage database.
				c := importertest.Cases()[0]
				src := c.Open(t, time.Now())
				args = []string{"--from-storage-url", src.TokenURL}
			}
			var out, errb bytes.Buffer
			if code := run(ctx, append(append([]string{}, base...), args...), &out, &errb); code == 0 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, errb.String(), tc.want)
			}
		})
	}
}

// openWeave opens weave's token database and store at url.
func openWeave(t *testing.T, u string) (*sqlstore.TokenDB, *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	var tokens *sqlstore.TokenDB
	var store *sqlstore.Store
	var err, err2 error
	switch {
	case strings.HasPrefix(u, "mysql:"):
		tokens, err = sqlstore.OpenTokenDB(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		store, err2 = sqlstore.OpenStore(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	case strings.HasPrefix(u, "postgres:"):
		tokens, err = sqlstore.OpenTokenDB(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		store, err2 = sqlstore.OpenStore(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	default:
		tokens, err = sqlstore.OpenTokenDB(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		store, err2 = sqlstore.OpenStore(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	}
	if err != nil || err2 != nil {
		t.Fatal(err, err2)
	}
	t.Cleanup(func() { tokens.Close(); store.Close() })
	return tokens, store
}

// TestImportLegacy runs `weave import` from every 1.1 source (see
// importertest.LegacyCases) into weave on each database: accounts, old
// passwords, storage records and data arrive; a re-run changes nothing; a
// source with its users elsewhere needs --from-users-url.
func TestImportLegacy(t *testing.T) {
	for _, c := range importertest.LegacyCases() {
		for _, into := range []string{"sqlite", "mysql", "postgres"} {
			t.Run(c.Name+"/into-"+into, func(t *testing.T) {
				ctx := context.Background()
				src := c.Open(t, time.Now())
				dir := t.TempDir()
				weaveURL := dbtest.Fresh(t, into)
				tokens, store := openWeave(t, weaveURL)
				node, err := tokens.AddNode(ctx, weave.Node{URL: "https://weave.example.net", Capacity: 10, DatabaseURL: weaveURL})
				if err != nil {
					t.Fatal(err)
				}
				args := []string{"import", "--from-storage-url", src.StorageURL, "--to-node", node.URL,
					"--token-database-url", weaveURL, "--data-dir", dir}
				if into == "mysql" {
					// Named rather than recognised: both ways work.
					args = append(args, "--from-schema", string(c.Schema))
				}
				runImport := func(extra ...string) (int, string, string) {
					var out, errb bytes.Buffer
					code := run(ctx, append(slices.Clone(args), extra...), &out, &errb)
					return code, out.String(), errb.String()
				}
				if src.UsersURL != "" {
					if code, _, errb := runImport(); code == 0 || !strings.Contains(errb, "--from-users-url") {
						t.Fatalf("users elsewhere, without --from-users-url: exit %d, stderr %s", code, errb)
					}
					args = append(args, "--from-users-url", src.UsersURL)
				}
				disabled := 0
				if c.Schema == importer.ServerStorage {
					disabled = 1
				}
				code, out, errb := runImport()
				if code != 0 || !strings.Contains(out, "source: "+string(c.Schema)+" on ") ||
					!strings.Contains(out, fmt.Sprintf("%d Sync 1.1 accounts: 3 imported, 0 already imported, %d disabled at the source (not imported); 3 storage records, 6 collections, 7 records", 3+disabled, disabled)) {
					t.Fatalf("import: exit %d\nstdout: %s\nstderr: %s", code, out, errb)
				}
				src.CheckImported(t, ctx, tokens, sqlstore.NewLegacyUserStore(tokens.DB()), store, node.ID)
				if code, out, errb := runImport(); code != 0 || !strings.Contains(out, "0 imported, 3 already imported") {
					t.Fatalf("re-run: exit %d\nstdout: %s\nstderr: %s", code, out, errb)
				}
			})
		}
	}
}

// TestImportLegacyServe imports each 1.1 source into the database of a
// running `weave serve --legacy` (on SQLite, MariaDB and PostgreSQL in
// turn), and the account's browser, pointed at weave, signs in with its
// old password and finds every collection and record as the old server
// served them.
func TestImportLegacyServe(t *testing.T) {
	into := map[string]string{
		"fsyncms/sqlite":        "sqlite",
		"fsyncms/mysql":         "postgres",
		"server-storage/mysql":  "postgres",
		"server-storage/sqlite": "mysql",
	}
	importertest.RunLegacyInto(t, into, func(t *testing.T, _ importertest.LegacyCase, src *importertest.LegacySource, weaveURL string) {
		ctx := context.Background()
		srv := startServer(t, weaveURL, "--legacy")
		args := []string{"import", "--from-storage-url", src.StorageURL, "--to-node", srv.base,
			"--token-database-url", weaveURL, "--data-dir", t.TempDir()}
		if src.UsersURL != "" {
			args = append(args, "--from-users-url", src.UsersURL)
		}
		var out, errb bytes.Buffer
		if code := run(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("weave import: %d\nstdout: %s\nstderr: %s", code, &out, &errb)
		}
		get := func(u, user, pw string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", u, nil)
			req.SetBasicAuth(user, pw)
			req.Header.Set("Accept", "application/newlines")
			return testkit.Get(t, req)
		}
		for _, a := range src.Accounts {
			if a.Disabled {
				continue
			}
			st, node := get(srv.base+"/user/1.0/"+a.Username+"/node/weave", a.Username, a.Password)
			if st != 200 || node != srv.base+"/" {
				t.Fatalf("%s: node/weave = %d %q, want %q", a.Username, st, node, srv.base+"/")
			}
			st, body := get(node+"1.1/"+a.Username+"/info/collections", a.Username, a.Password)
			var colls map[string]json.RawMessage
			want := src.Want[a.Username]
			if st != 200 || json.Unmarshal([]byte(body), &colls) != nil || len(colls) != len(want.Collections) {
				t.Fatalf("%s: info/collections = %d %q", a.Username, st, body)
			}
			for _, wc := range want.Collections {
				if got := string(colls[wc.Name]); got != wc.Modified.String() {
					t.Errorf("%s: %s modified %s, want %s", a.Username, wc.Name, got, wc.Modified)
				}
				st, body := get(node+"1.1/"+a.Username+"/storage/"+wc.Name+"?full=1", a.Username, a.Password)
				lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
				if st != 200 || len(lines) != len(wc.BSOs) {
					t.Fatalf("%s: storage/%s = %d %q, want %d records", a.Username, wc.Name, st, body, len(wc.BSOs))
				}
				for _, b := range wc.BSOs {
					p, _ := json.Marshal(b.Payload)
					if !strings.Contains(body, `"id":"`+b.ID+`"`) || !strings.Contains(body, `"payload":`+string(p)) || !strings.Contains(body, `"modified":`+b.Modified.String()) {
						t.Errorf("%s: storage/%s lacks %s (modified %s, payload %s): %s", a.Username, wc.Name, b.ID, b.Modified, p, body)
					}
				}
			}
		}
	})
}
