package sqlstore

import (
	"strconv"
	"strings"
)

// queries are the Store's fixed statements, rebound for the dialect once.
type queries struct {
	collectionByName, insertCollection, allCollections string

	lockUser, lockUserJoined, lockedUserState string
	insertUser, setStorage, touchCollection   string
	collectionModified, itemModified          string

	lastModified, collectionTimestamps  string
	collectionCounts, collectionUsage   string
	usage, getBSO                       string
	deleteBSO, deleteCollectionBSOs     string
	deleteCollection                    string
	deleteCollectionStaged              string
	deleteCollectionBatches             string
	deleteUserBSOs, deleteUserColls     string
	deleteUserStaged, deleteUserBatches string

	insertBatch, getBatch, stagedShapes string
	deleteStaged, deleteBatch           string

	expiredBSOs, expiredBatches, purgeBatch string
}

const never = "9223372036854775807" // neverExpires as an SQL literal

func newQueries(db *DB) queries {
	d := db.Dialect
	q := db.Q
	return queries{
		collectionByName: q(`SELECT id FROM collections WHERE name = ?`),
		// Custom collections take ids from 101 (spec §2.2).
		insertCollection: q(`INSERT INTO collections (id, name) SELECT COALESCE(MAX(id), 100) + 1, ? FROM collections WHERE id > 100`),
		allCollections:   q(`SELECT id, name FROM collections`),

		lockUser: q(`SELECT modified FROM user_storage WHERE uid = ?` + d.ForUpdate()),
		// Parameters: collection id, uid. What write needs after the lock,
		// in one statement: the joins are locking reads too, so they see
		// the newest rows (Dialect.LockingJoins).
		lockUserJoined: lockUserJoined(d),
		// Parameters: uid, uid, uid, collection id.
		lockedUserState:    q(`SELECT (SELECT MAX(modified) FROM user_collections WHERE uid = ?), (SELECT state FROM user_moves WHERE uid = ?), (SELECT modified FROM user_collections WHERE uid = ? AND collection_id = ?)`),
		insertUser:         q(`INSERT INTO user_storage (uid, modified) VALUES (?, 0)` + d.Upsert([]string{"uid"}, nil)),
		setStorage:         q(`UPDATE user_storage SET modified = ? WHERE uid = ?`),
		touchCollection:    q(`INSERT INTO user_collections (uid, collection_id, modified) VALUES (?, ?, ?)` + d.Upsert([]string{"uid", "collection_id"}, []string{"modified"})),
		collectionModified: q(`SELECT modified FROM user_collections WHERE uid = ? AND collection_id = ?`),
		itemModified:       q(`SELECT modified FROM bsos WHERE uid = ? AND collection_id = ? AND id = ? AND expiry > ?`),

		// The storage timestamp is the newest of the storage row's and the
		// collections' (see storageTimestamp).
		lastModified: q(`SELECT s.modified, (SELECT MAX(modified) FROM user_collections WHERE uid = s.uid) FROM user_storage s WHERE s.uid = ?`),
		// One statement, so one snapshot; collection id 0 carries the
		// storage timestamp.
		collectionTimestamps: q(`SELECT collection_id, modified FROM user_collections WHERE uid = ? UNION ALL SELECT 0, modified FROM user_storage WHERE uid = ?`),
		collectionCounts:     q(`SELECT collection_id, COUNT(*) FROM bsos WHERE uid = ? AND expiry > ? GROUP BY collection_id`),
		collectionUsage:      q(`SELECT collection_id, SUM(payload_size) FROM bsos WHERE uid = ? AND expiry > ? GROUP BY collection_id`),
		usage:                q(`SELECT COALESCE(SUM(payload_size), 0) FROM bsos WHERE uid = ? AND expiry > ?`),
		getBSO:               q(`SELECT modified, sortindex, payload, expiry, parentid, predecessorid FROM bsos WHERE uid = ? AND collection_id = ? AND id = ? AND expiry > ?`),

		deleteBSO:               q(`DELETE FROM bsos WHERE uid = ? AND collection_id = ? AND id = ?`),
		deleteCollectionBSOs:    q(`DELETE FROM bsos WHERE uid = ? AND collection_id = ?`),
		deleteCollection:        q(`DELETE FROM user_collections WHERE uid = ? AND collection_id = ?`),
		deleteCollectionStaged:  q(`DELETE FROM batch_bsos WHERE uid = ? AND batch_id IN (SELECT id FROM batches WHERE uid = ? AND collection_id = ?)`),
		deleteCollectionBatches: q(`DELETE FROM batches WHERE uid = ? AND collection_id = ?`),
		deleteUserBSOs:          q(`DELETE FROM bsos WHERE uid = ?`),
		deleteUserColls:         q(`DELETE FROM user_collections WHERE uid = ?`),
		deleteUserStaged:        q(`DELETE FROM batch_bsos WHERE uid = ?`),
		deleteUserBatches:       q(`DELETE FROM batches WHERE uid = ?`),

		insertBatch:  q(`INSERT INTO batches (uid, id, collection_id, expiry) VALUES (?, ?, ?, ?)`),
		getBatch:     q(`SELECT collection_id, expiry FROM batches WHERE uid = ? AND id = ?`),
		stagedShapes: q(`SELECT DISTINCT payload_set, sortindex_set, ttl_set FROM batch_bsos WHERE uid = ? AND batch_id = ?`),
		deleteStaged: q(`DELETE FROM batch_bsos WHERE uid = ? AND batch_id = ?`),
		deleteBatch:  q(`DELETE FROM batches WHERE uid = ? AND id = ?`),

		expiredBSOs:    q(`SELECT uid, collection_id, id FROM bsos WHERE expiry <= ? LIMIT ?`),
		expiredBatches: q(`SELECT uid, id FROM batches WHERE expiry <= ? LIMIT ?`),
		purgeBatch:     q(`DELETE FROM batches WHERE uid = ? AND id = ? AND expiry <= ?`),
	}
}

// lockUserJoined is the lock statement where locking reads over joins see
// the newest rows (Dialect.LockingJoins). Parameters: collection id, uid.
func lockUserJoined(d Dialect) string {
	if d.ForUpdate() == "" {
		// No row locks (SQLite): the write transaction itself excludes
		// every other writer, so each subquery sees the newest rows. The
		// join below would be prepared again on every run here, as its
		// plan depends on the values bound (SQLite's STAT4 estimates).
		return `SELECT s.modified, (SELECT MAX(modified) FROM user_collections WHERE uid = s.uid), ` +
			`(SELECT state FROM user_moves WHERE uid = s.uid), ` +
			`(SELECT modified FROM user_collections WHERE uid = s.uid AND collection_id = ?) ` +
			`FROM user_storage s WHERE s.uid = ?`
	}
	// MySQL: a locking read does not lock, nor read the newest rows of,
	// the tables of its subqueries, so the values are joined.
	return d.Rebind(`SELECT s.modified, MAX(a.modified), m.state, c.modified FROM user_storage s ` +
		`LEFT JOIN user_moves m ON m.uid = s.uid ` +
		`LEFT JOIN user_collections c ON c.uid = s.uid AND c.collection_id = ? ` +
		`LEFT JOIN user_collections a ON a.uid = s.uid ` +
		`WHERE s.uid = ? GROUP BY s.modified, m.state, c.modified` + d.ForUpdate())
}

// Statements whose text depends on the number of rows or the fields an
// update sets are generated once per variant and kept in Store.texts.
type textKey struct {
	kind  uint8
	shape shape
	n     int
}

const (
	textUpsertBSOs uint8 = iota
	textUpsertStaged
	textApplyStaged
	textDeleteExpired
)

func (s *Store) text(k textKey) string {
	if t, ok := s.texts.Load(k); ok {
		return t.(string)
	}
	t := s.db.Q(s.buildText(k))
	if k.kind == textApplyStaged || cacheable(k.n) {
		// Odd sizes are rebuilt each time rather than kept forever.
		s.texts.Store(k, t)
	}
	return t
}

func (s *Store) buildText(k textKey) string {
	d := s.db.Dialect
	var b strings.Builder
	switch k.kind {
	case textUpsertBSOs:
		// Parameters: 10 per row, then now once per reviveCount.
		b.WriteString(`INSERT INTO bsos (uid, collection_id, id, sortindex, payload, payload_size, modified, expiry, parentid, predecessorid) VALUES `)
		repeatTuple(&b, 10, k.n)
		b.WriteString(d.UpsertSet(bsoKey, k.shape.upsertSet(d)))
	case textUpsertStaged:
		b.WriteString(`INSERT INTO batch_bsos (uid, batch_id, id, payload, payload_size, payload_set, sortindex, sortindex_set, ttl, ttl_set) VALUES `)
		repeatTuple(&b, 10, k.n)
		b.WriteString(d.Upsert(stagedKey, k.shape.stagedColumns()))
	case textApplyStaged:
		// Parameters: collection id, T, the clock (expiry base), uid, batch id,
		// then now once per reviveCount.
		// Batches never set the Sync 1.1 fields: existing records keep
		// theirs (upsertSet), new ones have none.
		b.WriteString(`INSERT INTO bsos (uid, collection_id, id, sortindex, payload, payload_size, modified, expiry, parentid, predecessorid) ` +
			`SELECT uid, ?, id, sortindex, payload, payload_size, ?, CASE WHEN ttl IS NULL THEN ` + never + ` ELSE ? + ttl * 1000 END, NULL, NULL ` +
			`FROM batch_bsos WHERE uid = ? AND batch_id = ?`)
		for i, col := range []string{"payload_set", "sortindex_set", "ttl_set"} {
			b.WriteString(" AND " + col + " = ")
			if k.shape&(1<<i) != 0 {
				b.WriteString("1")
			} else {
				b.WriteString("0")
			}
		}
		if s.descendingInserts {
			// In the order of the read's rowid lookups (see upsert).
			b.WriteString(" ORDER BY id DESC")
		}
		b.WriteString(d.UpsertSet(bsoKey, k.shape.upsertSet(d)))
	case textDeleteExpired:
		// Parameters: uid, collection id, now, ids.
		b.WriteString(`DELETE FROM bsos WHERE uid = ? AND collection_id = ? AND expiry <= ? AND id IN `)
		repeatTuple(&b, k.n, 1)
	default:
		panic("sqlstore: unknown statement kind " + strconv.Itoa(int(k.kind)))
	}
	return b.String()
}

var (
	bsoKey    = []string{"uid", "collection_id", "id"}
	stagedKey = []string{"uid", "batch_id", "id"}
)

// repeatTuple writes n comma-separated tuples of width placeholders.
func repeatTuple(b *strings.Builder, width, n int) {
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range width {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
}
