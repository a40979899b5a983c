package weave

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors shared by every Store implementation. Adapters wrap them
// (fmt.Errorf("...: %w", ErrX)); callers test with errors.Is / errors.As.
var (
	// ErrNotFound: the BSO (or user, node, batch owner) does not exist.
	ErrNotFound = errors.New("weave: not found")
	// ErrBatchNotFound: the batch id is unknown, expired, already committed,
	// or belongs to another user or collection.
	ErrBatchNotFound = errors.New("weave: batch not found")
	// ErrOverQuota: the write would take the user over their quota.
	ErrOverQuota = errors.New("weave: over quota")
	// ErrConflict: a concurrent write could not be serialised with this one
	// (lock timeout, deadlock, serialisation failure after retries). Nothing
	// was written; the client should retry later.
	ErrConflict = errors.New("weave: conflicting concurrent write")
	// ErrUnavailable: the backing database (or the node) cannot serve the
	// request right now. Nothing was written.
	ErrUnavailable = errors.New("weave: storage unavailable")
	// ErrStorageFull: the database's disk (or its tablespace) is full.
	// Nothing was written. It is an ErrUnavailable: writes are refused with
	// 503 + Retry-After until the database has room again, reads go on.
	ErrStorageFull = fmt.Errorf("%w: storage full", ErrUnavailable)
	// ErrSchemaTooNew: the database was migrated by a newer weave.
	ErrSchemaTooNew = errors.New("weave: database schema is newer than this binary")
)

// PreconditionFailedError reports that X-If-Unmodified-Since failed: the
// resource was modified at Modified, after the client's timestamp. Nothing
// was written.
type PreconditionFailedError struct {
	Modified Timestamp
}

func (e *PreconditionFailedError) Error() string {
	return fmt.Sprintf("weave: precondition failed: resource modified at %s", e.Modified)
}

// UnavailableError is an ErrUnavailable with a hint of when to come back,
// e.g. a user locked for migration or a node marked down.
type UnavailableError struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *UnavailableError) Error() string {
	return "weave: unavailable: " + e.Reason
}

// Unwrap makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// ErrInvalidOffset: a pagination offset that this store did not issue, or
// one inconsistent with the query's newer/older bounds.
var ErrInvalidOffset = errors.New("weave: invalid offset")
