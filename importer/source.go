package importer

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// Schema names a kind of source storage database.
type Schema string

const (
	// SyncstorageRS is Mozilla's syncstorage-rs (Rust). On MySQL: tables
	// bso, collections (id, name), user_collections, batch_uploads and
	// batch_upload_items, times and expiries in ms. On PostgreSQL: tables
	// bsos, collections (collection_id, name), user_collections, batches
	// and batch_bsos, times as TIMESTAMP(TZ), batch ids UUIDs.
	SyncstorageRS Schema = "syncstorage-rs"
	// ServerSyncstorage is Mozilla's earlier Python server-syncstorage
	// (SQLAlchemy), on MySQL or PostgreSQL: tables bso (or bso0..bsoN-1
	// with sharding), collections (collectionid, name), user_collections,
	// batch_uploads and batch_upload_items (or batch_upload_items0..N-1);
	// record expiries in seconds.
	ServerSyncstorage Schema = "server-syncstorage"
)

// Schemas lists the source schemas Run can read.
var Schemas = []Schema{SyncstorageRS, ServerSyncstorage}

// batchLifetime is how long both reference servers keep a batch open (its
// id being its creation time in ms, on MySQL and in Python).
const batchLifetime = 2 * 60 * 60 * 1000

// pythonMaxTTL is server-syncstorage's MAX_TTL: the expiry (seconds since
// the epoch, in 2036) it stores for records written without a TTL, meaning
// "never".
const pythonMaxTTL = 2100000000

// pythonStandardCollections are the ids server-syncstorage gives the usual
// collections when configured with standard_collections: they are then not
// stored in its collections table.
var pythonStandardCollections = map[int64]string{
	1: "clients", 2: "crypto", 3: "forms", 4: "history", 5: "keys", 6: "meta",
	7: "bookmarks", 8: "prefs", 9: "tabs", 10: "passwords", 11: "addons",
}

// Source reads users out of a source storage database. Only reads.
type Source struct {
	db     *sqlstore.DB
	schema Schema
	// Legacy layout (syncstorage-rs on MySQL, server-syncstorage).
	collIDCol   string // collections' id column
	ttlSeconds  bool   // bso.ttl in seconds (Python) rather than ms
	bsoPlain    bool   // table bso exists
	bsoShards   int    // tables bso0..bsoN-1 exist
	batches     bool   // batch_uploads exists
	buiPlain    bool   // batch_upload_items exists
	buiShards   int    // batch_upload_items0..N-1 exist
	stdFallback bool   // unknown ids may be Python's standard collections
}

// OpenSource recognises the schema of the storage database db (MySQL or
// PostgreSQL) from its tables, or checks that it has the tables of want
// when want is not empty.
func OpenSource(ctx context.Context, db *sqlstore.DB, want Schema) (*Source, error) {
	dialect := db.Dialect.Name()
	if dialect != "mysql" && dialect != "postgres" {
		return nil, fmt.Errorf("importer: source storage databases are MySQL/MariaDB or PostgreSQL, not %s", dialect)
	}
	if want != "" && !slices.Contains(Schemas, want) {
		return nil, fmt.Errorf("importer: unknown source schema %q (known: %s)", want, schemaList())
	}
	tables, err := listColumns(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("importer: list the source storage tables: %w", err)
	}
	s := &Source{db: db}
	got, why := s.recognise(dialect, tables)
	switch {
	case got == "" && want == "":
		return nil, fmt.Errorf("importer: the source storage database is not one weave can import: %s", why)
	case got == "":
		return nil, fmt.Errorf("importer: the source storage database does not have a %s schema: %s", want, why)
	case want != "" && got != want:
		return nil, fmt.Errorf("importer: --from-schema says %s, but the source storage database has the tables of %s (%s); drop --from-schema to use what is there", want, got, s.Describe())
	}
	return s, nil
}

func schemaList() string {
	var names []string
	for _, s := range Schemas {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// Schema is the recognised schema.
func (s *Source) Schema() Schema { return s.schema }

// Describe names the source for people: schema, database, sharding.
func (s *Source) Describe() string {
	db := "MySQL"
	if s.db.Dialect.Name() == "postgres" {
		db = "PostgreSQL"
	}
	d := fmt.Sprintf("%s on %s", s.schema, db)
	if s.bsoShards > 0 {
		d += fmt.Sprintf(", %d bso shards", s.bsoShards)
	}
	if !s.rsPostgres() && !s.batches {
		d += ", no batch tables (open batches are not copied)"
	}
	return d
}

// rsPostgres tells syncstorage-rs's PostgreSQL layout from the legacy one.
func (s *Source) rsPostgres() bool {
	return s.schema == SyncstorageRS && s.db.Dialect.Name() == "postgres"
}

// recognise fills in s from the tables found, or says why it cannot.
func (s *Source) recognise(dialect string, tables map[string]map[string]bool) (Schema, string) {
	has := func(table string, cols ...string) bool {
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
	switch {
	case has("bsos", "fxa_uid"):
		return "", "its bsos table is keyed by fxa_uid: that is a pre-release syncstorage-rs PostgreSQL schema, which weave does not read; upgrade syncstorage-rs (so that its migrations run) and import again"
	case has("bsos", "user_id", "collection_id", "bso_id", "modified", "expiry") && has("user_collections", "user_id", "collection_id", "modified") &&
		has("collections", "collection_id", "name"):
		if dialect != "postgres" {
			return "", "it has syncstorage-rs's PostgreSQL tables, but on MySQL"
		}
		if !has("batches", "user_id", "collection_id", "batch_id", "expiry") || !has("batch_bsos", "user_id", "collection_id", "batch_id", "batch_bso_id", "sortindex", "payload", "ttl") {
			return "", "it has syncstorage-rs's PostgreSQL tables bsos, collections and user_collections but not its batches and batch_bsos: check that syncstorage-rs's migrations have run"
		}
		s.schema = SyncstorageRS
		return s.schema, ""
	case has("bsos", "uid", "collection_id") && has("user_storage"):
		return "", "it is a weave storage database: move users between weave nodes with `weave user migrate` or `weave node drain`"
	}
	shards := func(prefix string) (int, string) {
		var idx []int
		for t := range tables {
			if n, err := strconv.Atoi(strings.TrimPrefix(t, prefix)); err == nil && strings.HasPrefix(t, prefix) && n >= 0 {
				idx = append(idx, n)
			}
		}
		sort.Ints(idx)
		for i, n := range idx {
			if n != i {
				return 0, fmt.Sprintf("its %s tables are numbered %v; server-syncstorage shards are %s0 to %sN-1 with none missing", prefix, idx, prefix, prefix)
			}
		}
		return len(idx), ""
	}
	var why string
	if s.bsoShards, why = shards("bso"); why != "" {
		return "", why
	}
	if s.buiShards, why = shards("batch_upload_items"); why != "" {
		return "", why
	}
	s.bsoPlain = tables["bso"] != nil
	s.buiPlain = tables["batch_upload_items"] != nil
	bsoCols := []string{"userid", "collection", "id", "sortindex", "payload", "modified", "ttl"}
	for _, t := range s.bsoTables() {
		if !has(t, bsoCols...) {
			if has(t, "user_id", "collection_id") {
				return "", "its bso table has the syncstorage-rs MySQL columns from before the 2019-09-11 migration (user_id, collection_id, expiry): run syncstorage-rs's migrations first"
			}
			return "", fmt.Sprintf("its %s table lacks some of the columns %s", t, strings.Join(bsoCols, ", "))
		}
	}
	if len(s.bsoTables()) > 0 && has("user_collections", "userid", "collection", "last_modified") {
		switch {
		case has("collections", "collectionid", "name"):
			s.schema, s.collIDCol, s.ttlSeconds, s.stdFallback = ServerSyncstorage, "collectionid", true, true
		case has("collections", "id", "name"):
			s.schema, s.collIDCol = SyncstorageRS, "id"
			if dialect != "mysql" {
				return "", "it has syncstorage-rs's MySQL tables, but on PostgreSQL"
			}
			if s.bsoShards > 0 {
				return "", "it has syncstorage-rs's MySQL tables and also bso0… tables, which syncstorage-rs never creates: check which server wrote this database"
			}
		default:
			return "", "it has bso and user_collections tables but its collections table has neither syncstorage-rs's (id, name) nor server-syncstorage's (collectionid, name) columns"
		}
		s.batches = has("batch_uploads", "batch", "userid", "collection")
		for _, t := range s.buiTables() {
			if !has(t, "batch", "userid", "id", "sortindex", "payload", "ttl_offset") {
				return "", fmt.Sprintf("its %s table lacks some of the columns batch, userid, id, sortindex, payload, ttl_offset", t)
			}
		}
		return s.schema, ""
	}
	if has("users", "uid", "email", "generation", "client_state") && has("nodes") {
		return "", "it is a tokenserver database: give it as --from-token-url, and the storage database as --from-storage-url"
	}
	var names []string
	for t := range tables {
		names = append(names, t)
	}
	sort.Strings(names)
	if len(names) > 12 {
		names = append(names[:12], "…")
	}
	return "", fmt.Sprintf("expected the tables of syncstorage-rs (MySQL: bso, collections, user_collections, batch_uploads, batch_upload_items; PostgreSQL: bsos, collections, user_collections, batches, batch_bsos) or of server-syncstorage (bso or bso0…bsoN, collections, user_collections, batch_uploads, batch_upload_items), found %v", names)
}

// bsoTables are the legacy record tables present.
func (s *Source) bsoTables() []string { return tableFamily("bso", s.bsoPlain, s.bsoShards) }

// buiTables are the legacy staged-record tables present.
func (s *Source) buiTables() []string {
	return tableFamily("batch_upload_items", s.buiPlain, s.buiShards)
}

// tableFamily names every table of a possibly sharded family: base if it
// exists, then base0..base<shards-1>.
func tableFamily(base string, plain bool, shards int) []string {
	var out []string
	if plain {
		out = append(out, base)
	}
	for i := range shards {
		out = append(out, base+strconv.Itoa(i))
	}
	return out
}

// listColumns returns the tables of db's current database (or schema)
// with their columns, names in lower case.
func listColumns(ctx context.Context, db *sqlstore.DB) (map[string]map[string]bool, error) {
	rows, err := db.Read.QueryContext(ctx, db.Dialect.ColumnsQuery())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]bool{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		t, c = strings.ToLower(t), strings.ToLower(c)
		if out[t] == nil {
			out[t] = map[string]bool{}
		}
		out[t][c] = true
	}
	return out, rows.Err()
}

// ReadUser reads everything the source holds for uid — collections and
// their timestamps, every record (expired or not) and the batches still
// open at now (ms since the epoch) with their staged records — from one
// snapshot, and the total payload size.
func (s *Source) ReadUser(ctx context.Context, uid, now int64) (weave.UserData, int64, error) {
	var b *userBuilder
	err := s.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		if b, err = s.newBuilder(ctx, tx, uid); err != nil {
			return err
		}
		if s.rsPostgres() {
			return s.readRSPostgres(ctx, tx, b, now)
		}
		return s.readLegacy(ctx, tx, b, now)
	})
	if err != nil {
		return weave.UserData{UID: uid}, 0, fmt.Errorf("uid %d: read source: %w", uid, err)
	}
	d := b.finish()
	return d, b.bytes, nil
}

// newBuilder loads the collection names.
func (s *Source) newBuilder(ctx context.Context, tx *sql.Tx, uid int64) (*userBuilder, error) {
	idCol := s.collIDCol
	if s.rsPostgres() {
		idCol = "collection_id"
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+idCol+`, name FROM collections`)
	if err != nil {
		return nil, fmt.Errorf("collections: %w", err)
	}
	defer rows.Close()
	names := map[int64]string{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("collections: %w", err)
		}
		names[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("collections: %w", err)
	}
	if s.stdFallback {
		for id, n := range pythonStandardCollections {
			if _, ok := names[id]; !ok {
				names[id] = n
			}
		}
	}
	return &userBuilder{d: weave.UserData{UID: uid}, names: names, byID: map[int64]*weave.UserCollection{}}, nil
}

// userBuilder assembles a weave.UserData from source rows.
type userBuilder struct {
	d       weave.UserData
	names   map[int64]string
	byID    map[int64]*weave.UserCollection
	touched bool // a tombstone keeps the storage timestamp
	bytes   int64
}

func (b *userBuilder) name(cid int64) (string, error) {
	n, ok := b.names[cid]
	if !ok {
		return "", fmt.Errorf("collection id %d has no name in the collections table", cid)
	}
	return n, nil
}

func (b *userBuilder) collection(cid int64) (*weave.UserCollection, error) {
	if c, ok := b.byID[cid]; ok {
		return c, nil
	}
	n, err := b.name(cid)
	if err != nil {
		return nil, err
	}
	c := &weave.UserCollection{Name: n}
	b.byID[cid] = c
	return c, nil
}

// collectionTime records a user_collections row. syncstorage-rs keeps a
// row for collection 0 (a "tombstone", not a collection) whose time is
// the storage timestamp after a collection was deleted, and on PostgreSQL
// rows dated 0001-01-01 for collections that have no timestamp yet.
func (b *userBuilder) collectionTime(cid, modified int64) error {
	if _, named := b.names[cid]; cid == 0 && !named {
		b.d.Modified = max(b.d.Modified, weave.Timestamp(modified))
		b.touched = true
		return nil
	}
	if modified <= 0 {
		return nil
	}
	c, err := b.collection(cid)
	if err != nil {
		return err
	}
	c.Modified = weave.Timestamp(modified)
	return nil
}

func (b *userBuilder) addBSO(cid int64, r weave.UserBSO) error {
	c, err := b.collection(cid)
	if err != nil {
		return err
	}
	// A record newer than its collection's timestamp (or with no
	// user_collections row) raises the collection's timestamp.
	c.Modified = max(c.Modified, r.Modified)
	c.BSOs = append(c.BSOs, r)
	b.bytes += int64(len(r.Payload))
	return nil
}

func (b *userBuilder) addBatch(cid int64, bt weave.UserBatch) error {
	n, err := b.name(cid)
	if err != nil {
		return err
	}
	bt.Collection = n
	for _, it := range bt.Items {
		b.bytes += int64(len(it.Payload))
	}
	b.d.Batches = append(b.d.Batches, bt)
	return nil
}

func (b *userBuilder) finish() weave.UserData {
	for _, c := range b.byID {
		b.d.Collections = append(b.d.Collections, *c)
		b.d.Modified = max(b.d.Modified, c.Modified)
	}
	// A user with only an open batch has a storage row in weave too.
	b.d.Exists = len(b.d.Collections) > 0 || len(b.d.Batches) > 0 || b.touched
	weave.SortUserData(&b.d)
	return b.d
}

// stagedItem maps a staged row of the reference servers, where NULL means
// "not sent by the client", onto weave's.
func stagedItem(id string, sortIndex sql.NullInt64, payload sql.NullString, ttl sql.NullInt64) weave.StagedItem {
	it := weave.StagedItem{ID: id, Payload: payload.String, PayloadSet: payload.Valid}
	if sortIndex.Valid {
		it.SortIndex, it.SortIndexOK = &sortIndex.Int64, true
	}
	if ttl.Valid {
		it.TTL, it.TTLSet = &ttl.Int64, true
	}
	return it
}

// readCollectionTimes gives the builder the (collection id, modified ms)
// rows of a source's user_collections query.
func readCollectionTimes(ctx context.Context, tx *sql.Tx, b *userBuilder, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("user_collections: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cid, mod int64
		if err := rows.Scan(&cid, &mod); err != nil {
			return fmt.Errorf("user_collections: %w", err)
		}
		if err := b.collectionTime(cid, mod); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("user_collections: %w", err)
	}
	return nil
}
