package sqlstore

// Storage schema contract (schema set "storage").
//
// The SQL of Store is shared by every dialect, so the storage migrations
// (version 1 in sqlstore/migrations/storage, later ones in each adapter's
// migrations/storage) must create exactly these tables, columns and keys
// (types may be the dialect's equivalents; all timestamps and expiries are
// integer milliseconds since the epoch). "Bytewise" means compared and
// ordered byte by byte, case and trailing spaces significant (MySQL:
// VARBINARY, as its _bin collations may be PAD SPACE; PostgreSQL: COLLATE
// "C"; SQLite: the default BINARY).
//
//	collections      id INT PRIMARY KEY,
//	                 name VARCHAR(32) NOT NULL UNIQUE, bytewise.
//	                 Seeded with the fixed ids of spec §2.2: 1 clients,
//	                 2 crypto, 3 forms, 4 history, 5 keys, 6 meta,
//	                 7 bookmarks, 8 prefs, 9 tabs, 10 passwords, 11 addons,
//	                 12 addresses, 13 creditcards. Store gives custom names
//	                 MAX(id)+1 (at least 101) itself: no auto-increment.
//	                 Rows are never deleted or renamed (Store caches them).
//	                 Id 0 is reserved.
//	user_storage     uid BIGINT PRIMARY KEY, modified BIGINT NOT NULL.
//	                 The row every write locks first (SELECT ... FOR
//	                 UPDATE). The user's storage timestamp is the newest
//	                 of its modified and the collections' modified: writes
//	                 that stamp a collection leave it alone, writes that
//	                 remove collections set it.
//	user_collections uid BIGINT, collection_id INT, modified BIGINT NOT NULL,
//	                 PRIMARY KEY (uid, collection_id).
//	bsos             uid BIGINT, collection_id INT,
//	                 id VARCHAR(64) bytewise,
//	                 sortindex INT NULL,
//	                 payload TEXT NOT NULL, holding at least 2.5 MB of
//	                 UTF-8 (MySQL: MEDIUMTEXT in utf8mb4),
//	                 payload_size INT NOT NULL (bytes of payload),
//	                 modified BIGINT NOT NULL,
//	                 expiry BIGINT NOT NULL (9223372036854775807: never),
//	                 PRIMARY KEY (uid, collection_id, id),
//	                 INDEX (uid, collection_id, modified, id),
//	                 INDEX (expiry).
//	batches          uid BIGINT, id BIGINT, collection_id INT NOT NULL,
//	                 expiry BIGINT NOT NULL, PRIMARY KEY (uid, id),
//	                 INDEX (expiry).
//	batch_bsos       uid BIGINT, batch_id BIGINT, id VARCHAR(64) bytewise,
//	                 payload TEXT NOT NULL (as bsos.payload),
//	                 payload_size INT NOT NULL, payload_set SMALLINT NOT NULL,
//	                 sortindex INT NULL, sortindex_set SMALLINT NOT NULL,
//	                 ttl BIGINT NULL, ttl_set SMALLINT NOT NULL,
//	                 PRIMARY KEY (uid, batch_id, id).
//
// Invariants other writers of these tables (migration and copy tools) must
// keep: a user with bsos rows in a collection has its user_collections row
// (reads skip collections without one), and a user with any row has its
// user_storage row (its modified may be older than the collections').
//
// The tables Store upserts into (user_storage, user_collections, bsos,
// batch_bsos) must have no unique key but the primary key: MySQL's upsert
// reacts to any. The SQL uses only ? placeholders (Dialect.Rebind),
// Dialect.Upsert, Dialect.ForUpdate, multi-row VALUES, INSERT ... SELECT,
// LIMIT ?, COALESCE, CASE, UNION ALL, GROUP BY with MAX, COUNT and SUM,
// and scalar and IN subqueries.
// Reads run in snapshots (DB.ReadTx); writes run in DB.GroupWriteTx (on
// SQLite several share a transaction, each in its own savepoint) at the
// database's default isolation (MySQL REPEATABLE READ, PostgreSQL READ
// COMMITTED) and lock their user_storage row before reading anything else,
// so each sees everything the user's previous writes committed.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weave-sync/weave"
)

// neverExpires is bsos.expiry for records without a TTL, so that "live" is
// always the single comparison expiry > now.
const neverExpires = int64(1<<63 - 1)

// StoreOptions tune a Store.
type StoreOptions struct {
	// BatchLifetime is how long an uncommitted batch stays usable (default
	// 2 h, as the reference servers).
	BatchLifetime time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// Store implements weave.Store over a DB.
type Store struct {
	db            *DB
	now           func() time.Time
	batchLifetime time.Duration
	q             queries
	ws, rs        *stmtCache // prepared statements of the Write and Read pools
	lane          *readLane  // in-process databases only
	colls         collectionCache
	texts         sync.Map // textKey → rebound statement text
	// The Dialect's InsertOrder and TimestampRow, read once.
	descendingInserts, timestampRow bool
}

var _ weave.Store = (*Store)(nil)

// NewStore returns a Store on db, which must be migrated to the storage
// schema. The Store owns db: Close closes it.
func NewStore(db *DB, opts StoreOptions) *Store {
	if opts.BatchLifetime <= 0 {
		opts.BatchLifetime = 2 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{db: db, now: opts.Now, batchLifetime: opts.BatchLifetime,
		descendingInserts: db.Dialect.InsertOrder(), timestampRow: db.Dialect.TimestampRow()}
	s.q = newQueries(db)
	prepare := db.Dialect.CacheStatements()
	s.ws = newStmtCache(db.Write, prepare)
	s.rs = newStmtCache(db.Read, prepare)
	if db.Dialect.InProcess() {
		s.lane = newReadLane(db)
	}
	s.colls.byName = make(map[string]int64)
	s.colls.byID = make(map[int64]string)
	return s
}

// DB returns the database the store runs on.
func (s *Store) DB() *DB { return s.db }

// Ping implements weave.Store.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	if err := s.db.Read.PingContext(ctx); err != nil {
		return s.db.Classify(err)
	}
	if s.db.Write != s.db.Read {
		return s.db.Classify(s.db.Write.PingContext(ctx))
	}
	return nil
}

// Close implements weave.Store: it closes the database.
func (s *Store) Close() error {
	if s.lane != nil {
		s.lane.close()
	}
	s.ws.close()
	s.rs.close()
	return s.db.Close()
}

// nowMs is the wall clock in milliseconds, against which expiries compare.
func (s *Store) nowMs() int64 { return s.now().UnixMilli() }

// collectionCache maps collection names to ids and back. Collections are
// never renamed or deleted, so entries never go stale.
type collectionCache struct {
	mu     sync.RWMutex
	byName map[string]int64
	byID   map[int64]string
}

func (c *collectionCache) id(name string) (int64, bool) {
	c.mu.RLock()
	id, ok := c.byName[name]
	c.mu.RUnlock()
	return id, ok
}

func (c *collectionCache) add(id int64, name string) {
	c.mu.Lock()
	c.byName[name] = id
	c.byID[id] = name
	c.mu.Unlock()
}

// collectionID returns the id of a collection name. ok is false when no
// user has ever used the name; with create, the name is added instead, in a
// statement of its own (outside the caller's transaction, so that it never
// holds the shared collections table while locking a user).
func (s *Store) collectionID(ctx context.Context, name string, create bool) (int64, bool, error) {
	if id, ok := s.colls.id(name); ok {
		return id, true, nil
	}
	return s.loadCollectionID(ctx, name, create)
}

// loadCollectionID is collectionID's slow path, apart so that the fast one
// does not allocate.
func (s *Store) loadCollectionID(ctx context.Context, name string, create bool) (id int64, ok bool, err error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	err = s.db.Read.QueryRowContext(ctx, s.q.collectionByName, name).Scan(&id)
	if err == nil {
		s.colls.add(id, name)
		return id, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, s.db.Classify(err)
	}
	if !create {
		return 0, false, nil
	}
	// Two processes adding names at once may pick the same id; the loser
	// fails on the key and looks again.
	var insertErr error
	for range 5 {
		_, insertErr = s.db.Write.ExecContext(ctx, s.q.insertCollection, name)
		err = s.db.Write.QueryRowContext(ctx, s.q.collectionByName, name).Scan(&id)
		if err == nil {
			s.colls.add(id, name)
			return id, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, s.db.Classify(err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return 0, false, fmt.Errorf("sqlstore: add collection %q: %w", name, s.db.Classify(insertErr))
}

// collectionName returns the name of a collection id, reloading the table
// when another process added names since.
func (s *Store) collectionName(ctx context.Context, id int64) (string, error) {
	s.colls.mu.RLock()
	name, ok := s.colls.byID[id]
	s.colls.mu.RUnlock()
	if ok {
		return name, nil
	}
	rows, err := s.db.Read.QueryContext(ctx, s.q.allCollections)
	if err != nil {
		return "", s.db.Classify(err)
	}
	defer rows.Close()
	s.colls.mu.Lock()
	defer s.colls.mu.Unlock()
	for rows.Next() {
		var cid int64
		var cname string
		if err := rows.Scan(&cid, &cname); err != nil {
			return "", s.db.Classify(err)
		}
		s.colls.byName[cname] = cid
		s.colls.byID[cid] = cname
	}
	if err := rows.Err(); err != nil {
		return "", s.db.Classify(err)
	}
	name, ok = s.colls.byID[id]
	if !ok {
		return "", fmt.Errorf("sqlstore: unknown collection id %d", id)
	}
	return name, nil
}
