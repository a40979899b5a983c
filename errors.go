package weave

import (
	"context"
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
	// ErrOverQuota: the write would take the user over their quota (see
	// Quota); stores return it as an *OverQuotaError.
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
	// ErrTooLarge: the database refused a write for its size, although
	// the request was within the server's limits (Limits): MariaDB/MySQL's
	// max_allowed_packet is below a record weave accepts. Nothing was
	// written; the same request fails again until the database's limit
	// is raised.
	ErrTooLarge = errors.New("weave: too large for the database")
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

// OverQuotaError is the ErrOverQuota of a write refused by its Quota.
// Nothing was written.
type OverQuotaError struct {
	// Left is the quota's Bytes minus the user's live payload bytes as
	// the write would have left them: zero or below.
	Left int64
}

func (e *OverQuotaError) Error() string {
	return fmt.Sprintf("weave: over quota (%d bytes left)", e.Left)
}

// Unwrap makes errors.Is(err, ErrOverQuota) true.
func (e *OverQuotaError) Unwrap() error { return ErrOverQuota }

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

// ErrorKind is what a layer needs to know about an error to react to it:
// http and the 1.1 front end turn kinds into statuses, sqlstore leaves
// errors that already have a kind alone, the cache decorator knows which
// failed writes changed nothing. ErrorKindOf is the one place that knows
// which error belongs to which kind; callers that need an error's details
// (a precondition's timestamp, a retry hint) still read them with errors.As.
type ErrorKind uint8

const (
	// KindNone: no error.
	KindNone ErrorKind = iota
	// KindInternal: not one of weave's errors; a bug or a failure nobody
	// classified. Logged, and answered as a server failure.
	KindInternal
	// KindNotFound: ErrNotFound.
	KindNotFound
	// KindInvalid: the request names something the store never issued or
	// no longer holds (ErrBatchNotFound, ErrInvalidOffset) or is malformed
	// (ErrBadTimestamp). Nothing was written.
	KindInvalid
	// KindPrecondition: a *PreconditionFailedError. Nothing was written.
	KindPrecondition
	// KindOverQuota: ErrOverQuota (an *OverQuotaError from a store).
	// Nothing was written.
	KindOverQuota
	// KindConflict: ErrConflict. Nothing was written; retry later.
	KindConflict
	// KindStorageFull: ErrStorageFull, an unavailability that refuses
	// writes until the database has room again.
	KindStorageFull
	// KindUnavailable: ErrUnavailable (an *UnavailableError may carry a
	// retry hint), ErrNoNode, ErrSchemaTooNew, or a context deadline that
	// passed: the service cannot answer now.
	KindUnavailable
	// KindCanceled: the caller went away (context.Canceled).
	KindCanceled
	// KindUserMoved: ErrUserMoved; the client must fetch a new token.
	KindUserMoved
	// KindExists: ErrNodeExists, ErrLegacyUserExists.
	KindExists
	// KindTooLarge: ErrTooLarge. Nothing was written.
	KindTooLarge
)

var kindNames = [...]string{
	KindNone: "none", KindInternal: "internal", KindNotFound: "not found",
	KindInvalid: "invalid", KindPrecondition: "precondition failed",
	KindOverQuota: "over quota", KindConflict: "conflict",
	KindStorageFull: "storage full", KindUnavailable: "unavailable",
	KindCanceled: "canceled", KindUserMoved: "user moved", KindExists: "exists",
	KindTooLarge: "too large",
}

func (k ErrorKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// ErrorKindOf classifies any error, looking through wrapping. An error that
// matches several kinds takes the first of this order: user moved,
// precondition, not found, invalid, over quota, too large, conflict,
// storage full, unavailable, canceled, exists.
func ErrorKindOf(err error) ErrorKind {
	var pf *PreconditionFailedError
	switch {
	case err == nil:
		return KindNone
	case errors.Is(err, ErrUserMoved):
		return KindUserMoved
	case errors.As(err, &pf):
		return KindPrecondition
	case errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrBatchNotFound), errors.Is(err, ErrInvalidOffset), errors.Is(err, ErrBadTimestamp):
		return KindInvalid
	case errors.Is(err, ErrOverQuota):
		return KindOverQuota
	case errors.Is(err, ErrTooLarge):
		return KindTooLarge
	case errors.Is(err, ErrConflict):
		return KindConflict
	case errors.Is(err, ErrStorageFull):
		return KindStorageFull
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNoNode), errors.Is(err, ErrSchemaTooNew),
		errors.Is(err, context.DeadlineExceeded):
		return KindUnavailable
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, ErrNodeExists), errors.Is(err, ErrLegacyUserExists):
		return KindExists
	}
	return KindInternal
}
