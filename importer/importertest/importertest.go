// Package importertest builds source databases for the importer's tests:
// the published schemas of syncstorage-rs (MySQL and PostgreSQL), of the
// Python server-syncstorage (MySQL and PostgreSQL) and of their
// tokenservers, filled with one data set — records with and without
// expiry, a custom collection, a deleted-collection tombstone, open and
// expired batches — and what weave must hold after importing it.
package importertest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/sqlstore"
)

// Case is one source schema on one database server.
type Case struct {
	Name   string          // e.g. "syncstorage-rs/postgres"
	Schema importer.Schema // what OpenSource must recognise
	DB     string          // "mysql" or "postgres"
	// Shards is the number of bso/batch_upload_items tables of a sharded
	// server-syncstorage (0: the single bso table).
	Shards int
	// StandardCollections: server-syncstorage configured with
	// standard_collections, so the usual collections are not in its
	// collections table.
	StandardCollections bool
	storage, tokens     func(c Case) []string
}

// Cases are the supported sources.
func Cases() []Case {
	return []Case{
		{Name: "syncstorage-rs/mysql", Schema: importer.SyncstorageRS, DB: "mysql",
			storage: func(Case) []string { return rsMySQLStorage }, tokens: func(Case) []string { return rsMySQLTokens }},
		{Name: "syncstorage-rs/postgres", Schema: importer.SyncstorageRS, DB: "postgres",
			storage: func(Case) []string { return rsPostgresStorage }, tokens: func(Case) []string { return rsPostgresTokens }},
		{Name: "server-syncstorage/mysql", Schema: importer.ServerSyncstorage, DB: "mysql", StandardCollections: true,
			storage: pythonStorage, tokens: func(Case) []string { return pythonMySQLTokens }},
		{Name: "server-syncstorage/postgres", Schema: importer.ServerSyncstorage, DB: "postgres", Shards: 4,
			storage: pythonStorage, tokens: func(Case) []string { return pythonPostgresTokens }},
	}
}

// Source is a created and filled source: its databases and what weave
// must hold after the import.
type Source struct {
	StorageURL, TokenURL string
	Storage, Tokens      *sqlstore.DB
	// Users are the token records, as weave must have them.
	Users []weave.TokenUser
	// Want is every live uid's data as weave must hold it (canonical
	// order).
	Want map[int64]weave.UserData
	// OpenBatch is a batch open at the source, as the client knows it.
	OpenBatch struct {
		UID        int64
		Collection string
		ClientID   string
	}
	c Case
	T int64 // the data set's now, in whole seconds (ms)
}

// Account ids (the FxA uid, the part of the email before @) and the
// client state and key-change time the live record of account A has.
const (
	FxAA          = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	FxAB          = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	ClientStateA  = "0123456789abcdef0123456789abcdef"
	KeysChangedAt = int64(1700000000000)
	Domain        = "@api.accounts.firefox.com"
)

// Open creates the case's databases on the test servers (skipping the test
// when the server is absent, see dbtest) and fills them as of now.
func (c Case) Open(t testing.TB, now time.Time) *Source {
	t.Helper()
	s := &Source{c: c}
	switch c.DB {
	case "mysql":
		s.StorageURL, s.TokenURL = dbtest.MySQL(t), dbtest.MySQL(t)
	default:
		s.StorageURL, s.TokenURL = dbtest.Postgres(t), dbtest.Postgres(t)
	}
	s.Storage, s.Tokens = open(t, s.StorageURL), open(t, s.TokenURL)
	exec(t, s.Storage, c.storage(c)...)
	exec(t, s.Tokens, c.tokens(c)...)
	c.fill(t, s, now)
	return s
}

func open(t testing.TB, url string) *sqlstore.DB {
	t.Helper()
	var db *sqlstore.DB
	var err error
	if strings.HasPrefix(url, "mysql:") {
		db, err = mysql.Open(t.Context(), url, sqlstore.PoolOptions{MaxOpenConns: 2})
	} else {
		db, err = postgres.Open(t.Context(), url, sqlstore.PoolOptions{MaxOpenConns: 2})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t testing.TB, db *sqlstore.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Write.Exec(q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
}

// Exec runs one statement (with ? placeholders) on db.
func Exec(t testing.TB, db *sqlstore.DB, q string, args ...any) sql.Result {
	t.Helper()
	r, err := db.Write.Exec(db.Q(q), args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return r
}

// Records written without a TTL, as the servers store them (see
// storedExpiry); weave must hold them as never expiring.
const (
	never        = -1 << 60  // by a PUT or POST
	neverBatch   = never + 1 // by a batch commit
	neverEarlier = never + 2 // by a PUT a day before the record's last write
)

// farExpiry is a real expiry beyond syncstorage-rs's 2036 "never"
// (2036-11-12), from a client's long TTL: kept as it is.
const farExpiry = 2110000000000

type bso struct {
	coll, id  string
	sortIndex *int64
	payload   string
	modified  int64 // ms before now
	expiry    int64 // ms after now, or never…, or farExpiry
}

type item struct {
	id        string
	payload   *string
	sortIndex *int64
	ttl       *int64
}

type batch struct {
	coll  string
	age   int64 // created this many ms ago
	items []item
}

func ptr[T any](v T) *T { return &v }

// The data set: times relative to now (whole seconds, as Python stores
// expiries in seconds).
var (
	colls = map[int64]map[string]int64{ // uid → collection → ms before now
		41: {"bookmarks": 2000, "custom-engine": 1000, "tabs": 1500},
		57: {"meta": 7000},
	}
	bsos = map[int64][]bso{
		41: {
			{"bookmarks", "menu", ptr[int64](1000000), `{"ciphertext":"menu"}`, 2000, neverBatch},
			{"bookmarks", "toolbar", ptr[int64](-5), `{"ciphertext":"tb"}`, 3000, neverEarlier},
			{"custom-engine", "x", nil, "custom", 1000, farExpiry},
			{"tabs", "device1", nil, `{"ciphertext":"tabs"}`, 1500, 3600 * 1000},
			{"tabs", "gone", nil, `{"ciphertext":"old"}`, 9000, -5000},
		},
		57: {
			{"meta", "global", nil, `{"syncID":"b","storageVersion":5}`, 7000, never},
		},
	}
	// tombstones: syncstorage-rs's record of a deleted collection (ms
	// before now), which keeps the storage timestamp.
	tombstones = map[int64]int64{57: 500}
	batches    = map[int64][]batch{
		41: {
			{"bookmarks", 60000, []item{
				{id: "unfiled", payload: ptr(`{"ciphertext":"unfiled"}`), sortIndex: ptr[int64](7)},
				{id: "menu", sortIndex: ptr[int64](99)},
				{id: "mobile", payload: ptr(`{"ciphertext":"mobile"}`), ttl: ptr[int64](3600)},
			}},
			// A batch in a collection that has no records yet.
			{"passwords", 30000, []item{{id: "login1", payload: ptr(`{"ciphertext":"pw"}`)}}},
			// Expired three hours ago: not imported.
			{"tabs", 3 * 3600 * 1000, []item{{id: "device2", payload: ptr(`{"ciphertext":"d2"}`)}}},
		},
	}
	// rsBatchIDs are the UUIDs of syncstorage-rs PostgreSQL's batches.
	rsBatchIDs = map[string]string{
		"bookmarks": "6f1c1e0a-3b5d-4c1e-9a51-0d7f1f2b9c01",
		"passwords": "0b4e7d2c-91aa-4f3e-8c2d-5a6b7c8d9e0f",
		"tabs":      "c3d2e1f0-a9b8-4c7d-8e6f-5a4b3c2d1e0f",
	}
)

// users are the token records.
func users() []weave.TokenUser {
	return []weave.TokenUser{
		// Account A: an old record (replaced on a key change) and the live one.
		{UID: 2, Email: FxAA + Domain, Generation: 1, ClientState: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			KeysChangedAt: 1600000000000, CreatedAt: 1600000000000, ReplacedAt: 1700000000000},
		{UID: 41, Email: FxAA + Domain, Generation: 1, ClientState: ClientStateA,
			KeysChangedAt: KeysChangedAt, CreatedAt: 1700000000000},
		{UID: 57, Email: FxAB + Domain, Generation: 1, ClientState: "", CreatedAt: 1690000000000},
	}
}

// fill writes the data set and computes what weave must hold.
func (c Case) fill(t testing.TB, s *Source, now time.Time) {
	t.Helper()
	T := now.Truncate(time.Second).UnixMilli()
	s.T = T
	rs := c.Schema == importer.SyncstorageRS
	pg := c.DB == "postgres"
	s.Users = users()
	for _, u := range s.Users {
		var rep, kc any
		if u.ReplacedAt != 0 {
			rep = u.ReplacedAt
		}
		if u.KeysChangedAt != 0 {
			kc = u.KeysChangedAt
		}
		Exec(t, s.Tokens, `INSERT INTO users (uid, service, email, generation, client_state, created_at, replaced_at, nodeid, keys_changed_at)
			VALUES (?, 1, ?, ?, ?, ?, ?, 800, ?)`, u.UID, u.Email, u.Generation, u.ClientState, u.CreatedAt, rep, kc)
	}

	ids := map[string]int64{}
	collID := func(name string) int64 {
		if id, ok := ids[name]; ok {
			return id
		}
		idCol := "id"
		switch {
		case c.Schema == importer.ServerSyncstorage:
			idCol = "collectionid"
		case pg:
			idCol = "collection_id"
		}
		var id int64
		err := s.Storage.Write.QueryRow(s.Storage.Q(`SELECT `+idCol+` FROM collections WHERE name = ?`), name).Scan(&id)
		if err == sql.ErrNoRows && c.StandardCollections {
			for sid, n := range pythonStandard {
				if n == name {
					id, err = sid, nil
				}
			}
		}
		if err == sql.ErrNoRows {
			Exec(t, s.Storage, `INSERT INTO collections (name) VALUES (?)`, name)
			err = s.Storage.Write.QueryRow(s.Storage.Q(`SELECT `+idCol+` FROM collections WHERE name = ?`), name).Scan(&id)
		}
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
		return id
	}
	// ms converts a time into what the schema stores.
	ms := func(v int64) any {
		if rs && pg {
			return time.UnixMilli(v).UTC()
		}
		return v
	}

	s.Want = map[int64]weave.UserData{}
	for _, u := range s.Users {
		if u.ReplacedAt != 0 {
			continue
		}
		uid := u.UID
		d := weave.UserData{UID: uid, Exists: true}
		byName := map[string]*weave.UserCollection{}
		for name, ago := range colls[uid] {
			table := "user_collections (userid, collection, last_modified)"
			if rs && pg {
				table = "user_collections (user_id, collection_id, modified)"
			}
			Exec(t, s.Storage, `INSERT INTO `+table+` VALUES (?, ?, ?)`, uid, collID(name), ms(T-ago))
			byName[name] = &weave.UserCollection{Name: name, Modified: weave.Timestamp(T - ago)}
			d.Modified = max(d.Modified, weave.Timestamp(T-ago))
		}
		if ago, ok := tombstones[uid]; ok && rs {
			table := "user_collections (userid, collection, last_modified)"
			if pg {
				table = "user_collections (user_id, collection_id, modified)"
			}
			Exec(t, s.Storage, `INSERT INTO `+table+` VALUES (?, 0, ?)`, uid, ms(T-ago))
			d.Modified = max(d.Modified, weave.Timestamp(T-ago))
		}
		for _, b := range bsos[uid] {
			mod := T - b.modified
			want := weave.UserBSO{ID: b.id, SortIndex: b.sortIndex, Payload: b.payload, Modified: weave.Timestamp(mod)}
			expires, stored := c.storedExpiry(b, T, mod) // stored: the source's expiry column
			want.Expires = weave.Timestamp(expires)
			var si any
			if b.sortIndex != nil {
				si = *b.sortIndex
			}
			cid := collID(b.coll)
			switch {
			case rs && pg:
				Exec(t, s.Storage, `INSERT INTO bsos (user_id, collection_id, bso_id, sortindex, payload, modified, expiry) VALUES (?, ?, ?, ?, ?, ?, ?)`,
					uid, cid, b.id, si, b.payload, ms(mod), ms(stored))
			default:
				Exec(t, s.Storage, `INSERT INTO `+c.bsoTable(uid)+` (userid, collection, id, sortindex, payload, payload_size, modified, ttl) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
					uid, cid, b.id, si, b.payload, len(b.payload), mod, stored)
			}
			byName[b.coll].BSOs = append(byName[b.coll].BSOs, want)
		}
		for _, uc := range byName {
			d.Collections = append(d.Collections, *uc)
		}
		for _, b := range batches[uid] {
			cid := collID(b.coll)
			var clientID string
			var expiry int64
			if rs && pg {
				clientID, expiry = rsBatchIDs[b.coll], T-b.age+7200*1000
				if _, ok := byName[b.coll]; !ok {
					// The row syncstorage-rs creates, undated, for a
					// collection that only has a batch.
					Exec(t, s.Storage, `INSERT INTO user_collections (user_id, collection_id, modified) VALUES (?, ?, '0001-01-01 00:00:00+00')`, uid, cid)
				}
				Exec(t, s.Storage, `INSERT INTO batches (user_id, collection_id, batch_id, expiry) VALUES (?, ?, CAST(? AS UUID), ?)`, uid, cid, clientID, ms(expiry))
			} else {
				n := T - b.age + uid%10 // a creation time in ms, as both servers make them
				clientID, expiry = importer.LegacyBatchID(n), n+7200*1000
				Exec(t, s.Storage, `INSERT INTO batch_uploads (batch, userid, collection) VALUES (?, ?, ?)`, n, uid, cid)
				for _, it := range b.items {
					var p, size, si, ttl any
					if it.payload != nil {
						p, size = *it.payload, len(*it.payload)
					}
					if it.sortIndex != nil {
						si = *it.sortIndex
					}
					if it.ttl != nil {
						ttl = *it.ttl
					}
					Exec(t, s.Storage, `INSERT INTO `+c.buiTable(n)+` (batch, userid, id, sortindex, payload, payload_size, ttl_offset) VALUES (?, ?, ?, ?, ?, ?, ?)`,
						n, uid, it.id, si, p, size, ttl)
				}
			}
			want := weave.UserBatch{ID: sqlstore.ForeignBatchID(clientID), Collection: b.coll, Expiry: expiry}
			for _, it := range b.items {
				st := weave.StagedItem{ID: it.id, SortIndex: it.sortIndex, SortIndexOK: it.sortIndex != nil, TTL: it.ttl, TTLSet: it.ttl != nil}
				if it.payload != nil {
					st.Payload, st.PayloadSet = *it.payload, true
				}
				want.Items = append(want.Items, st)
				if rs && pg {
					var p, si, ttl any
					if it.payload != nil {
						p = *it.payload
					}
					if it.sortIndex != nil {
						si = *it.sortIndex
					}
					if it.ttl != nil {
						ttl = *it.ttl
					}
					Exec(t, s.Storage, `INSERT INTO batch_bsos (user_id, collection_id, batch_id, batch_bso_id, sortindex, payload, ttl) VALUES (?, ?, CAST(? AS UUID), ?, ?, ?, ?)`,
						uid, cid, clientID, it.id, si, p, ttl)
				}
			}
			if expiry > now.UnixMilli() {
				d.Batches = append(d.Batches, want)
			}
			if b.coll == "bookmarks" {
				s.OpenBatch.UID, s.OpenBatch.Collection, s.OpenBatch.ClientID = uid, b.coll, clientID
			}
		}
		weave.SortUserData(&d)
		s.Want[uid] = d
	}
}

// storedExpiry is what weave must hold as b's expiry (ms, 0: never) and
// what the source's expiry column holds for it, for a record last written
// at mod (ms).
func (c Case) storedExpiry(b bso, T, mod int64) (want, stored int64) {
	const rsNever = 2100000000 * 1000 // syncstorage-rs's DEFAULT_BSO_TTL in ms
	rs := c.Schema == importer.SyncstorageRS
	switch {
	case b.expiry == farExpiry:
		want = farExpiry
	case b.expiry > neverEarlier:
		want = T + b.expiry
	case !rs:
		return 0, 2100000000 // Python's MAX_TTL, whatever the write
	case b.expiry == neverBatch && c.DB == "mysql":
		return 0, rsNever // absolute: batch_commit.sql binds MAX_TTL * 1000
	case b.expiry == neverEarlier:
		return 0, mod - 86400*1000 + rsNever
	default:
		return 0, mod + rsNever // the write's time plus DEFAULT_BSO_TTL
	}
	if rs {
		return want, want
	}
	return want, want / 1000
}

// ChangeAccountA writes to account A's live uid at the source as a client
// of the old server would after the import: a new payload for the record
// bookmarks/menu, at the data set's now plus ahead ms (negative: not in
// the future, where weave's next write would have to follow it), and
// weave must then hold that.
func (s *Source) ChangeAccountA(t testing.TB, ahead int64) {
	t.Helper()
	const uid = 41
	mod := s.T + ahead
	var cid int64
	switch {
	case s.c.Schema == importer.SyncstorageRS && s.c.DB == "postgres":
		when := time.UnixMilli(mod).UTC()
		if err := s.Storage.Write.QueryRow(`SELECT collection_id FROM collections WHERE name = 'bookmarks'`).Scan(&cid); err != nil {
			t.Fatal(err)
		}
		Exec(t, s.Storage, `UPDATE bsos SET payload = ?, modified = ? WHERE user_id = ? AND collection_id = ? AND bso_id = 'menu'`, `{"ciphertext":"menu2"}`, when, uid, cid)
		Exec(t, s.Storage, `UPDATE user_collections SET modified = ? WHERE user_id = ? AND collection_id = ?`, when, uid, cid)
	default:
		idCol := "id"
		if s.c.Schema == importer.ServerSyncstorage {
			idCol = "collectionid"
		}
		err := s.Storage.Write.QueryRow(`SELECT ` + idCol + ` FROM collections WHERE name = 'bookmarks'`).Scan(&cid)
		if err == sql.ErrNoRows && s.c.StandardCollections {
			cid, err = 7, nil
		}
		if err != nil {
			t.Fatal(err)
		}
		Exec(t, s.Storage, `UPDATE `+s.c.bsoTable(uid)+` SET payload = ?, payload_size = ?, modified = ? WHERE userid = ? AND collection = ? AND id = 'menu'`,
			`{"ciphertext":"menu2"}`, len(`{"ciphertext":"menu2"}`), mod, uid, cid)
		Exec(t, s.Storage, `UPDATE user_collections SET last_modified = ? WHERE userid = ? AND collection = ?`, mod, uid, cid)
	}
	d := s.Want[uid]
	d.Collections = slices.Clone(d.Collections)
	for i, c := range d.Collections {
		if c.Name != "bookmarks" {
			continue
		}
		c.Modified = weave.Timestamp(mod)
		c.BSOs = slices.Clone(c.BSOs)
		for j := range c.BSOs {
			if c.BSOs[j].ID == "menu" {
				c.BSOs[j].Payload, c.BSOs[j].Modified = `{"ciphertext":"menu2"}`, weave.Timestamp(mod)
			}
		}
		d.Collections[i] = c
	}
	d.Modified = max(d.Modified, weave.Timestamp(mod))
	s.Want[uid] = d
}

func (c Case) bsoTable(uid int64) string {
	if c.Shards > 0 {
		return "bso" + itoa(uid%int64(c.Shards))
	}
	return "bso"
}

func (c Case) buiTable(batch int64) string {
	if c.Shards > 0 {
		return "batch_upload_items" + itoa(batch%int64(c.Shards))
	}
	return "batch_upload_items"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var pythonStandard = map[int64]string{
	1: "clients", 2: "crypto", 3: "forms", 4: "history", 5: "keys", 6: "meta",
	7: "bookmarks", 8: "prefs", 9: "tabs", 10: "passwords", 11: "addons",
}

// CheckImported checks that weave holds what the source must have become:
// every token record (on node nodeID) and every live uid's data in store.
func (s *Source) CheckImported(t *testing.T, ctx context.Context, tokens *sqlstore.TokenDB, store weave.UserMover, nodeID int64) {
	t.Helper()
	for _, u := range s.Users {
		got, err := tokens.UserByUID(ctx, u.UID)
		if err != nil {
			t.Fatalf("uid %d: %v", u.UID, err)
		}
		if got.Email != u.Email || got.Generation != u.Generation || got.ClientState != u.ClientState ||
			got.KeysChangedAt != u.KeysChangedAt || got.CreatedAt != u.CreatedAt || got.ReplacedAt != u.ReplacedAt || got.NodeID != nodeID {
			t.Errorf("uid %d: token record %+v, want %+v on node %d", u.UID, got, u, nodeID)
		}
	}
	for uid, want := range s.Want {
		got, err := store.ExportUser(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := Dump(got), Dump(want); g != w {
			t.Errorf("uid %d imported as\n%s\nwant\n%s", uid, g, w)
		}
	}
}

// Dump renders d with its pointers followed, for comparisons.
func Dump(d weave.UserData) string {
	var sb strings.Builder
	opt := func(p *int64) string {
		if p == nil {
			return "nil"
		}
		return strconv.FormatInt(*p, 10)
	}
	fmt.Fprintf(&sb, "uid=%d exists=%v modified=%d\n", d.UID, d.Exists, d.Modified)
	for _, c := range d.Collections {
		fmt.Fprintf(&sb, " %s modified=%d\n", c.Name, c.Modified)
		for _, b := range c.BSOs {
			fmt.Fprintf(&sb, "  %s sortindex=%s modified=%d expiry=%d payload=%q", b.ID, opt(b.SortIndex), b.Modified, b.Expires, b.Payload)
			if b.ParentID != "" || b.PredecessorID != "" {
				fmt.Fprintf(&sb, " parentid=%q predecessorid=%q", b.ParentID, b.PredecessorID)
			}
			sb.WriteByte('\n')
		}
	}
	for _, b := range d.Batches {
		fmt.Fprintf(&sb, " batch %d %s expiry=%d\n", b.ID, b.Collection, b.Expiry)
		for _, it := range b.Items {
			fmt.Fprintf(&sb, "  %s payload=%q/%v sortindex=%s/%v ttl=%s/%v\n", it.ID, it.Payload, it.PayloadSet, opt(it.SortIndex), it.SortIndexOK, opt(it.TTL), it.TTLSet)
		}
	}
	return sb.String()
}
