package importer

import (
	"strings"
	"testing"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

// TestReadAccountsOlderTokenservers reads the users of Python tokenservers
// from before keys_changed_at (2019) and before nodeid (2014), filtered by
// node or not, on both databases.
func TestReadAccountsOlderTokenservers(t *testing.T) {
	for _, kind := range []string{"mysql", "postgres"} {
		for _, nodeCol := range []string{"nodeid BIGINT", "node VARCHAR(64)"} {
			t.Run(kind+"/"+strings.Fields(nodeCol)[0], func(t *testing.T) {
				var db *sqlstore.DB
				var err error
				if kind == "mysql" {
					db, err = mysql.Open(t.Context(), dbtest.MySQL(t), sqlstore.PoolOptions{MaxOpenConns: 2})
				} else {
					db, err = postgres.Open(t.Context(), dbtest.Postgres(t), sqlstore.PoolOptions{MaxOpenConns: 2})
				}
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				node1, node2 := "1", "2"
				if !strings.HasPrefix(nodeCol, "nodeid") {
					node1, node2 = "'https://a.example'", "'https://b.example'"
				}
				for _, q := range []string{
					`CREATE TABLE services (id INTEGER NOT NULL, service VARCHAR(30), pattern VARCHAR(128), PRIMARY KEY (id))`,
					`CREATE TABLE nodes (id BIGINT NOT NULL, service INTEGER NOT NULL, node VARCHAR(64) NOT NULL, PRIMARY KEY (id))`,
					`CREATE TABLE users (uid BIGINT NOT NULL, service INTEGER NOT NULL, email VARCHAR(255) NOT NULL,
						` + nodeCol + ` NOT NULL, generation BIGINT NOT NULL, client_state VARCHAR(32) NOT NULL,
						created_at BIGINT NOT NULL, replaced_at BIGINT, PRIMARY KEY (uid))`,
					`INSERT INTO services VALUES (1, 'sync-1.5', '{node}/1.5/{uid}'), (2, 'sync-1.1', '{node}')`,
					`INSERT INTO nodes VALUES (1, 1, 'https://a.example'), (2, 1, 'https://b.example')`,
					`INSERT INTO users VALUES (5, 1, 'x@example.com', ` + node1 + `, 3, 'aa', 1000, 2000),
						(9, 1, 'x@example.com', ` + node2 + `, 4, 'bb', 2000, NULL),
						(7, 1, 'y@example.com', ` + node1 + `, 1, '', 1500, NULL),
						(8, 2, 'z@example.com', ` + node1 + `, 1, '', 1500, NULL)`,
				} {
					if _, err := db.Write.Exec(q); err != nil {
						t.Fatalf("%v\n%s", err, q)
					}
				}
				accs, err := readAccounts(t.Context(), db, "sync-1.5", "")
				if err != nil {
					t.Fatal(err)
				}
				if len(accs) != 2 || accs[0].email != "x@example.com" || len(accs[0].recs) != 2 || accs[1].email != "y@example.com" {
					t.Fatalf("accounts %+v, want x (2 records) and y", accs)
				}
				if r := accs[0].recs[1]; r.UID != 9 || r.Generation != 4 || r.ClientState != "bb" || r.KeysChangedAt != 0 || r.ReplacedAt != 0 || accs[0].recs[0].ReplacedAt != 2000 {
					t.Errorf("x's records %+v", accs[0].recs)
				}
				accs, err = readAccounts(t.Context(), db, "sync-1.5", "https://a.example")
				if err != nil {
					t.Fatal(err)
				}
				if len(accs) != 2 || len(accs[0].recs) != 1 || accs[0].recs[0].UID != 5 || accs[1].recs[0].UID != 7 {
					t.Errorf("accounts on node a: %+v, want uids 5 and 7", accs)
				}
				if _, err := readAccounts(t.Context(), db, "sync-9", ""); err == nil || !strings.Contains(err.Error(), `no service "sync-9"`) {
					t.Errorf("unknown service: %v", err)
				}
			})
		}
	}
}
