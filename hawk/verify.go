package hawk

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// DefaultSkew is the timestamp window used when Options.Skew is zero: the
// value Hawk and Mozilla's hawkauthlib use.
const DefaultSkew = 60 * time.Second

// DefaultNonceCapacity bounds the replay cache when Options.NonceCapacity is
// zero: about 8 000 requests per second for a 60 s window, at roughly 40
// bytes per entry.
const DefaultNonceCapacity = 1 << 20

// Verification failures. Every one means 401 to a Sync client; they are
// distinct so logs and metrics can tell them apart.
var (
	// ErrKeyLookup: the id did not yield a key (bad, expired or foreign
	// token). Returned as *KeyLookupError wrapping the lookup's error.
	ErrKeyLookup = errors.New("hawk: credentials lookup failed")
	// ErrBadMAC: the request MAC does not match.
	ErrBadMAC = errors.New("hawk: bad mac")
	// ErrBadPayloadHash: the hash attribute does not match the body.
	ErrBadPayloadHash = errors.New("hawk: bad payload hash")
	// ErrStaleTimestamp: ts is outside the window. Returned as
	// *StaleTimestampError, which carries the challenge to send.
	ErrStaleTimestamp = errors.New("hawk: stale timestamp")
	// ErrReplayedNonce: this (id, ts, nonce) was already accepted.
	ErrReplayedNonce = errors.New("hawk: replayed nonce")
)

// KeyLookupError wraps the error of Request.LookupKey, so callers can match
// both ErrKeyLookup and the lookup's own errors (e.g. tokenlib.ErrExpired).
type KeyLookupError struct{ Err error }

func (e *KeyLookupError) Error() string        { return "hawk: credentials lookup failed: " + e.Err.Error() }
func (e *KeyLookupError) Unwrap() error        { return e.Err }
func (e *KeyLookupError) Is(target error) bool { return target == ErrKeyLookup }

// StaleTimestampError is returned for a timestamp outside the window. The
// request was otherwise authentic (the MAC matched), so the challenge,
// which proves the server time with the client's key, is safe to send.
type StaleTimestampError struct {
	ServerTime time.Time
	Timestamp  int64  // the client's ts
	Challenge  string // WWW-Authenticate value (StaleTimestampChallenge)
}

func (e *StaleTimestampError) Error() string {
	return fmt.Sprintf("hawk: stale timestamp %d (server time %d)", e.Timestamp, e.ServerTime.Unix())
}
func (e *StaleTimestampError) Is(target error) bool { return target == ErrStaleTimestamp }

// Options configure a Verifier.
type Options struct {
	// Skew is the largest accepted difference between the header ts and the
	// server clock. Zero means DefaultSkew. Negative disables the timestamp
	// check and with it replay detection, which can only forget a nonce
	// once its ts has left a finite window.
	Skew time.Duration
	// NonceCapacity caps the number of remembered nonces. Zero means
	// DefaultNonceCapacity; negative disables replay detection.
	NonceCapacity int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verifier checks Hawk-signed requests. It is safe for concurrent use; build
// one per process with NewVerifier so all requests share the nonce cache.
// The zero value checks the default window but detects no replays.
type Verifier struct {
	skew   time.Duration
	nonces *nonceCache
	now    func() time.Time
}

// NewVerifier returns a Verifier configured by o.
func NewVerifier(o Options) *Verifier {
	v := &Verifier{skew: o.Skew, now: o.Now}
	if v.skew == 0 {
		v.skew = DefaultSkew
	}
	capacity := o.NonceCapacity
	if capacity == 0 {
		capacity = DefaultNonceCapacity
	}
	if v.skew > 0 && capacity > 0 {
		// Round up: ts is whole seconds but now is not.
		v.nonces = newNonceCache(int64((v.skew+time.Second-1)/time.Second), capacity)
	}
	return v
}

// Payload is a request body offered for hash verification.
type Payload struct {
	ContentType string // the Content-Type header as received
	Body        []byte
}

// Request is what Verify needs to know about an incoming request.
type Request struct {
	Method string
	// RequestTarget is the raw path and query exactly as received
	// (r.RequestURI in net/http), with any path prefix stripped by a proxy
	// put back in front, so it equals what the client signed.
	RequestTarget string
	// Host and Port are the public host and port the client addressed
	// (see SplitHostPort), not necessarily what this process listens on.
	Host, Port string
	// Authorization is the raw Authorization header value.
	Authorization string
	// Payload, if non-nil and the header carries a hash, is checked against
	// it. With nil, a hash still counts in the MAC but the body is not read.
	Payload *Payload
	// LookupKey returns the Hawk key for a token id, typically by parsing
	// it with tokenlib. Callers needing the token payload capture it in the
	// closure. Required.
	LookupKey func(ctx context.Context, id string) (key string, err error)
}

// Verify authenticates r and returns its parsed header. The order of checks
// is fixed: parse, key lookup, MAC, payload hash, timestamp window, nonce.
// The MAC comes before the timestamp so the stale-timestamp challenge is
// only ever given to key holders, and the nonce is recorded last so
// unauthenticated requests cannot fill the cache.
//
// On error the header is still returned if it parsed. Errors match (with
// errors.Is) ErrMalformed, ErrKeyLookup, ErrBadMAC, ErrBadPayloadHash,
// ErrStaleTimestamp or ErrReplayedNonce.
func (v *Verifier) Verify(ctx context.Context, r Request) (Header, error) {
	h, err := ParseHeader(r.Authorization)
	if err != nil {
		return h, err
	}
	if r.LookupKey == nil {
		return h, &KeyLookupError{Err: errors.New("no key lookup configured")}
	}
	key, err := r.LookupKey(ctx, h.ID)
	if err != nil {
		return h, &KeyLookupError{Err: err}
	}
	return h, v.VerifyKey(h, key, r)
}

// VerifyKey runs the checks of Verify that follow the key lookup (MAC,
// payload hash, timestamp window, nonce), in Verify's order, on a header
// parsed with ParseHeader and the key looked up for its ID; r's
// Authorization and LookupKey are not used. It is for callers that look
// the key up themselves: a callback that sets the caller's variables costs
// allocations on every request.
func (v *Verifier) VerifyKey(h Header, key string, r Request) error {
	if !macMatches(key, Artifacts{
		TS: h.TS, Nonce: h.Nonce, Method: r.Method, RequestTarget: r.RequestTarget,
		Host: r.Host, Port: r.Port, Hash: h.Hash, Ext: h.Ext, App: h.App, Dlg: h.Dlg,
	}, h.MAC) {
		return ErrBadMAC
	}
	if h.Hash != "" && r.Payload != nil {
		sum := PayloadHash(r.Payload.ContentType, r.Payload.Body)
		if subtle.ConstantTimeCompare([]byte(sum), []byte(h.Hash)) != 1 {
			return ErrBadPayloadHash
		}
	}
	if v.skew < 0 {
		return nil
	}
	now, skew := time.Now(), v.skew
	if v.now != nil {
		now = v.now()
	}
	if skew == 0 { // zero Verifier: defaults, no nonce cache
		skew = DefaultSkew
	}
	if d := now.Sub(time.Unix(h.Timestamp, 0)); d > skew || d < -skew {
		return &StaleTimestampError{
			ServerTime: now, Timestamp: h.Timestamp,
			Challenge: StaleTimestampChallenge(key, now),
		}
	}
	// Nonces are remembered per credential, keyed by its key rather than
	// the id as written: a lookup that accepts several spellings of one id
	// (case, encoding) must not give a signed request a second life.
	if v.nonces != nil && !v.nonces.fresh(key, h.Timestamp, h.Nonce, now.Unix()) {
		return ErrReplayedNonce
	}
	return nil
}
