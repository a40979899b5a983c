package metrics

import (
	"errors"

	"github.com/weave-sync/weave/hawk"
	"github.com/weave-sync/weave/tokenlib"
)

// The observer methods below are what the token server and the storage API
// call. They take plain Go types so that a caller can declare the few it
// needs as an interface of its own without importing this package. Reason
// strings are checked against the lists here; anything else is counted as
// "other", so a caller's typo or a new error can never create unbounded
// series.

// Token refusal reasons for TokenRefused. The first six are the token
// server's error "status" strings (tokenserver-1.0.md §10).
const (
	RefusedInvalidCredentials   = "invalid-credentials"
	RefusedInvalidGeneration    = "invalid-generation"
	RefusedInvalidKeysChangedAt = "invalid-keysChangedAt"
	RefusedInvalidClientState   = "invalid-client-state"
	RefusedInvalidKeyID         = "invalid-key-id"
	RefusedNewUsersDisabled     = "new-users-disabled"
	// RefusedUnauthorized: no or an unsupported Authorization header.
	RefusedUnauthorized = "unauthorized"
	// RefusedBadRequest: 400, 404, 405, 406 (bad X-Client-State format,
	// unknown application or version, …).
	RefusedBadRequest = "bad-request"
	// RefusedNodeDown: the user's node is down (503).
	RefusedNodeDown = "node-down"
	// RefusedNoNode: no node takes new users (503).
	RefusedNoNode = "no-node"
	// RefusedFxAUnavailable: FxA verification could not be done (503).
	RefusedFxAUnavailable = "fxa-unavailable"
	// RefusedBackendUnavailable: the token database failed (503).
	RefusedBackendUnavailable = "backend-unavailable"
)

func tokenReason(s string) string {
	switch s {
	case RefusedInvalidCredentials, RefusedInvalidGeneration, RefusedInvalidKeysChangedAt,
		RefusedInvalidClientState, RefusedInvalidKeyID, RefusedNewUsersDisabled,
		RefusedUnauthorized, RefusedBadRequest, RefusedNodeDown, RefusedNoNode,
		RefusedFxAUnavailable, RefusedBackendUnavailable:
		return s
	}
	return "other"
}

// Hawk failure reasons for HawkFailed; HawkReason derives most of them from
// the error of hawk.Verifier.Verify.
const (
	HawkMissing     = "missing"         // no Authorization header
	HawkMalformed   = "malformed"       // not a parsable Hawk header
	HawkBadToken    = "bad-token"       // token id malformed or not signed by us
	HawkExpired     = "expired-token"   // token past its expiry
	HawkRejected    = "token-rejected"  // token refused otherwise (wrong node, …)
	HawkBadMAC      = "bad-mac"         // request MAC mismatch
	HawkStale       = "stale-timestamp" // ts outside the skew window
	HawkReplay      = "replayed-nonce"  // nonce already seen
	HawkBadHash     = "payload-hash"    // body does not match the hash attribute
	HawkUIDMismatch = "uid-mismatch"    // token uid is not the URL's uid
)

func hawkReason(s string) string {
	switch s {
	case HawkMissing, HawkMalformed, HawkBadToken, HawkExpired, HawkRejected, HawkBadMAC,
		HawkStale, HawkReplay, HawkBadHash, HawkUIDMismatch:
		return s
	}
	return "other"
}

// HawkReason classifies an error of hawk.Verifier.Verify (including the
// tokenlib errors its key lookup wraps) as a Hawk failure reason.
func HawkReason(err error) string {
	switch {
	case err == nil:
		return "other"
	case errors.Is(err, tokenlib.ErrExpired):
		return HawkExpired
	case errors.Is(err, tokenlib.ErrMalformed), errors.Is(err, tokenlib.ErrInvalidSignature):
		return HawkBadToken
	case errors.Is(err, hawk.ErrKeyLookup):
		return HawkRejected
	case errors.Is(err, hawk.ErrMalformed):
		return HawkMalformed
	case errors.Is(err, hawk.ErrBadMAC):
		return HawkBadMAC
	case errors.Is(err, hawk.ErrStaleTimestamp):
		return HawkStale
	case errors.Is(err, hawk.ErrReplayedNonce):
		return HawkReplay
	case errors.Is(err, hawk.ErrBadPayloadHash):
		return HawkBadHash
	}
	return "other"
}

// TokenIssued counts a token handed out by the token server; newUID says
// that the request allocated a new uid (AllocateUser) rather than reusing
// the current record.
func (m *Metrics) TokenIssued(newUID bool) {
	if m == nil {
		return
	}
	m.tokensIssued.Inc()
	if newUID {
		m.usersAllocated.Inc()
	}
}

// TokenRefused counts a token request answered with an error; reason is
// one of the Refused… constants.
func (m *Metrics) TokenRefused(reason string) {
	if m == nil {
		return
	}
	m.tokenRefusals.WithLabelValues(tokenReason(reason)).Inc()
}

// HawkFailed counts a storage request refused by authentication; reason is
// one of the Hawk… constants (HawkReason maps Verify's errors).
func (m *Metrics) HawkFailed(reason string) {
	if m == nil {
		return
	}
	m.hawkFailures.WithLabelValues(hawkReason(reason)).Inc()
}

// BatchOpened counts a batch upload created (POST ?batch=true).
func (m *Metrics) BatchOpened() {
	if m == nil {
		return
	}
	m.batchesOpened.Inc()
}

// BatchCommitted counts a committed batch with the number of records and
// payload bytes it applied (staged plus those sent with the commit).
func (m *Metrics) BatchCommitted(records int, bytes int64) {
	if m == nil {
		return
	}
	m.batchesDone.Inc()
	m.batchRecords.Observe(float64(records))
	m.batchBytes.Observe(float64(bytes))
}

// RecordsWritten counts BSOs created or updated and their payload bytes,
// once per successful write: a PUT, a POST without batch, or a batch
// commit with everything the batch applied (staged records are not written
// until then).
func (m *Metrics) RecordsWritten(records int, bytes int64) {
	if m == nil || records <= 0 {
		return
	}
	m.recordsWritten.Add(float64(records))
	if bytes > 0 {
		m.bytesWritten.Add(float64(bytes))
	}
}

// RecordsRead counts BSOs returned to a client and their payload bytes
// (GET of an item or a collection with full records).
func (m *Metrics) RecordsRead(records int, bytes int64) {
	if m == nil || records <= 0 {
		return
	}
	m.recordsRead.Add(float64(records))
	if bytes > 0 {
		m.bytesRead.Add(float64(bytes))
	}
}

// Conflict counts a write refused for a conflict, by the status answered:
// 412 for a failed X-If-Unmodified-Since, 409 or 503 for a concurrent
// write (weave.ErrConflict). Other statuses are counted as "other".
func (m *Metrics) Conflict(status int) {
	if m == nil {
		return
	}
	s := "other"
	switch status {
	case 409, 412, 503:
		s, _ = statusLabels(status)
	}
	m.conflicts.WithLabelValues(s).Inc()
}

// MoveResumed counts an interrupted user move taken over by this process's
// fleet.Resumer; ok says it finished.
func (m *Metrics) MoveResumed(ok bool) {
	if m == nil {
		return
	}
	result := "finished"
	if !ok {
		result = "failed"
	}
	m.movesResumed.WithLabelValues(result).Inc()
}
