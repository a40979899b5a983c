package weave

import "regexp"

// BSO is a Basic Storage Object as stored: the unit of Sync data.
type BSO struct {
	ID       string
	Modified Timestamp
	// SortIndex is nil when the record has none.
	SortIndex *int64
	Payload   string
	// Expires is the absolute expiry time; 0 means the record never expires.
	// It is kept for maintenance and migration and never shown to clients.
	Expires Timestamp
	// ParentID and PredecessorID are the deprecated fields of Sync 1.1
	// (ids of other records, at most MaxIDLength bytes), "" when unset.
	// Only the 1.1 API writes or shows them; Sync 1.5 BSOs have neither.
	ParentID, PredecessorID string
}

// Optional is a write field that the client may leave out (keep the stored
// value), send as null (reset to the default) or send with a value.
type Optional[T any] struct {
	Set   bool // the field was present in the request
	Null  bool // the field was present and null
	Value T
}

// Some returns an Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// Update is one BSO as sent by a client in a PUT or POST: a create-or-update
// with partial-update semantics.
type Update struct {
	ID string
	// Payload: absent keeps the stored payload ("" for a new record); null
	// resets it to "". Only an update that sets the payload changes the
	// record's modified time (as the Python reference server does).
	Payload Optional[string]
	// SortIndex: absent keeps, null clears.
	SortIndex Optional[int64]
	// TTL in seconds from the write: absent keeps the stored expiry (never
	// for a new record); null makes the record never expire.
	TTL Optional[int64]
	// ParentID and PredecessorID (Sync 1.1 only): absent keeps, null or
	// "" clears.
	ParentID, PredecessorID Optional[string]
}

// Validation bounds of the protocol.
const (
	MaxSortIndex = 999_999_999
	MinSortIndex = -999_999_999
	MaxTTL       = 999_999_999 // seconds
	MaxIDLength  = 64
)

var (
	collectionRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
	bsoIDRE      = regexp.MustCompile(`^[ -~]{1,64}$`)
)

// ValidCollection reports whether name is a legal collection name.
func ValidCollection(name string) bool { return collectionRE.MatchString(name) }

// ValidBSOID reports whether id is a legal BSO id: 1 to 64 printable ASCII
// characters.
func ValidBSOID(id string) bool { return bsoIDRE.MatchString(id) }
