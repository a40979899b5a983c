package weave

import "context"

// Precondition is what a write must satisfy, evaluated inside the write's
// transaction: a client's X-If-Unmodified-Since, against the resource the
// request targets (the item for PUT/DELETE of one BSO, the collection for
// POST and collection DELETEs, the whole storage for DELETE of all data),
// and the user's storage quota.
type Precondition struct {
	// IfUnmodifiedSince, when non-nil, fails the write with a
	// *PreconditionFailedError if the resource's timestamp is newer.
	// A value of 0 means "only if the resource does not exist yet".
	IfUnmodifiedSince *Timestamp
	// Quota, when non-nil with Bytes above zero, makes the writes that add
	// payload (PutBSO, PostBSOs and the batch calls) keep the user within
	// it; the others ignore it. The store sets Left. A write that fails
	// IfUnmodifiedSince reports that failure, not the quota's.
	Quota *Quota
}

// Quota is a user's storage quota as a write enforces it, under the same
// lock as the write so that concurrent writes cannot overrun it together.
//
// PutBSO, PostBSOs and CommitBatch fail with an *OverQuotaError, having
// written nothing, when the user's live payload bytes after the write would
// reach Bytes. CreateBatch and AppendBatch, which change no live record,
// fail the same way when the live payload bytes plus the payload bytes
// they stage would reach Bytes. Writes with no payload count too: a user at
// the quota can only delete.
type Quota struct {
	// Bytes is the quota in payload bytes; 0 means none.
	Bytes int64
	// Left is set by a successful write: Bytes minus the user's live
	// payload bytes after it (for CreateBatch and AppendBatch, minus the
	// bytes they staged too). After an over-quota refusal it is the
	// *OverQuotaError's Left.
	Left int64
}

// Check returns a *PreconditionFailedError if a resource last modified at
// modified fails the precondition.
func (p Precondition) Check(modified Timestamp) error {
	if p.IfUnmodifiedSince != nil && modified > *p.IfUnmodifiedSince {
		return &PreconditionFailedError{Modified: modified}
	}
	return nil
}

// Sort is the order of a collection read.
type Sort int

const (
	// SortNewest: modified descending (the default).
	SortNewest Sort = iota
	// SortOldest: modified ascending.
	SortOldest
	// SortIndex: sortindex descending.
	SortIndex
)

// Query selects BSOs of one collection.
type Query struct {
	IDs   []string  // only these ids; nil means all
	Newer Timestamp // modified > Newer; 0 means no lower bound
	Older Timestamp // modified < Older; 0 means no upper bound
	Sort  Sort
	// Limit caps the number of results; 0 means no limit. When more records
	// match, Page.NextOffset is set.
	Limit int
	// Offset resumes a previous read: a Page.NextOffset issued by the same
	// store for the same query, or StartOffset. Unknown offsets give
	// ErrInvalidOffset.
	Offset string
	// IDsOnly lets the store skip loading payloads.
	IDsOnly bool
	// Lean lets the store leave Expires, ParentID and PredecessorID zero:
	// Sync 1.5 shows none of them, and a read of each costs per record.
	Lean bool
	// ParentID and PredecessorID, when non-nil, keep only the records
	// whose field equals the value (Sync 1.1 filters; no record has an
	// empty one).
	ParentID, PredecessorID *string
	// MaxBytes, when above zero, ends the page early once the payloads
	// read (the ids for IDsOnly) reach this many bytes, always after at
	// least one record; Page.NextOffset then resumes after the last record
	// returned. It bounds the memory of one page whatever the records' sizes.
	MaxBytes int
	// CountOnly asks for no records but Page.Count: how many records the
	// read returns from Offset on, over all its pages, at most Limit;
	// with a Limit that fewer records than match, Page.NextOffset resumes
	// after the Limit-th. MaxBytes is ignored. It counts a read without
	// reading it, so costs far less than the read.
	CountOnly bool
}

// StartOffset is the offset of a read's first record, which an answer to
// limit=0 gives as its next offset when records match (as syncstorage-rs
// does): every store accepts it and reads from the start.
const StartOffset = "0"

// Page is the result of a collection read.
type Page struct {
	BSOs       []BSO
	NextOffset string // "" when the read is complete
	// Modified is the collection's timestamp in the same snapshot as BSOs
	// (0 if the collection does not exist).
	Modified Timestamp
	// Count is the answer to Query.CountOnly (0 otherwise).
	Count int
}

// Store keeps the Sync data of many users. Every method is safe for
// concurrent use; every write is one transaction, applied whole or not at all.
//
// Timestamps: every write gets one timestamp T, strictly greater than every
// timestamp the user's storage has had before (so a write never reuses or
// goes below a timestamp a client may have seen), and every BSO it creates or
// changes, its collection and the user's storage take T. T is not ahead of
// the store's clock unless that clock went back; a TTL counts from the
// clock at the write.
//
// Expired BSOs (past their TTL) are invisible to every read, count and usage
// figure, even before PurgeExpired removes them.
//
// A user with no data reads as empty (timestamp 0), never as ErrNotFound,
// except where a method says otherwise.
type Store interface {
	// LastModified returns the user's storage timestamp.
	LastModified(ctx context.Context, uid int64) (Timestamp, error)
	// CollectionTimestamps returns every collection of the user with its
	// timestamp, and the storage timestamp, from one snapshot.
	CollectionTimestamps(ctx context.Context, uid int64) (map[string]Timestamp, Timestamp, error)
	// CollectionCounts returns the number of live BSOs per collection
	// (collections without live BSOs may be omitted).
	CollectionCounts(ctx context.Context, uid int64) (map[string]int64, error)
	// CollectionUsage returns payload bytes of live BSOs per collection.
	CollectionUsage(ctx context.Context, uid int64) (map[string]int64, error)
	// Usage returns the payload bytes of all the user's live BSOs.
	Usage(ctx context.Context, uid int64) (int64, error)
	// CollectionModified returns the collection's timestamp, 0 if absent.
	CollectionModified(ctx context.Context, uid int64, collection string) (Timestamp, error)

	// GetBSOs reads a collection. A missing collection gives an empty Page.
	GetBSOs(ctx context.Context, uid int64, collection string, q Query) (Page, error)
	// GetBSO reads one live BSO, or returns ErrNotFound.
	GetBSO(ctx context.Context, uid int64, collection, id string) (BSO, error)

	// PutBSO creates or updates one BSO; the precondition applies to the
	// item's timestamp (0 if absent).
	PutBSO(ctx context.Context, uid int64, collection string, u Update, pre Precondition) (Timestamp, error)
	// PostBSOs creates or updates several BSOs (ids unique) with one
	// timestamp; the precondition applies to the collection.
	PostBSOs(ctx context.Context, uid int64, collection string, us []Update, pre Precondition) (Timestamp, error)
	// DeleteBSO deletes one BSO (ErrNotFound if it is absent or expired); the
	// precondition applies to the item.
	DeleteBSO(ctx context.Context, uid int64, collection, id string, pre Precondition) (Timestamp, error)
	// DeleteBSOs deletes the listed BSOs of a collection, which stays in
	// place with timestamp T even if it is left empty. A missing collection
	// is left alone and the storage timestamp returned.
	DeleteBSOs(ctx context.Context, uid int64, collection string, ids []string, pre Precondition) (Timestamp, error)
	// DeleteCollection removes a collection and all its BSOs and open
	// batches, and returns the storage timestamp afterwards. A missing
	// collection is not an error.
	DeleteCollection(ctx context.Context, uid int64, collection string, pre Precondition) (Timestamp, error)
	// DeleteStorage removes all the user's collections, BSOs and batches;
	// the precondition applies to the storage timestamp.
	DeleteStorage(ctx context.Context, uid int64, pre Precondition) (Timestamp, error)

	// CreateBatch opens a batch upload in a collection, staging us (which
	// may be empty), and returns its opaque id and the collection's
	// timestamp (0 if absent), read in the same transaction. The collection
	// timestamp does not change until commit.
	CreateBatch(ctx context.Context, uid int64, collection string, us []Update, pre Precondition) (batch string, modified Timestamp, err error)
	// AppendBatch stages more BSOs in an open batch and returns the
	// collection's timestamp, read in the same transaction. Unknown,
	// expired or foreign batch ids give ErrBatchNotFound.
	AppendBatch(ctx context.Context, uid int64, collection, batch string, us []Update, pre Precondition) (Timestamp, error)
	// CommitBatch applies every staged BSO plus us (which win over staged
	// BSOs with the same id) atomically with one timestamp, and closes the
	// batch.
	CommitBatch(ctx context.Context, uid int64, collection, batch string, us []Update, pre Precondition) (Timestamp, error)

	// PurgeExpired deletes up to limit expired BSOs and expired batches in
	// small transactions, returning how many rows it removed.
	PurgeExpired(ctx context.Context, limit int) (int64, error)
	// Ping checks that the backing database answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// CollectionTimestamp is a collection's name and timestamp.
type CollectionTimestamp struct {
	Name     string
	Modified Timestamp
}

// CollectionTimestampsAppender is a Store that can append a user's
// collection timestamps to a slice instead of building a map: clients ask
// for them before every sync, and the caller only walks them once.
type CollectionTimestampsAppender interface {
	// AppendCollectionTimestamps appends to dst what CollectionTimestamps
	// returns, one element per collection in no particular order, and
	// returns the storage timestamp.
	AppendCollectionTimestamps(ctx context.Context, uid int64, dst []CollectionTimestamp) ([]CollectionTimestamp, Timestamp, error)
}

// AppendCollectionTimestamps reads with s.AppendCollectionTimestamps if s is
// a CollectionTimestampsAppender, else with CollectionTimestamps.
func AppendCollectionTimestamps(ctx context.Context, s Store, uid int64, dst []CollectionTimestamp) ([]CollectionTimestamp, Timestamp, error) {
	if a, ok := s.(CollectionTimestampsAppender); ok {
		return a.AppendCollectionTimestamps(ctx, uid, dst)
	}
	colls, storage, err := s.CollectionTimestamps(ctx, uid)
	if err != nil {
		return dst, 0, err
	}
	for name, ts := range colls {
		dst = append(dst, CollectionTimestamp{Name: name, Modified: ts})
	}
	return dst, storage, nil
}

// BSOStreamer is a Store that can hand a collection read's records to a
// function as it reads them, instead of collecting them in Page.BSOs: the
// caller encodes each record while the next is read, with no slice of
// records and no record kept alive until the whole page is read.
type BSOStreamer interface {
	// StreamBSOs reads as GetBSOs does, but calls fn with each record of
	// the page, in order, and returns the Page with BSOs nil (NextOffset,
	// Modified and Count as GetBSOs sets them). The store reuses the BSO
	// after fn returns (its strings may be kept). An error from fn ends
	// the read and is returned as is. fn is never called for a CountOnly
	// read.
	StreamBSOs(ctx context.Context, uid int64, collection string, q Query, fn func(*BSO) error) (Page, error)
}

// StreamBSOs reads with s.StreamBSOs if s is a BSOStreamer, else with
// GetBSOs, calling fn for each record of the page in order.
func StreamBSOs(ctx context.Context, s Store, uid int64, collection string, q Query, fn func(*BSO) error) (Page, error) {
	if st, ok := s.(BSOStreamer); ok {
		return st.StreamBSOs(ctx, uid, collection, q, fn)
	}
	page, err := s.GetBSOs(ctx, uid, collection, q)
	if err != nil {
		return Page{}, err
	}
	for i := range page.BSOs {
		if err := fn(&page.BSOs[i]); err != nil {
			return Page{}, err
		}
	}
	page.BSOs = nil
	return page, nil
}
