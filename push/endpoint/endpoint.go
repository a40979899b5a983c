// Package endpoint mints and reads the tokens in weave's push endpoint URLs
// (<public URL>/wpush/v1/<token>, or v2 for subscriptions restricted to one
// VAPID key).
//
// An endpoint must be unguessable, stable for its subscription, short (FxA
// stores pushCallback in at most 255 characters) and must not reveal the
// UAID, which would let application servers link one browser's
// subscriptions. Like autopush (which uses Fernet for this), the token is the
// encryption of UAID ‖ channel ID (‖ SHA-256 of the VAPID key for v2) under a
// server secret, so the endpoint finds the subscription without a lookup
// table and any token it did not mint fails authentication. AES-256-GCM with a
// random nonce is used; several keys may be configured so a secret can be
// rotated: the first mints, all are tried when reading.
package endpoint

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of each secret.
const KeySize = 32

// ErrInvalid: the token is not one this service minted (or its key was
// retired). The endpoint answers 404 errno 102, as autopush does.
var ErrInvalid = errors.New("endpoint: invalid push endpoint token")

// Subscription is what a token names.
type Subscription struct {
	UAID      string // 32 lower-case hex digits (push.IsUAID)
	ChannelID string // a UUID, written lower-case and dashed
	// KeyHash is SHA-256 of the VAPID public key the subscription is
	// restricted to, or nil for an unrestricted (v1) subscription.
	KeyHash []byte
}

// Restricted reports whether sends must carry VAPID with the key whose hash
// is KeyHash.
func (s Subscription) Restricted() bool { return s.KeyHash != nil }

// Codec mints and reads tokens.
type Codec struct {
	aeads []cipher.AEAD
}

// NewCodec returns a Codec minting with keys[0] and reading with any key.
func NewCodec(keys ...[]byte) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("endpoint: no key")
	}
	c := &Codec{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("endpoint: key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads = append(c.aeads, aead)
	}
	return c, nil
}

// Versions: the path segment before the token. The version is also bound
// into the token (as associated data) so a v2 token cannot be replayed as v1
// to shed its key restriction.
const (
	V1 = "v1"
	V2 = "v2"
)

// Path returns "v1/<token>" or "v2/<token>" for sub, to be appended to the
// service's /wpush/ URL. Each call mints a different token for the same
// subscription; all of them stay valid while the key does.
func (c *Codec) Path(sub Subscription) (string, error) {
	uaid, err := hex.DecodeString(sub.UAID)
	if err != nil || len(uaid) != 16 || strings.ToLower(sub.UAID) != sub.UAID {
		return "", fmt.Errorf("endpoint: UAID %q is not 32 lower-case hex digits", sub.UAID)
	}
	chid, err := parseUUID(sub.ChannelID)
	if err != nil {
		return "", err
	}
	version := V1
	plain := append(uaid, chid...)
	if sub.KeyHash != nil {
		if len(sub.KeyHash) != sha256.Size {
			return "", fmt.Errorf("endpoint: key hash of %d bytes", len(sub.KeyHash))
		}
		version = V2
		plain = append(plain, sub.KeyHash...)
	}
	aead := c.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(version))
	return version + "/" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Parse reads the token of a /wpush/<version>/<token> request. Any failure
// is ErrInvalid: the caller cannot and need not tell a forged token from a
// retired key or a wrong version.
func (c *Codec) Parse(version, token string) (Subscription, error) {
	var want int
	switch version {
	case V1:
		want = 32
	case V2:
		want = 32 + sha256.Size
	default:
		return Subscription{}, ErrInvalid
	}
	// Bound the work before decoding: a token is at most this long.
	overhead := c.aeads[0].NonceSize() + c.aeads[0].Overhead()
	if len(token) != base64.RawURLEncoding.EncodedLen(overhead+want) {
		return Subscription{}, ErrInvalid
	}
	sealed, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Subscription{}, ErrInvalid
	}
	for _, aead := range c.aeads {
		ns := aead.NonceSize()
		plain, err := aead.Open(nil, sealed[:ns], sealed[ns:], []byte(version))
		if err != nil {
			continue
		}
		s := Subscription{UAID: hex.EncodeToString(plain[:16]), ChannelID: formatUUID(plain[16:32])}
		if version == V2 {
			s.KeyHash = plain[32:]
		}
		return s, nil
	}
	return Subscription{}, ErrInvalid
}

// parseUUID accepts a UUID in the 8-4-4-4-12 form, any case.
func parseUUID(s string) ([]byte, error) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, fmt.Errorf("endpoint: channel ID %q is not a UUID", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return nil, fmt.Errorf("endpoint: channel ID %q is not a UUID", s)
	}
	return b, nil
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
