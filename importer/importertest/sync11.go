package importertest

// 1.1 sources: FSyncMS (SQLite, MySQL) and Mozilla's server-storage with
// server-core's user tables (MySQL, SQLite), in the table definitions
// their code creates, filled with accounts whose passwords are hashed in
// each format those servers wrote.

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/legacy/passwd"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// LegacyCase is one 1.1 source schema on one database.
type LegacyCase struct {
	Name   string
	Schema importer.Schema
	DB     string // "sqlite" or "mysql"
	// server-storage: Shards wbo tables (0: the single wbo), its users in
	// server-core's "users" table (services.auth.sql, in the storage
	// database) or "user" table (services.user.sql, in a database of its
	// own), and standard_collections on or off.
	Shards              int
	UsersTable          string
	StandardCollections bool
}

// LegacyCases are the supported 1.1 sources.
func LegacyCases() []LegacyCase {
	return []LegacyCase{
		{Name: "fsyncms/sqlite", Schema: importer.FSyncMS, DB: "sqlite"},
		{Name: "fsyncms/mysql", Schema: importer.FSyncMS, DB: "mysql"},
		{Name: "server-storage/mysql", Schema: importer.ServerStorage, DB: "mysql", UsersTable: "users", StandardCollections: true},
		{Name: "server-storage/sqlite", Schema: importer.ServerStorage, DB: "sqlite", Shards: 3, UsersTable: "user"},
	}
}

// LegacyAccount is an account of the data set.
type LegacyAccount struct {
	Username, Password, Email string
	Disabled                  bool // server-storage only
	id                        int64
}

// LegacySource is a created and filled 1.1 source.
type LegacySource struct {
	// StorageURL is the source database; UsersURL the separate user
	// database ("" when the users are in StorageURL).
	StorageURL, UsersURL string
	Storage, Users       *sqlstore.DB // Users nil when not separate
	Accounts             []LegacyAccount
	// Want is each imported account's data as weave must hold it (UID 0).
	Want map[string]weave.UserData
	c    LegacyCase
	T    int64
}

// The data set's accounts: A is john@example.com's hashed name (the
// spec's test vector), B a plain one, C has no records, D is disabled.
const (
	LegacyA = "kismw365lo7emoxr3ohojgpild6lph4b"
	LegacyB = "alice"
	LegacyC = "nodata"
	LegacyD = "disabled1"
)

type rec11 struct {
	user, coll, id string
	sortIndex      *int64
	payload        string
	ago            int64 // ms before now, a multiple of 10 (two decimals)
	ttl            int64 // server-storage: seconds from now; 0 none
	parent, pred   string
}

var recs11 = []rec11{
	{LegacyA, "bookmarks", "menu", ptr[int64](5), `{"ciphertext":"menu","IV":"x","hmac":"y"}`, 20000 - 370, 0, "places", ""},
	{LegacyA, "bookmarks", "toolbar", nil, `{"ciphertext":"toolbar"}`, 30000 - 120, 0, "places", "menu"},
	{LegacyA, "history", "h1", ptr[int64](-3), `{"ciphertext":"h1"}`, 10000 - 990, 0, "", "1234"},
	{LegacyA, "meta", "global", nil, `{"syncID":"abc","storageVersion":5}`, 50000 - 10, 0, "", ""},
	{LegacyA, "clients", "c1", nil, `{"ciphertext":"c1"}`, 40000 - 500, 1814400, "", ""},
	{LegacyA, "custom-engine", "x", nil, "custom", 15000 - 70, 0, "", ""},
	{LegacyB, "meta", "global", nil, `{"syncID":"b","storageVersion":5}`, 7000 - 500, 0, "", ""},
}

// tooLongParent is a parentid FSyncMS's varchar(65) holds and no client
// wrote: the import leaves it out.
var tooLongParent = strings.Repeat("p", 65)

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Open creates the case's databases and fills them as of now.
func (c LegacyCase) Open(t testing.TB, now time.Time) *LegacySource {
	t.Helper()
	s := &LegacySource{c: c, T: now.Truncate(time.Second).UnixMilli()}
	var users *sqlstore.DB
	switch c.DB {
	case "mysql":
		s.StorageURL = dbtest.MySQL(t)
		s.Storage = open(t, s.StorageURL)
	default:
		s.StorageURL, s.Storage = openSQLiteFile(t, "source.db")
		if c.UsersTable == "user" {
			s.UsersURL, s.Users = openSQLiteFile(t, "users.db")
		}
	}
	users = s.Storage
	if s.Users != nil {
		users = s.Users
	}
	if c.Schema == importer.FSyncMS {
		exec(t, s.Storage, fsyncmsSchema...)
	} else {
		exec(t, s.Storage, serverStorageSchema(c)...)
		if c.UsersTable == "users" {
			exec(t, users, serverCoreUsers(c.DB))
		} else {
			exec(t, users, serverCoreUser(c.DB))
		}
	}
	s.Accounts = []LegacyAccount{
		{Username: LegacyA, Password: "pässwörd A", Email: "john@example.com", id: 3},
		{Username: LegacyB, Password: "secret-b", Email: "alice@example.org", id: 4},
		{Username: LegacyC, Password: "p-c", Email: "c@example.org", id: 5},
	}
	if c.Schema == importer.ServerStorage {
		s.Accounts = append(s.Accounts, LegacyAccount{Username: LegacyD, Password: "p-d", Email: "d@example.org", Disabled: true, id: 6})
	}
	for i, a := range s.Accounts {
		h := c.hashFor(t, i, a.Password)
		status := 1
		if a.Disabled {
			status = 0
		}
		switch {
		case c.Schema == importer.FSyncMS:
			Exec(t, users, `INSERT INTO users (username, md5) VALUES (?, ?)`, a.Username, h)
		case c.UsersTable == "users":
			Exec(t, users, `INSERT INTO users (id, username, password_hash, email, status) VALUES (?, ?, ?, ?, ?)`, a.id, a.Username, h, a.Email, status)
		default:
			Exec(t, users, `INSERT INTO user (userid, username, password, accountStatus, mail, syncNode) VALUES (?, ?, ?, ?, ?, ?)`,
				a.id, a.Username, h, status, a.Email, "https://sync.example.net/")
		}
	}

	s.Want = map[string]weave.UserData{}
	ids := map[string]int64{}
	byUser := map[string]map[string]*weave.UserCollection{}
	for _, r := range recs11 {
		a := s.account(r.user)
		mod := s.T - r.ago
		want := weave.UserBSO{ID: r.id, SortIndex: r.sortIndex, Payload: r.payload, Modified: weave.Timestamp(mod),
			ParentID: r.parent, PredecessorID: r.pred}
		var si any
		if r.sortIndex != nil {
			si = *r.sortIndex
		}
		if c.Schema == importer.FSyncMS {
			parent, pred := nullable(r.parent), nullable(r.pred)
			if r.id == "x" {
				parent = tooLongParent
			}
			if c.DB != "sqlite" && r.pred != "" {
				// predecessorid is an int column: MySQL coerced ids (a
				// strict server refuses them), and the import leaves the
				// column out, numbers included.
				if _, err := strconv.Atoi(r.pred); err != nil {
					pred = nil
				}
				want.PredecessorID = ""
			}
			// modified as PHP's round(microtime(true), 2); ttl never set.
			Exec(t, s.Storage, `INSERT INTO wbo (username, id, collection, parentid, predecessorid, modified, sortindex, payload, payload_size)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.user, r.id, r.coll, parent, pred, float64(mod/10)/100, si, r.payload, len(r.payload))
		} else {
			cid := c.collectionID(t, s.Storage, ids, a.id, r.coll)
			ttl := int64(2100000000) // MAX_TTL: never
			if r.ttl != 0 {
				ttl = s.T/1000 + r.ttl
				want.Expires = weave.Timestamp(ttl * 1000)
			}
			Exec(t, s.Storage, `INSERT INTO `+c.wboTable(a.id)+` (id, username, collection, parentid, predecessorid, sortindex, modified, payload, payload_size, ttl)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.id, a.id, cid, nullable(r.parent), nullable(r.pred), si, mod/10, r.payload, len(r.payload), ttl)
		}
		if byUser[r.user] == nil {
			byUser[r.user] = map[string]*weave.UserCollection{}
		}
		uc := byUser[r.user][r.coll]
		if uc == nil {
			uc = &weave.UserCollection{Name: r.coll}
			byUser[r.user][r.coll] = uc
		}
		uc.Modified = max(uc.Modified, weave.Timestamp(mod))
		uc.BSOs = append(uc.BSOs, want)
	}
	if c.Schema == importer.ServerStorage {
		// A PUT of metadata alone for a new id: a row without time or
		// payload, which no client ever received and weave leaves out.
		a := s.account(LegacyA)
		Exec(t, s.Storage, `INSERT INTO `+c.wboTable(a.id)+` (id, username, collection, sortindex, modified, payload, payload_size, ttl)
			VALUES ('ghost', ?, ?, 3, NULL, NULL, 0, 2100000000)`, a.id, c.collectionID(t, s.Storage, ids, a.id, "bookmarks"))
	}
	for _, a := range s.Accounts {
		if a.Disabled {
			continue
		}
		d := weave.UserData{}
		for _, uc := range byUser[a.Username] {
			d.Collections = append(d.Collections, *uc)
			d.Modified = max(d.Modified, uc.Modified)
		}
		d.Exists = len(d.Collections) > 0
		weave.SortUserData(&d)
		s.Want[a.Username] = d
	}
	return s
}

func (s *LegacySource) account(name string) LegacyAccount {
	for _, a := range s.Accounts {
		if a.Username == name {
			return a
		}
	}
	panic("no account " + name)
}

// openSQLiteFile creates a SQLite database as PHP's PDO or Python's
// SQLAlchemy did (rollback journal, not WAL) and returns its URL and a
// handle that writes.
func openSQLiteFile(t testing.TB, name string) (string, *sqlstore.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return "sqlite://" + filepath.ToSlash(path), &sqlstore.DB{Read: db, Write: db, Dialect: sqlite.Dialect{}, MaxRetries: 1, Timeout: 10 * time.Second}
}

// hashFor hashes the i-th account's password in one of the case's
// server's formats, each format once at least.
func (c LegacyCase) hashFor(t testing.TB, i int, password string) string {
	t.Helper()
	salt := []byte(fmt.Sprintf("salt%04d", i)) // server-core's salts are 8 bytes
	salted := func(h hash.Hash) string {
		h.Write([]byte(password))
		h.Write(salt)
		return base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
	}
	switch {
	case c.Schema == importer.FSyncMS && i == 1:
		// crypt() with BCRYPT defined: $2a$.
		b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	case c.Schema == importer.FSyncMS:
		sum := md5.Sum([]byte(password))
		return hex.EncodeToString(sum[:])
	case c.UsersTable == "users" && i == 0, c.UsersTable == "user" && i == 1:
		return "{SSHA-256}" + salted(sha256.New())
	case c.UsersTable == "users" && i == 1:
		return salted(sha1.New()) // no scheme: {SSHA}, as server-core read it
	case c.UsersTable == "user" && i == 0:
		key, err := scrypt.Key([]byte(password), salt, 16384, 8, 1, 64)
		if err != nil {
			t.Fatal(err)
		}
		return "{SSCRYPT}" + base64.StdEncoding.EncodeToString(append(key, salt...))
	}
	return "{SSHA}" + salted(sha1.New())
}

// collectionID is the id server-storage gives name for user uid: a fixed
// one with standard_collections, else a per-user row from 0 up (custom
// names from 100 up with standard_collections, past its reserved ids).
func (c LegacyCase) collectionID(t testing.TB, db *sqlstore.DB, ids map[string]int64, uid int64, name string) int64 {
	t.Helper()
	key := strconv.FormatInt(uid, 10) + "/" + name
	if id, ok := ids[key]; ok {
		return id
	}
	std := map[string]int64{"clients": 1, "crypto": 2, "forms": 3, "history": 4, "keys": 5, "meta": 6, "bookmarks": 7, "prefs": 8, "tabs": 9, "passwords": 10, "addons": 11}
	id, ok := std[name]
	if !c.StandardCollections || !ok {
		var next sql.NullInt64
		if err := db.Write.QueryRow(db.Q(`SELECT MAX(collectionid) FROM collections WHERE userid = ?`), uid).Scan(&next); err != nil {
			t.Fatal(err)
		}
		id = 0
		if next.Valid {
			id = next.Int64 + 1
		}
		if c.StandardCollections {
			id = max(id, 100)
		}
		Exec(t, db, `INSERT INTO collections (userid, collectionid, name) VALUES (?, ?, ?)`, uid, id, name)
	}
	ids[key] = id
	return id
}

func (c LegacyCase) wboTable(uid int64) string {
	if c.Shards > 0 {
		return "wbo" + strconv.FormatInt(uid%int64(c.Shards), 10)
	}
	return "wbo"
}

// ChangeAccountA writes to account A at the source after the import, as a
// client still on the old server would: a new payload for bookmarks/menu,
// at the data set's now plus ahead ms (A's newest record is 10 s older);
// weave must then hold that.
func (s *LegacySource) ChangeAccountA(t testing.TB, ahead int64) {
	t.Helper()
	mod := s.T + ahead
	const payload = `{"ciphertext":"menu2"}`
	if s.c.Schema == importer.FSyncMS {
		Exec(t, s.Storage, `UPDATE wbo SET payload = ?, modified = ? WHERE username = ? AND collection = 'bookmarks' AND id = 'menu'`, payload, float64(mod/10)/100, LegacyA)
	} else {
		a := s.account(LegacyA)
		Exec(t, s.Storage, `UPDATE `+s.c.wboTable(a.id)+` SET payload = ?, modified = ? WHERE username = ? AND id = 'menu'`, payload, mod/10, a.id)
	}
	d := s.Want[LegacyA]
	d.Collections = slices.Clone(d.Collections)
	for i, c := range d.Collections {
		if c.Name == "bookmarks" {
			c.Modified = weave.Timestamp(mod)
			c.BSOs = slices.Clone(c.BSOs)
			for j := range c.BSOs {
				if c.BSOs[j].ID == "menu" {
					c.BSOs[j].Payload, c.BSOs[j].Modified = payload, weave.Timestamp(mod)
				}
			}
			d.Collections[i] = c
		}
	}
	d.Modified = max(d.Modified, weave.Timestamp(mod))
	s.Want[LegacyA] = d
}

// CheckImported checks that weave holds every account of the source that
// is not disabled — its 1.1 account, whose stored hash takes the old
// password and no other, its storage record on node nodeID, its data —
// and no disabled one.
func (s *LegacySource) CheckImported(t *testing.T, ctx context.Context, tokens weave.TokenDB, accounts weave.LegacyUserStore, store weave.UserMover, nodeID int64) {
	t.Helper()
	for _, a := range s.Accounts {
		u, err := accounts.LegacyUser(ctx, a.Username)
		if a.Disabled {
			if !errors.Is(err, weave.ErrNotFound) {
				t.Errorf("%s: disabled at the source, but in weave (%v)", a.Username, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", a.Username, err)
		}
		wantEmail := a.Email
		if s.c.Schema == importer.FSyncMS {
			wantEmail = "" // FSyncMS kept none
		}
		if u.Email != wantEmail {
			t.Errorf("%s: email %q, want %q", a.Username, u.Email, wantEmail)
		}
		if ok, err := passwd.Verify(u.PasswordHash, a.Password); !ok || err != nil {
			t.Errorf("%s: the old password does not verify against %q (%v)", a.Username, u.PasswordHash, err)
		}
		if ok, _ := passwd.Verify(u.PasswordHash, a.Password+"x"); ok {
			t.Errorf("%s: a wrong password verifies", a.Username)
		}
		rec, err := tokens.GetUser(ctx, weave.LegacyTokenEmail(a.Username))
		if err != nil || rec.NodeID != nodeID || rec.ReplacedAt != 0 {
			t.Fatalf("%s: storage record %+v (%v), want a live one on node %d", a.Username, rec, err, nodeID)
		}
		got, err := store.ExportUser(ctx, rec.UID)
		if err != nil {
			t.Fatal(err)
		}
		want := s.Want[a.Username]
		want.UID = rec.UID
		if g, w := Dump(got), Dump(want); g != w {
			t.Errorf("%s imported as\n%s\nwant\n%s", a.Username, g, w)
		}
	}
}

// fsyncmsSchema is FSyncMS's setup.php, the same on SQLite and MySQL.
var fsyncmsSchema = []string{
	`create table wbo ( username varchar(100), id varchar(65), collection varchar(100),
		parentid  varchar(65), predecessorid int, modified real, sortindex int,
		payload text, payload_size int, ttl int, primary key (username,collection,id))`,
	`create table users ( username varchar(255), md5 varchar(64), primary key (username))`,
	`create index parentindex on wbo (username, parentid)`,
	`create index predecessorindex on wbo (username, predecessorid)`,
	`create index modifiedindex on wbo (username, collection, modified)`,
}

// serverStorageSchema is server-storage's syncstorage/storage/sqlmappers.py
// (collections, and wbo or wbo0..N-1 with shard) as SQLAlchemy creates it.
func serverStorageSchema(c LegacyCase) []string {
	opts := ""
	if c.DB == "mysql" {
		opts = " ENGINE=InnoDB CHARSET=latin1"
	}
	out := []string{`CREATE TABLE collections (
		userid INTEGER NOT NULL,
		collectionid INTEGER NOT NULL,
		name VARCHAR(32) NOT NULL,
		PRIMARY KEY (userid, collectionid)
	)`}
	wbo := func(name string) string {
		return `CREATE TABLE ` + name + ` (
			id VARCHAR(64) NOT NULL,
			username INTEGER NOT NULL,
			collection INTEGER NOT NULL,
			parentid VARCHAR(64),
			predecessorid VARCHAR(64),
			sortindex INTEGER,
			modified BIGINT,
			payload TEXT,
			payload_size INTEGER NOT NULL,
			ttl INTEGER,
			PRIMARY KEY (id, username, collection)
		)` + opts
	}
	if c.Shards == 0 {
		return append(out, wbo("wbo"))
	}
	for i := range c.Shards {
		out = append(out, wbo("wbo"+strconv.Itoa(i)))
	}
	return out
}

// serverCoreUsers is server-core's services/auth/sqlmappers.py table.
func serverCoreUsers(db string) string {
	auto := ""
	if db == "mysql" {
		auto = " AUTO_INCREMENT"
	}
	return `CREATE TABLE users (
		id INTEGER NOT NULL` + auto + `,
		username VARCHAR(32),
		password_hash VARCHAR(128),
		email VARCHAR(64),
		status INTEGER,
		alert TEXT,
		reset VARCHAR(32),
		reset_expiration DATETIME,
		PRIMARY KEY (id),
		UNIQUE (username, password_hash)
	)`
}

// serverCoreUser is server-core's services/user/sql.py table (server-reg
// with the newer user backend).
func serverCoreUser(db string) string {
	auto := ""
	if db == "mysql" {
		auto = " AUTO_INCREMENT"
	}
	return `CREATE TABLE user (
		userid INTEGER NOT NULL` + auto + `,
		username VARCHAR(32) NOT NULL,
		password VARCHAR(128),
		accountStatus INTEGER DEFAULT '1',
		mail VARCHAR(64),
		mailVerified INTEGER DEFAULT '0',
		syncNode VARCHAR(64),
		PRIMARY KEY (userid),
		UNIQUE (username)
	)`
}

// ChangePassword changes the account's password at the source, in the
// format its old hash had, as a user of the old server would.
func (s *LegacySource) ChangePassword(t testing.TB, username, password string) {
	t.Helper()
	users := s.Storage
	if s.Users != nil {
		users = s.Users
	}
	for i := range s.Accounts {
		a := &s.Accounts[i]
		if a.Username != username {
			continue
		}
		a.Password = password
		h := s.c.hashFor(t, i, password)
		switch {
		case s.c.Schema == importer.FSyncMS:
			Exec(t, users, `UPDATE users SET md5 = ? WHERE username = ?`, h, username)
		case s.c.UsersTable == "users":
			Exec(t, users, `UPDATE users SET password_hash = ? WHERE id = ?`, h, a.id)
		default:
			Exec(t, users, `UPDATE user SET password = ? WHERE userid = ?`, h, a.id)
		}
		return
	}
	t.Fatalf("no account %s", username)
}

// RunLegacyInto runs test once per 1.1 source, as the subtest
// "SOURCE/into-DB": with the source filled as of now and a fresh weave
// database (its URL) on into[SOURCE] ("sqlite", "mysql" or "postgres").
func RunLegacyInto(t *testing.T, into map[string]string, test func(t *testing.T, c LegacyCase, src *LegacySource, weaveURL string)) {
	for _, c := range LegacyCases() {
		t.Run(c.Name+"/into-"+into[c.Name], func(t *testing.T) {
			src := c.Open(t, time.Now())
			test(t, c, src, dbtest.Fresh(t, into[c.Name]))
		})
	}
}
