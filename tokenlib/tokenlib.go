// Package tokenlib signs and parses the Hawk credentials the token server
// hands out, byte-compatible with Mozilla's tokenlib v2 (tokenserver-1.0.md §8).
//
// A token ("id") is base64url_padded(payload JSON || HMAC-SHA256(sig_key, payload)),
// and its per-token Hawk key is derived from the node secret, the payload salt
// and the id itself, so a storage node can recompute the key from the id alone.
package tokenlib

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// HKDF info strings fixed by tokenlib and mozsvc; changing any byte breaks
// interoperability with every deployed token.
const (
	signingInfo    = "services.mozilla.com/tokenlib/v1/signing"
	deriveInfo     = "services.mozilla.com/tokenlib/v1/derive/"
	nodeSecretInfo = "services.mozilla.com/mozsvc/v1/node_secret/"
)

// sigSize is the length of the trailing HMAC-SHA256 signature.
const sigSize = sha256.Size

// MaxTokenLength bounds the id accepted by Parse. Real tokens are a few
// hundred bytes; the cap keeps a hostile header from costing more than that.
const MaxTokenLength = 4096

// Errors returned by Parse. They are distinct so the HTTP layer can log them
// differently, but all of them mean 401 to the client.
var (
	// ErrMalformed: not valid padded base64url, too short, or the signed
	// payload is not a usable JSON object.
	ErrMalformed = errors.New("tokenlib: malformed token")
	// ErrInvalidSignature: no configured secret produced the signature.
	ErrInvalidSignature = errors.New("tokenlib: invalid token signature")
	// ErrExpired: the signature is valid but expires <= now. Parse still
	// returns the payload and key with this error.
	ErrExpired = errors.New("tokenlib: token expired")
)

// Payload is the signed content of a token (tokenserver-1.0.md §8.1).
// Only UID, Node and Expires are required when parsing; unknown fields are
// ignored. Optional strings are omitted when empty because storage nodes
// validate present values against a non-empty pattern but tolerate absence.
type Payload struct {
	UID               int64  `json:"uid"`
	Node              string `json:"node"`
	Expires           int64  `json:"expires"` // Unix seconds
	FxAUID            string `json:"fxa_uid,omitempty"`
	FxAKid            string `json:"fxa_kid,omitempty"`
	HashedFxAUID      string `json:"hashed_fxa_uid,omitempty"`
	HashedDeviceID    string `json:"hashed_device_id,omitempty"`
	Salt              string `json:"salt"`
	TokenserverOrigin string `json:"tokenserver_origin,omitempty"`
}

// wirePayload mirrors Payload for decoding: pointers detect missing required
// fields, and numbers stay raw so Python's float spelling of expires can be
// accepted (json.Number would also accept quoted strings, which we do not).
type wirePayload struct {
	UID               *json.RawMessage `json:"uid"`
	Node              *string          `json:"node"`
	Expires           *json.RawMessage `json:"expires"`
	FxAUID            string           `json:"fxa_uid"`
	FxAKid            string           `json:"fxa_kid"`
	HashedFxAUID      string           `json:"hashed_fxa_uid"`
	HashedDeviceID    string           `json:"hashed_device_id"`
	Salt              string           `json:"salt"`
	TokenserverOrigin string           `json:"tokenserver_origin"`
}

// UnmarshalJSON decodes a payload leniently: unknown and optional fields may
// be absent, expires may be written as a float (old Python servers did), but
// uid, node and expires must be present and uid must be a non-negative integer.
func (p *Payload) UnmarshalJSON(b []byte) error {
	var w wirePayload
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	return w.payload(p)
}

func (w *wirePayload) payload(p *Payload) error {
	if w.UID == nil || w.Node == nil || w.Expires == nil {
		return errors.New("missing uid, node or expires")
	}
	uid, err := strconv.ParseInt(string(*w.UID), 10, 64)
	if err != nil || uid < 0 {
		return fmt.Errorf("bad uid %q", string(*w.UID))
	}
	exp, err := parseSeconds(*w.Expires)
	if err != nil {
		return err
	}
	*p = Payload{
		UID: uid, Node: *w.Node, Expires: exp,
		FxAUID: w.FxAUID, FxAKid: w.FxAKid,
		HashedFxAUID: w.HashedFxAUID, HashedDeviceID: w.HashedDeviceID,
		Salt: w.Salt, TokenserverOrigin: w.TokenserverOrigin,
	}
	return nil
}

// parseSeconds accepts a JSON integer or float; the fraction is dropped since
// expiry is compared at whole-second resolution. Anything that is not a JSON
// number (strings, objects) fails both parses.
func parseSeconds(n json.RawMessage) (int64, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	// The bounds are the nearest float64s inside the int64 range.
	if err != nil || f < -9.2e18 || f > 9.2e18 {
		return 0, fmt.Errorf("bad expires %q", string(n))
	}
	return int64(math.Floor(f)), nil
}

// Sign serialises p, signs it with secret and returns the token id and its
// derived Hawk key. A missing salt is filled with 3 random bytes (hex), as
// tokenlib does, so every token gets a distinct key.
func Sign(secret string, p Payload) (id, key string, err error) {
	if p.Salt == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", "", err
		}
		p.Salt = hex.EncodeToString(b[:])
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return "", "", err
	}
	id = SignBytes(secret, payload)
	return id, DeriveKey(secret, id, p.Salt), nil
}

// SignBytes signs exact payload bytes and returns the token id. The signature
// covers bytes, not JSON semantics, so reproducing a token made by another
// implementation needs this rather than Sign. The payload is not validated.
func SignBytes(secret string, payloadJSON []byte) (id string) {
	buf := make([]byte, 0, len(payloadJSON)+sigSize)
	buf = append(buf, payloadJSON...)
	buf = appendMAC(buf, signingKey(secret), payloadJSON)
	return base64.URLEncoding.EncodeToString(buf)
}

// Parse verifies id against each secret in turn (several are configured
// during secret rotation) and decodes its payload. It returns the payload and
// the Hawk key derived with the secret that matched. It is NewKeyring(secrets).Parse;
// keep a Keyring to avoid re-deriving the signing keys for every token.
//
// Expired tokens: when the signature is valid and the payload decodes but
// expires <= now, Parse returns the payload AND the key together with
// ErrExpired. Callers that must reject expired tokens just treat any error
// as failure; the one caller that tolerates recently expired tokens (GET
// info/collections) checks errors.Is(err, ErrExpired) and uses the values.
// For every other error the payload and key are zero.
func Parse(secrets []string, id string, now time.Time) (Payload, string, error) {
	return NewKeyring(secrets).Parse(id, now)
}

// Keyring is a list of node secrets with their signing keys derived once.
// It is immutable and safe for concurrent use.
type Keyring struct {
	secrets []string
	sigKeys [][]byte
}

// NewKeyring prepares secrets for Parse. Order does not matter for parsing;
// by convention the last one is the newest, the one the token server signs with.
func NewKeyring(secrets []string) *Keyring {
	k := &Keyring{secrets: append([]string(nil), secrets...)}
	for _, s := range secrets {
		k.sigKeys = append(k.sigKeys, signingKey(s))
	}
	return k
}

// Parse is the package-level Parse with the prepared secrets; see there for
// the handling of expired tokens.
func (k *Keyring) Parse(id string, now time.Time) (Payload, string, error) {
	raw, err := decodeID(id)
	if err != nil {
		return Payload{}, "", err
	}
	payload, sig := raw[:len(raw)-sigSize], raw[len(raw)-sigSize:]
	secret, ok := "", false
	var mac [sigSize]byte
	for i, sk := range k.sigKeys {
		// Try every secret without stopping early: the time taken should not
		// reveal which of the configured secrets signed the token.
		if hmac.Equal(appendMAC(mac[:0], sk, payload), sig) && !ok {
			secret, ok = k.secrets[i], true
		}
	}
	if !ok {
		return Payload{}, "", ErrInvalidSignature
	}
	var w wirePayload
	var p Payload
	if err := json.Unmarshal(payload, &w); err != nil {
		return Payload{}, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := w.payload(&p); err != nil {
		return Payload{}, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	key := DeriveKey(secret, id, p.Salt)
	if p.Expires <= now.Unix() {
		return p, key, ErrExpired
	}
	return p, key, nil
}

// decodeID checks the alphabet before decoding because Go's base64 decoder
// silently skips CR/LF, which would let two different id strings map to the
// same signed bytes.
func decodeID(id string) ([]byte, error) {
	if len(id) > MaxTokenLength {
		return nil, fmt.Errorf("%w: too long", ErrMalformed)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
			return nil, fmt.Errorf("%w: bad character", ErrMalformed)
		}
	}
	raw, err := base64.URLEncoding.DecodeString(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(raw) <= sigSize {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	return raw, nil
}

// DeriveKey returns the Hawk key for token id: base64url_padded(HKDF(secret,
// salt, "…/derive/"+id, 32)). The result is used as ASCII text by Hawk.
func DeriveKey(secret, id, salt string) string {
	k := hkdfSHA256([]byte(secret), []byte(salt), deriveInfo+id, 32)
	return base64.URLEncoding.EncodeToString(k)
}

// DerivedNodeSecret computes a per-node secret the way mozsvc DerivedSecrets
// does: hex(HKDF(master, nil, "…/node_secret/"+nodeURL, len(master)/2)), so
// the result has the master's length. The master is used as text, not
// hex-decoded. It fails if the master is shorter than 2 or longer than HKDF
// can expand to (16320 characters).
func DerivedNodeSecret(master, nodeURL string) (string, error) {
	n := len(master) / 2
	if n == 0 || n > 255*sha256.Size {
		return "", fmt.Errorf("tokenlib: master secret length %d out of range", len(master))
	}
	return hex.EncodeToString(hkdfSHA256([]byte(master), nil, nodeSecretInfo+nodeURL, n)), nil
}

// HashedFxAUID is the telemetry id of an account (§8.4): the first 32 hex
// digits of HMAC-SHA256(metricsSecret, fxaUID).
func HashedFxAUID(metricsSecret, fxaUID string) string {
	return hmacHex32(metricsSecret, fxaUID)
}

// HashedDeviceID is the telemetry id of a device (§8.4). OAuth clients carry
// no device id, so the token server passes "none".
func HashedDeviceID(metricsSecret, hashedFxaUID, deviceID string) string {
	return hmacHex32(metricsSecret, hashedFxaUID+deviceID)
}

func hmacHex32(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// FxAKid formats the fxa_kid payload field: the 13-digit zero-padded
// keys_changed_at (or generation), "-", and the unpadded base64url of the raw
// client-state bytes. It fails if clientStateHex is not hex.
func FxAKid(keysChangedAt int64, clientStateHex string) (string, error) {
	raw, err := hex.DecodeString(clientStateHex)
	if err != nil {
		return "", fmt.Errorf("tokenlib: client state %q: %w", clientStateHex, err)
	}
	return fmt.Sprintf("%013d-%s", keysChangedAt, base64.RawURLEncoding.EncodeToString(raw)), nil
}

// signingKey is the HMAC key that signs payloads under secret.
func signingKey(secret string) []byte {
	return hkdfSHA256([]byte(secret), nil, signingInfo, 32)
}

func appendMAC(dst, key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(dst)
}

// hkdfSHA256 is RFC 5869 HKDF. It is written out rather than taken from
// crypto/hkdf because that package refuses short secrets in FIPS-only mode,
// and deployed node secrets may be short; length is checked by callers.
func hkdfSHA256(secret, salt []byte, info string, length int) []byte {
	if salt == nil {
		salt = make([]byte, sha256.Size) // RFC 5869: absent salt = HashLen zeros
	}
	prk := appendMAC(nil, salt, secret)
	out := make([]byte, 0, length+sha256.Size)
	var t []byte
	for i := byte(1); len(out) < length; i++ {
		m := hmac.New(sha256.New, prk)
		m.Write(t)
		m.Write([]byte(info))
		m.Write([]byte{i})
		t = m.Sum(nil)
		out = append(out, t...)
	}
	return out[:length]
}
