package importer_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/importer/importertest"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/legacy/passwd"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestImportLegacyLogin imports each 1.1 source into weave (on each
// database in turn) and then does what a Pale Moon pointed at weave does:
// the node lookup and the first sync with the account's old password,
// which finds the account's collections, timestamps and records as the
// old server served them; the old hash is replaced at that first login,
// and the password still works after; a wrong one does not.
func TestImportLegacyLogin(t *testing.T) {
	into := map[string]string{
		"fsyncms/sqlite":        "postgres",
		"fsyncms/mysql":         "sqlite",
		"server-storage/mysql":  "mysql",
		"server-storage/sqlite": "sqlite",
	}
	importertest.RunLegacyInto(t, into, func(t *testing.T, c importertest.LegacyCase, src *importertest.LegacySource, u string) {
		ctx := t.Context()
		var h http.Handler = http.NotFoundHandler()
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
		defer hs.Close()

		// weave: token database, 1.1 accounts and one node's shard.
		tokens, err := sqlstore.OpenTokenDB(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		store, err2 := sqlstore.OpenStore(ctx, u, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		defer tokens.Close()
		defer store.Close()
		accounts := sqlstore.NewLegacyUserStore(tokens.DB())
		node, err := tokens.AddNode(ctx, weave.Node{URL: hs.URL + "/node1", Capacity: 10})
		if err != nil {
			t.Fatal(err)
		}

		storage, users := src.Storage, (*sqlstore.DB)(nil)
		if c.DB == "sqlite" {
			if storage, err = sqlite.OpenReadOnly(ctx, src.StorageURL, 0); err != nil {
				t.Fatal(err)
			}
			defer storage.Close()
		}
		if src.UsersURL != "" {
			if users, err = sqlite.OpenReadOnly(ctx, src.UsersURL, 0); err != nil {
				t.Fatal(err)
			}
			defer users.Close()
		}
		if _, err := importer.RunLegacy(ctx, importer.LegacyOptions{Storage: storage, Users: users, Dest: tokens,
			Accounts: accounts, Node: node, Shard: store}); err != nil {
			t.Fatal(err)
		}

		// Cheap hashes for new passwords: the upgrade is what is tested.
		svc, err := legacy.New(legacy.Config{Users: accounts, Tokens: tokens, PublicURL: hs.URL,
			KDF: passwd.Params{Memory: 64, Time: 1, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		rt := &fleet.Router{Fallback: http.NotFoundHandler()}
		if err := rt.Add(node.URL, svc.Storage(node.URL, store, nil, http.NotFoundHandler())); err != nil {
			t.Fatal(err)
		}
		h = svc.UserAPI(rt)

		get := func(url, user, password string, hdr ...string) (int, string) {
			t.Helper()
			req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(user, password)
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			return testkit.Get(t, req)
		}
		for _, a := range src.Accounts {
			if a.Disabled {
				if code, _ := get(hs.URL+"/user/1.0/"+a.Username+"/node/weave", a.Username, a.Password); code != http.StatusNotFound {
					t.Errorf("%s (disabled at the source): node lookup %d, want 404", a.Username, code)
				}
				continue
			}
			before, err := accounts.LegacyUser(ctx, a.Username)
			if err != nil {
				t.Fatal(err)
			}
			// Node lookup with the old password.
			code, body := get(hs.URL+"/user/1.0/"+a.Username+"/node/weave", a.Username, a.Password)
			if code != 200 || body != node.URL+"/" {
				t.Fatalf("%s: node lookup %d %q, want 200 %q", a.Username, code, body, node.URL+"/")
			}
			after, err := accounts.LegacyUser(ctx, a.Username)
			if err != nil || !strings.HasPrefix(after.PasswordHash, "$argon2id$") || after.PasswordHash == before.PasswordHash {
				t.Errorf("%s: hash %q after the first login (was %q), want it upgraded to argon2id (%v)", a.Username, after.PasswordHash, before.PasswordHash, err)
			}
			if code, _ := get(hs.URL+"/user/1.0/"+a.Username+"/node/weave", a.Username, a.Password+"x"); code == 200 {
				t.Errorf("%s: a wrong password is accepted", a.Username)
			}

			// First sync: info/collections, then each collection in
			// full, as newline-separated records.
			base := node.URL + "/1.1/" + a.Username
			code, body = get(base+"/info/collections", a.Username, a.Password)
			want := src.Want[a.Username]
			var colls map[string]json.RawMessage
			if code != 200 || json.Unmarshal([]byte(body), &colls) != nil || len(colls) != len(want.Collections) {
				t.Fatalf("%s: info/collections %d %s, want %d collections", a.Username, code, body, len(want.Collections))
			}
			for _, wc := range want.Collections {
				if got := string(colls[wc.Name]); got != wc.Modified.String() {
					t.Errorf("%s: info/collections %s = %s, want %s", a.Username, wc.Name, got, wc.Modified)
				}
				code, body := get(base+"/storage/"+wc.Name+"?full=1", a.Username, a.Password, "Accept", "application/newlines")
				if code != 200 {
					t.Fatalf("%s: storage/%s %d %s", a.Username, wc.Name, code, body)
				}
				var got []string
				sc := bufio.NewScanner(strings.NewReader(body))
				for sc.Scan() {
					var r struct {
						ID        string          `json:"id"`
						Payload   string          `json:"payload"`
						Modified  json.RawMessage `json:"modified"`
						SortIndex *int64          `json:"sortindex"`
					}
					if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
						t.Fatalf("%s: storage/%s line %q: %v", a.Username, wc.Name, sc.Text(), err)
					}
					si := "nil"
					if r.SortIndex != nil {
						si = fmt.Sprint(*r.SortIndex)
					}
					got = append(got, fmt.Sprintf("%s %s %s %q", r.ID, r.Modified, si, r.Payload))
				}
				var wantRecs []string
				for _, b := range wc.BSOs {
					si := "nil"
					if b.SortIndex != nil {
						si = fmt.Sprint(*b.SortIndex)
					}
					wantRecs = append(wantRecs, fmt.Sprintf("%s %s %s %q", b.ID, b.Modified, si, b.Payload))
				}
				slices.Sort(got)
				slices.Sort(wantRecs)
				if !slices.Equal(got, wantRecs) {
					t.Errorf("%s: storage/%s\n%s\nwant\n%s", a.Username, wc.Name, strings.Join(got, "\n"), strings.Join(wantRecs, "\n"))
				}
			}
			if code, _ := get(base+"/info/collections", a.Username, "wrong"); code != http.StatusUnauthorized {
				t.Errorf("%s: storage with a wrong password %d, want 401", a.Username, code)
			}
		}
	})
}
