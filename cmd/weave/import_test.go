package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
)

// The source schema: a syncstorage-rs MySQL storage database after its
// published migrations (the 2019-09-11 renames: userid, collection, ttl
// holding the absolute expiry in ms, last_modified; payload_size; the quota
// columns) and a tokenserver database.
var syncstorageSchema = []string{
	`CREATE TABLE bso (
		userid BIGINT NOT NULL,
		collection INT NOT NULL,
		id VARCHAR(64) NOT NULL,
		sortindex INT,
		payload MEDIUMTEXT NOT NULL,
		modified BIGINT NOT NULL,
		ttl BIGINT NOT NULL,
		payload_size INT DEFAULT 0,
		PRIMARY KEY (userid, collection, id),
		KEY bso_ttl_idx (ttl),
		KEY bso_usr_col_mod_idx (userid, collection, modified)
	) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
	`CREATE TABLE collections (
		id INT PRIMARY KEY NOT NULL AUTO_INCREMENT,
		name VARCHAR(32) UNIQUE NOT NULL
	) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
	`INSERT INTO collections (id, name) VALUES (1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'),
		(5, 'keys'), (6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
		(11, 'addons'), (12, 'addresses'), (13, 'creditcards'), (101, 'custom-engine')`,
	`CREATE TABLE user_collections (
		userid BIGINT NOT NULL,
		collection INT NOT NULL,
		last_modified BIGINT NOT NULL,
		count INT DEFAULT 0,
		total_bytes BIGINT DEFAULT 0,
		PRIMARY KEY (userid, collection)
	) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
}

var tokenserverSchema = []string{
	`CREATE TABLE services (
		id INT NOT NULL AUTO_INCREMENT,
		service VARCHAR(30) DEFAULT NULL,
		pattern VARCHAR(128) DEFAULT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY service (service)
	)`,
	`CREATE TABLE nodes (
		id BIGINT NOT NULL AUTO_INCREMENT,
		service INT NOT NULL,
		node VARCHAR(64) NOT NULL,
		available INT NOT NULL,
		current_load INT NOT NULL,
		capacity INT NOT NULL,
		downed INT NOT NULL,
		backoff INT NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY unique_idx (service, node)
	)`,
	`CREATE TABLE users (
		uid BIGINT NOT NULL AUTO_INCREMENT,
		service INT NOT NULL,
		email VARCHAR(255) NOT NULL,
		generation BIGINT NOT NULL,
		client_state VARCHAR(32) NOT NULL,
		created_at BIGINT NOT NULL,
		replaced_at BIGINT DEFAULT NULL,
		nodeid BIGINT NOT NULL,
		keys_changed_at BIGINT DEFAULT NULL,
		PRIMARY KEY (uid),
		KEY lookup_idx (email, service, created_at),
		KEY replaced_at_idx (service, replaced_at),
		KEY node_idx (nodeid)
	)`,
	`INSERT INTO services (id, service, pattern) VALUES (1, 'sync-1.5', '{node}/1.5/{uid}')`,
	`INSERT INTO nodes (id, service, node, available, current_load, capacity, downed, backoff)
		VALUES (800, 1, 'https://sync-1.example.net', 10, 3, 100, 0, 0)`,
}

func execAll(t *testing.T, db *sql.DB, stmts []string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
}

func TestImportSyncstorageRS(t *testing.T) {
	ctx := context.Background()
	storageURL, tokenURL, weaveURL := dbtest.MySQL(t), dbtest.MySQL(t), dbtest.MySQL(t)
	open := func(u string) *sql.DB {
		db, err := mysql.Open(ctx, u, mysql.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db.Write
	}
	src, tok := open(storageURL), open(tokenURL)
	execAll(t, src, syncstorageSchema)
	execAll(t, tok, tokenserverSchema)

	const (
		fxaA = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
		fxaB = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
		csA  = "0123456789abcdef0123456789abcdef" // what syncClient presents
		kca  = int64(1700000000000)
	)
	now := time.Now().UnixMilli() / 10 * 10
	never := now + 2100000000*1000 // syncstorage-rs's default TTL
	users := []weave.TokenUser{
		// Account A: an old record (replaced on a key change) and the live one.
		{UID: 2, Email: fxaA + "@api.accounts.firefox.com", Generation: 1, ClientState: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			KeysChangedAt: 1600000000000, CreatedAt: 1600000000000, ReplacedAt: 1700000000000},
		{UID: 41, Email: fxaA + "@api.accounts.firefox.com", Generation: 1, ClientState: csA,
			KeysChangedAt: kca, CreatedAt: 1700000000000},
		{UID: 57, Email: fxaB + "@api.accounts.firefox.com", Generation: 1, ClientState: "",
			CreatedAt: 1690000000000},
	}
	for _, u := range users {
		var rep, kc any
		if u.ReplacedAt != 0 {
			rep = u.ReplacedAt
		}
		if u.KeysChangedAt != 0 {
			kc = u.KeysChangedAt
		}
		if _, err := tok.Exec(`INSERT INTO users (uid, service, email, generation, client_state, created_at, replaced_at, nodeid, keys_changed_at)
			VALUES (?, 1, ?, ?, ?, ?, ?, 800, ?)`, u.UID, u.Email, u.Generation, u.ClientState, u.CreatedAt, rep, kc); err != nil {
			t.Fatal(err)
		}
	}
	si := func(n int64) *int64 { return &n }
	want := map[int64]weave.UserData{
		41: {UID: 41, Exists: true, Modified: weave.Timestamp(now - 1000), Collections: []weave.UserCollection{
			{Name: "bookmarks", Modified: weave.Timestamp(now - 2000), BSOs: []weave.UserBSO{
				{ID: "menu", SortIndex: si(1000000), Payload: `{"ciphertext":"menu"}`, Modified: weave.Timestamp(now - 2000), Expiry: never},
				{ID: "toolbar", SortIndex: si(-5), Payload: `{"ciphertext":"tb"}`, Modified: weave.Timestamp(now - 3000), Expiry: never},
			}},
			{Name: "custom-engine", Modified: weave.Timestamp(now - 1000), BSOs: []weave.UserBSO{
				{ID: "x", Payload: "custom", Modified: weave.Timestamp(now - 1000), Expiry: never},
			}},
			{Name: "tabs", Modified: weave.Timestamp(now - 1500), BSOs: []weave.UserBSO{
				{ID: "device1", Payload: `{"ciphertext":"tabs"}`, Modified: weave.Timestamp(now - 1500), Expiry: now + 3600*1000},
				{ID: "gone", Payload: `{"ciphertext":"old"}`, Modified: weave.Timestamp(now - 9000), Expiry: now - 5000},
			}},
		}},
		57: {UID: 57, Exists: true, Modified: weave.Timestamp(now - 7000), Collections: []weave.UserCollection{
			{Name: "meta", Modified: weave.Timestamp(now - 7000), BSOs: []weave.UserBSO{
				{ID: "global", Payload: `{"syncID":"b","storageVersion":5}`, Modified: weave.Timestamp(now - 7000), Expiry: never},
			}},
		}},
	}
	cids := map[string]int{"bookmarks": 7, "tabs": 9, "meta": 6, "custom-engine": 101}
	for uid, d := range want {
		for _, c := range d.Collections {
			if _, err := src.Exec(`INSERT INTO user_collections (userid, collection, last_modified, count, total_bytes) VALUES (?, ?, ?, ?, 0)`,
				uid, cids[c.Name], int64(c.Modified), len(c.BSOs)); err != nil {
				t.Fatal(err)
			}
			for _, b := range c.BSOs {
				var sortIndex any
				if b.SortIndex != nil {
					sortIndex = *b.SortIndex
				}
				if _, err := src.Exec(`INSERT INTO bso (userid, collection, id, sortindex, payload, payload_size, modified, ttl) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
					uid, cids[c.Name], b.ID, sortIndex, b.Payload, len(b.Payload), int64(b.Modified), b.Expiry); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	srv := startServer(t, weaveURL)
	importArgs := []string{"import", "--from-storage-url", storageURL, "--from-token-url", tokenURL,
		"--to-node", srv.base, "--token-database-url", weaveURL, "--data-dir", t.TempDir()}
	runImport := func(extra ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(ctx, append(importArgs, extra...), &out, &errb); code != 0 {
			t.Fatalf("weave import exited with %d\nstdout: %s\nstderr: %s", code, &out, &errb)
		}
		return out.String()
	}
	// Accounts go in email order: B first.
	if out := runImport("--users", "1"); !strings.HasPrefix(out, "1 accounts: 1 imported, 0 already imported; 1 token records, 1 collections, 1 records") {
		t.Fatalf("first partial import: %s", out)
	}
	if out := runImport(); !strings.HasPrefix(out, "2 accounts: 1 imported, 1 already imported; 2 token records, 3 collections, 5 records") {
		t.Fatalf("import: %s", out)
	}
	if out := runImport(); !strings.HasPrefix(out, "2 accounts: 0 imported, 2 already imported; 0 token records") {
		t.Fatalf("re-run: %s", out)
	}

	// Token records: same uid, generation, client state, key change time.
	tokens, err := mysql.OpenTokenDB(ctx, weaveURL, mysql.TokenDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	node, err := tokens.NodeByURL(ctx, srv.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		got, err := tokens.UserByUID(ctx, u.UID)
		if err != nil {
			t.Fatalf("uid %d: %v", u.UID, err)
		}
		if got.Email != u.Email || got.Generation != u.Generation || got.ClientState != u.ClientState ||
			got.KeysChangedAt != u.KeysChangedAt || got.CreatedAt != u.CreatedAt || got.ReplacedAt != u.ReplacedAt || got.NodeID != node.ID {
			t.Errorf("uid %d: token record %+v, want %+v on node %d", u.UID, got, u, node.ID)
		}
	}
	if n, err := tokens.NodeByID(ctx, node.ID); err != nil || n.CurrentLoad != 2 {
		t.Errorf("node load %d (%v), want 2", n.CurrentLoad, err)
	}

	// Data: every record, timestamp and expiry as in the source.
	store, err := mysql.OpenStore(ctx, weaveURL, mysql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for uid, w := range want {
		got, err := store.ExportUser(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		weave.SortUserData(&w)
		if g, e := fmt.Sprintf("%+v", dumpUser(got)), fmt.Sprintf("%+v", dumpUser(w)); g != e {
			t.Errorf("uid %d imported as\n%s\nwant\n%s", uid, g, e)
		}
	}

	// Firefox with the same account and keys gets the same uid and its data.
	c := srv.client(t, fxaA)
	if c.token.UID != 41 {
		t.Fatalf("token uid %d, want 41", c.token.UID)
	}
	var colls map[string]float64
	c.must(200, "GET", "/info/collections", nil).json(t, &colls)
	for _, col := range want[41].Collections {
		if got := int64(colls[col.Name]*1000 + 0.5); got != int64(col.Modified) {
			t.Errorf("info/collections %s = %v, want %d ms", col.Name, colls[col.Name], col.Modified)
		}
	}
	var bsos []struct {
		ID        string  `json:"id"`
		Payload   string  `json:"payload"`
		SortIndex int64   `json:"sortindex"`
		Modified  float64 `json:"modified"`
	}
	c.must(200, "GET", "/storage/bookmarks?full=1&sort=index", nil).json(t, &bsos)
	if len(bsos) != 2 || bsos[0].ID != "menu" || bsos[0].Payload != `{"ciphertext":"menu"}` || bsos[0].SortIndex != 1000000 ||
		bsos[1].ID != "toolbar" || bsos[1].SortIndex != -5 || int64(bsos[1].Modified*1000+0.5) != now-3000 {
		t.Errorf("bookmarks %+v", bsos)
	}
	c.must(200, "GET", "/storage/tabs?full=1", nil).json(t, &bsos)
	if len(bsos) != 1 || bsos[0].ID != "device1" {
		t.Errorf("tabs (the expired record must stay hidden) %+v", bsos)
	}
	// And keeps syncing on top of it.
	c.must(200, "PUT", "/storage/bookmarks/unfiled", map[string]any{"payload": "new"})
	c.must(200, "GET", "/storage/bookmarks/menu", nil)

	// A user that is not Mozilla's still gets a fresh uid past the imported ones.
	n := srv.client(t, "99999999999999999999999999999999")
	if n.token.UID <= 57 {
		t.Errorf("new user got uid %d, reusing the imported range", n.token.UID)
	}
}

// dumpUser renders d with its pointers followed.
func dumpUser(d weave.UserData) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "uid=%d exists=%v modified=%d\n", d.UID, d.Exists, d.Modified)
	for _, c := range d.Collections {
		fmt.Fprintf(&sb, " %s modified=%d\n", c.Name, c.Modified)
		for _, b := range c.BSOs {
			si := "nil"
			if b.SortIndex != nil {
				si = fmt.Sprint(*b.SortIndex)
			}
			fmt.Fprintf(&sb, "  %s sortindex=%s modified=%d expiry=%d payload=%q\n", b.ID, si, b.Modified, b.Expiry, b.Payload)
		}
	}
	return sb.String()
}
