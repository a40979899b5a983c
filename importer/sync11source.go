package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/legacy/passwd"
	"github.com/weave-sync/weave/sqlstore"
)

// Sources of 1.1 accounts (User API 1.0 + Storage API 1.1): the servers
// Pale Moon and Basilisk users ran.
const (
	// FSyncMS is the PHP server (balu-/FSyncMS and its MoonchildProductions
	// merges) on SQLite or MySQL: tables wbo (username, id, collection
	// name, …, modified as float seconds) and users (username, md5).
	FSyncMS Schema = "fsyncms"
	// ServerStorage is Mozilla's 2011 Python server-storage on MySQL or
	// SQLite: tables wbo (or wbo0..wboN-1 when sharded by user id), keyed
	// by a numeric user id, times in centiseconds, absolute expiries in
	// seconds, and collections (userid, collectionid, name); its users are
	// server-core's SQL table, users (services.auth.sql) or user
	// (services.user.sql), in the same database or another (server-reg's).
	ServerStorage Schema = "server-storage"
)

// LegacySchemas lists the 1.1 source schemas RunLegacy can read.
var LegacySchemas = []Schema{FSyncMS, ServerStorage}

// serverStorageMaxTTL is server-storage's MAX_TTL: the absolute expiry
// second (in 2036) of records written without a TTL, meaning never.
const serverStorageMaxTTL = 2100000000

// serverStorageStandard names the collection ids server-storage used
// without a row in collections when standard_collections was on (in the
// corrected list of bug 688623; the earlier one misspelled 1 and 5, which
// clients never wrote to, since they asked for "clients" and "keys").
var serverStorageStandard = map[int64]string{
	1: "clients", 2: "crypto", 3: "forms", 4: "history", 5: "keys", 6: "meta",
	7: "bookmarks", 8: "prefs", 9: "tabs", 10: "passwords", 11: "addons",
}

// legacySource reads 1.1 accounts and their records. Only reads.
type legacySource struct {
	schema        Schema
	storage, user *sqlstore.DB
	// server-storage
	wboPlain   bool
	wboShards  int
	usersTable string // "users" (services.auth.sql) or "user" (services.user.sql)
	// The wbo columns that select the deprecated fields parentid and
	// predecessorid: the column, or NULL where there is none to read.
	parentCol, predecessorCol string
}

// legacyAccount is one account of the source.
type legacyAccount struct {
	username string // as weave keeps it (lower case)
	srcName  string // as the source keeps it
	email    string
	hash     string // as weave stores it (passwd formats)
	hashErr  error  // the source's hash is in no format weave can verify
	id       int64  // server-storage's user id
	disabled bool
}

// DetectLegacySchema tells whether db holds the tables of a 1.1 source,
// and which.
func DetectLegacySchema(ctx context.Context, db *sqlstore.DB) (Schema, error) {
	tables, err := listColumns(ctx, db)
	if err != nil {
		return "", fmt.Errorf("importer: list the source tables: %w", err)
	}
	switch {
	case has(tables, "wbo", "username", "id", "collection", "modified") && has(tables, "users", "username", "md5"):
		return FSyncMS, nil
	case has(tables, "wbo", "username", "id", "collection", "modified", "ttl") || has(tables, "wbo0", "username", "id", "collection", "modified", "ttl"):
		return ServerStorage, nil
	}
	return "", nil
}

func has(tables map[string]map[string]bool, table string, cols ...string) bool {
	t, ok := tables[table]
	if !ok {
		return false
	}
	for _, c := range cols {
		if !t[c] {
			return false
		}
	}
	return true
}

// openLegacySource recognises the 1.1 source in storage (and users, the
// separate user database of server-storage, or nil).
func openLegacySource(ctx context.Context, storage, users *sqlstore.DB, want Schema) (*legacySource, error) {
	tables, err := listColumns(ctx, storage)
	if err != nil {
		return nil, fmt.Errorf("importer: list the source tables: %w", err)
	}
	got, err := DetectLegacySchema(ctx, storage)
	if err != nil {
		return nil, err
	}
	switch {
	case got == "":
		return nil, fmt.Errorf("importer: the source database has neither FSyncMS's tables (wbo with a username column, users with md5) nor server-storage's (wbo or wbo0…wboN with username, collection, modified, ttl)")
	case want != "" && got != want:
		return nil, fmt.Errorf("importer: --from-schema says %s, but the source database has the tables of %s", want, got)
	}
	s := &legacySource{schema: got, storage: storage, user: storage, parentCol: "NULL", predecessorCol: "NULL"}
	wbo := tables["wbo"]
	if wbo == nil {
		wbo = tables["wbo0"]
	}
	if wbo["parentid"] {
		s.parentCol = "parentid"
	}
	// FSyncMS declared predecessorid int: only SQLite kept the string ids
	// in it; MySQL turned them into numbers (lossy), so they are left out.
	if wbo["predecessorid"] && (got != FSyncMS || storage.Dialect.Name() == "sqlite") {
		s.predecessorCol = "predecessorid"
	}
	if got == FSyncMS {
		if users != nil {
			return nil, errors.New("importer: FSyncMS keeps its users in its own database: drop --from-users-url")
		}
		return s, nil
	}
	s.wboPlain = tables["wbo"] != nil
	var idx []int
	for t := range tables {
		if n, err := strconv.Atoi(strings.TrimPrefix(t, "wbo")); err == nil && strings.HasPrefix(t, "wbo") && n >= 0 {
			idx = append(idx, n)
		}
	}
	sort.Ints(idx)
	for i, n := range idx {
		if n != i {
			return nil, fmt.Errorf("importer: the wbo tables are numbered %v; server-storage shards are wbo0 to wboN-1 with none missing", idx)
		}
	}
	s.wboShards = len(idx)
	if s.wboPlain && s.wboShards > 0 {
		return nil, errors.New("importer: the source has both a wbo table and wbo0… shards; server-storage uses one or the other: drop the unused ones")
	}
	if !has(tables, "collections", "userid", "collectionid", "name") {
		return nil, errors.New("importer: the server-storage database lacks its collections table (userid, collectionid, name)")
	}
	if users != nil {
		s.user = users
		if tables, err = listColumns(ctx, users); err != nil {
			return nil, fmt.Errorf("importer: list the user database's tables: %w", err)
		}
	}
	switch {
	case has(tables, "users", "id", "username", "password_hash", "email", "status"):
		s.usersTable = "users"
	case has(tables, "user", "userid", "username", "password", "accountstatus", "mail"):
		s.usersTable = "user"
	case users == nil:
		return nil, errors.New("importer: the server-storage database has no users table (server-core's users or user): give the user database (server-reg's) as --from-users-url")
	default:
		return nil, errors.New("importer: the user database has neither server-core's users table (id, username, password_hash, email, status) nor its user table (userid, username, password, accountStatus, mail)")
	}
	return s, nil
}

// Describe names the source for people.
func (s *legacySource) Describe() string {
	d := fmt.Sprintf("%s on %s", s.schema, dialectName(s.storage))
	if s.wboShards > 0 {
		d += fmt.Sprintf(", %d wbo shards", s.wboShards)
	}
	if s.schema == ServerStorage {
		where := "same database"
		if s.user != s.storage {
			where = dialectName(s.user)
		}
		d += fmt.Sprintf(", users in table %s (%s)", s.usersTable, where)
	}
	return d
}

func dialectName(db *sqlstore.DB) string {
	switch db.Dialect.Name() {
	case "postgres":
		return "PostgreSQL"
	case "sqlite":
		return "SQLite"
	}
	return "MySQL"
}

// accounts lists the source's accounts by username.
func (s *legacySource) accounts(ctx context.Context) ([]legacyAccount, error) {
	var q string
	switch {
	case s.schema == FSyncMS:
		q = `SELECT username, '', md5, 0, 1 FROM users`
	case s.usersTable == "users":
		q = `SELECT username, email, password_hash, id, status FROM users`
	default:
		q = `SELECT username, mail, password, userid, accountStatus FROM user`
	}
	rows, err := s.user.Read.QueryContext(ctx, q+` ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("importer: read the source's users: %w", err)
	}
	defer rows.Close()
	var out []legacyAccount
	for rows.Next() {
		var a legacyAccount
		var name, email, hash sql.NullString
		var status sql.NullInt64
		if err := rows.Scan(&name, &email, &hash, &a.id, &status); err != nil {
			return nil, fmt.Errorf("importer: read the source's users: %w", err)
		}
		// Both servers took the name from the URL, which the client
		// lower-cases.
		a.srcName, a.username, a.email = name.String, strings.ToLower(name.String), email.String
		a.disabled = status.Valid && status.Int64 != 1
		if s.schema == FSyncMS {
			a.hash, a.hashErr = passwd.FromFSyncMS(hash.String)
		} else {
			a.hash, a.hashErr = passwd.FromServerCore(hash.String)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// readUser reads every record of the account, as weave's uid uid, from one
// snapshot, and the total payload size.
func (s *legacySource) readUser(ctx context.Context, a legacyAccount, uid int64) (weave.UserData, int64, error) {
	d := weave.UserData{UID: uid}
	var bytes int64
	err := s.storage.ReadTx(ctx, func(tx *sql.Tx) error {
		d.Collections, bytes = nil, 0
		byName := map[string]*weave.UserCollection{}
		add := func(coll string, r weave.UserBSO) {
			c := byName[coll]
			if c == nil {
				c = &weave.UserCollection{Name: coll}
				byName[coll] = c
			}
			// 1.1 servers date a collection by its newest record.
			c.Modified = max(c.Modified, r.Modified)
			c.BSOs = append(c.BSOs, r)
			bytes += int64(len(r.Payload))
		}
		var err error
		if s.schema == FSyncMS {
			err = s.readFSyncMS(ctx, tx, a, add)
		} else {
			err = s.readServerStorage(ctx, tx, a, add)
		}
		if err != nil {
			return err
		}
		for _, c := range byName {
			d.Collections = append(d.Collections, *c)
			d.Modified = max(d.Modified, c.Modified)
		}
		return nil
	})
	if err != nil {
		return d, 0, fmt.Errorf("read source: %w", err)
	}
	d.Exists = len(d.Collections) > 0
	weave.SortUserData(&d)
	return d, bytes, nil
}

// secondsToMillis converts a 1.1 timestamp (seconds with two decimals, as
// a float) to ms, exactly for every value the servers wrote.
func secondsToMillis(s float64) weave.Timestamp {
	return weave.Timestamp(int64(math.Round(s*100)) * 10)
}

func (s *legacySource) readFSyncMS(ctx context.Context, tx *sql.Tx, a legacyAccount, add func(string, weave.UserBSO)) error {
	rows, err := tx.QueryContext(ctx, s.storage.Q(`SELECT collection, id, sortindex, payload, modified, `+s.parentCol+`, `+s.predecessorCol+` FROM wbo WHERE username = ?`), a.srcName)
	if err != nil {
		return fmt.Errorf("wbo: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var coll string
		var r weave.UserBSO
		var sortIndex sql.NullInt64
		var payload sql.NullString
		var modified sql.NullFloat64
		var parent, pred sql.NullString
		if err := rows.Scan(&coll, &r.ID, &sortIndex, &payload, &modified, &parent, &pred); err != nil {
			return fmt.Errorf("wbo: %w", err)
		}
		r.ParentID, r.PredecessorID = sync11ID(parent), sync11ID(pred)
		if sortIndex.Valid {
			r.SortIndex = &sortIndex.Int64
		}
		// FSyncMS never wrote or read ttl: its records never expire.
		r.Payload, r.Modified = payload.String, secondsToMillis(modified.Float64)
		add(coll, r)
	}
	return rows.Err()
}

func (s *legacySource) readServerStorage(ctx context.Context, tx *sql.Tx, a legacyAccount, add func(string, weave.UserBSO)) error {
	names := map[int64]string{}
	rows, err := tx.QueryContext(ctx, s.storage.Q(`SELECT collectionid, name FROM collections WHERE userid = ?`), a.id)
	if err != nil {
		return fmt.Errorf("collections: %w", err)
	}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return fmt.Errorf("collections: %w", err)
		}
		names[id] = name
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("collections: %w", err)
	}
	table := "wbo"
	if s.wboShards > 0 {
		table += strconv.FormatInt(a.id%int64(s.wboShards), 10)
	}
	rows, err = tx.QueryContext(ctx, s.storage.Q(`SELECT collection, id, sortindex, payload, modified, ttl, `+s.parentCol+`, `+s.predecessorCol+` FROM `+table+` WHERE username = ?`), a.id)
	if err != nil {
		return fmt.Errorf("%s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var cid int64
		var r weave.UserBSO
		var sortIndex, modified, ttl sql.NullInt64
		var payload, parent, pred sql.NullString
		if err := rows.Scan(&cid, &r.ID, &sortIndex, &payload, &modified, &ttl, &parent, &pred); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		r.ParentID, r.PredecessorID = sync11ID(parent), sync11ID(pred)
		name, ok := names[cid]
		if !ok {
			if name, ok = serverStorageStandard[cid]; !ok {
				return fmt.Errorf("record %q: collection id %d has no name in the collections table", r.ID, cid)
			}
		}
		if !modified.Valid {
			// A PUT of metadata alone for a new id left a row without
			// payload or time, which no client ever received: nothing to
			// keep.
			continue
		}
		if sortIndex.Valid {
			r.SortIndex = &sortIndex.Int64
		}
		r.Payload, r.Modified = payload.String, weave.Timestamp(modified.Int64*10)
		if ttl.Valid && ttl.Int64 != serverStorageMaxTTL {
			r.Expires = weave.Timestamp(ttl.Int64 * 1000)
		}
		add(name, r)
	}
	return rows.Err()
}

// sync11ID is a source's parentid or predecessorid as weave keeps it: ""
// for none, and for a value no 1.1 client could have written (over 64
// bytes, as FSyncMS's varchar(65) allows, not UTF-8, or with NUL), which
// weave's databases could refuse.
func sync11ID(v sql.NullString) string {
	if !v.Valid || len(v.String) > weave.MaxIDLength || !utf8.ValidString(v.String) || strings.ContainsRune(v.String, 0) {
		return ""
	}
	return v.String
}
