// Package vapid implements Voluntary Application Server Identification for
// Web Push (RFC 8292): checking the Authorization header an application server
// sends with a push message, and signing one for weave's own accounts service.
//
// The push service side follows autopush, the service Firefox talks to by
// default, so application servers written against it work unchanged: the
// "vapid t=…, k=…" scheme of RFC 8292 and the older "WebPush <JWT>" (or
// "Bearer <JWT>") with the key in "Crypto-Key: p256ecdsa=…"; ES256 only; aud =
// the push service's origin; exp required, not past and at most 24 h ahead.
// Every rejection is an *Error carrying the HTTP status and errno autopush
// answers with (401/109, or 400/110 for a missing Crypto-Key), so the endpoint
// can render autopush's error body.
//
// JWTs are parsed and verified with go-jose (ES256 only, fixed in the parse
// call so "none" or HMAC-with-the-public-key can never be chosen by the
// sender).
package vapid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// MaxExpiry is how far ahead exp may be (RFC 8292 §2: no more than 24 h).
	MaxExpiry = 24 * time.Hour
	// Leeway forgives clock skew on an expired token, as autopush's JWT library
	// does (60 s); the 24 h limit gets no leeway, as in autopush.
	Leeway = 60 * time.Second
	// maxHeaderSize bounds the header before any parsing or base64 decoding.
	// Real tokens are ~250 bytes, the key 87.
	maxHeaderSize = 4096
)

// Error is a VAPID rejection with the status and errno the push endpoint
// answers with (autopush's values).
type Error struct {
	Status  int    // HTTP status: 401, or 400 for a malformed Crypto-Key
	Errno   int    // autopush errno: 109 (authentication), 110 (encryption headers)
	Message string // the error body's "message"
}

func (e *Error) Error() string { return "vapid: " + e.Message }

func unauthorized(msg string) *Error { return &Error{Status: 401, Errno: 109, Message: msg} }

// The rejections. Returned errors wrap exactly one of them (test with
// errors.Is, or errors.As to read the status and errno).
var (
	ErrUnknownScheme   = unauthorized("Unknown authorization scheme")
	ErrMissingToken    = unauthorized("Missing VAPID token")
	ErrMissingKey      = unauthorized("Missing VAPID public key")
	ErrInvalidKey      = unauthorized("Invalid VAPID public key")
	ErrInvalidToken    = unauthorized("Invalid VAPID token")
	ErrInvalidAudience = unauthorized("Invalid VAPID audience")
	ErrExpired         = unauthorized("VAPID token expired")
	ErrExpiryTooLong   = unauthorized("VAPID token expiration is more than 24 hours ahead")
	ErrSubject         = unauthorized("VAPID sub must be a mailto: or https: URI")
	ErrKeyMismatch     = unauthorized("VAPID public key mismatch")
	// ErrMissingCryptoKey: the old schemes carry the key in Crypto-Key; autopush
	// calls its absence an encryption-header problem (400, errno 110).
	ErrMissingCryptoKey = &Error{Status: 400, Errno: 110, Message: "Missing p256ecdsa in Crypto-Key header"}
)

// Header is a parsed VAPID authorization: the scheme, the JWT, and the
// signer's public key (a 65-byte uncompressed P-256 point), wherever it came
// from.
type Header struct {
	Scheme string // "vapid", "webpush" or "bearer", lower case
	Token  string
	Key    []byte
}

// ParseAuthorization reads the Authorization header and, for the pre-RFC
// schemes, the Crypto-Key header. It checks the form and the key, not the
// token: call Verifier.Verify for that.
//
// Like autopush, the scheme is case-insensitive, blanks inside the
// parameters are ignored, and the key may be standard or URL-safe base64, with
// or without padding (some senders get this wrong and autopush tolerates it).
func ParseAuthorization(authorization, cryptoKey string) (Header, error) {
	if len(authorization) > maxHeaderSize || len(cryptoKey) > maxHeaderSize {
		return Header{}, fmt.Errorf("%w: header too long", ErrInvalidToken)
	}
	scheme, rest, ok := strings.Cut(strings.TrimLeft(authorization, " "), " ")
	scheme = strings.ToLower(scheme)
	if scheme != "vapid" && scheme != "webpush" && scheme != "bearer" {
		return Header{}, ErrUnknownScheme
	}
	rest = strings.ReplaceAll(rest, " ", "")
	if !ok || rest == "" {
		return Header{}, ErrMissingToken
	}
	h := Header{Scheme: scheme}
	var key string
	if scheme == "vapid" {
		for param := range strings.SplitSeq(rest, ",") {
			name, value, _ := strings.Cut(param, "=")
			switch strings.ToLower(name) {
			case "t":
				h.Token = value
			case "k":
				key = value
			}
		}
		if h.Token == "" {
			return Header{}, ErrMissingToken
		}
		if key == "" {
			return Header{}, ErrMissingKey
		}
	} else {
		h.Token = rest
		key = cryptoKeyParam(cryptoKey, "p256ecdsa")
		if key == "" {
			return Header{}, ErrMissingCryptoKey
		}
	}
	k, err := DecodeKey(key)
	if err != nil {
		return Header{}, err
	}
	h.Key = k
	return h, nil
}

// cryptoKeyParam finds name=value in a Crypto-Key header: comma-separated
// sections of semicolon-separated parameters, values optionally quoted.
func cryptoKeyParam(header, name string) string {
	for section := range strings.SplitSeq(header, ",") {
		for param := range strings.SplitSeq(section, ";") {
			k, v, ok := strings.Cut(param, "=")
			if ok && strings.TrimSpace(k) == name {
				return strings.Trim(v, ` "`)
			}
		}
	}
	return ""
}

// DecodeKey decodes a VAPID public key as senders and browsers write it
// (URL-safe or standard base64, padding optional) and checks that it is an
// uncompressed point on P-256. The push service uses it for the key a
// "register" message carries too, so both sides compare the same bytes.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawURLEncoding
	if strings.ContainsAny(s, "+/") {
		enc = base64.RawStdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrInvalidKey)
	}
	if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err != nil {
		return nil, fmt.Errorf("%w: not an uncompressed P-256 point", ErrInvalidKey)
	}
	return b, nil
}

// KeyHash is what a push service may embed in a restricted subscription's
// endpoint instead of the whole key (autopush's v2 endpoints do).
func KeyHash(key []byte) [32]byte { return sha256.Sum256(key) }

// Matches reports, in constant time, whether the header's key is the one a
// restricted subscription was created with (RFC 8292 §4.2); a mismatch is
// answered with ErrKeyMismatch.
func (h Header) Matches(key []byte) bool {
	return subtle.ConstantTimeCompare(h.Key, key) == 1
}

// Claims are the verified claims of a VAPID token.
type Claims struct {
	Audience string
	Expiry   time.Time
	Subject  string // may be empty unless the Verifier requires it
}

// Verifier checks VAPID tokens for one push service.
type Verifier struct {
	// Origin is the push service's endpoint origin, scheme://host[:port]
	// (see Origin); aud must equal it.
	Origin string
	// RequireSubject rejects tokens without a mailto: or https: sub. RFC 8292
	// only says SHOULD and autopush merely logs a missing one, so it is off
	// unless the operator wants contact details from every sender.
	RequireSubject bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Origin returns the RFC 6454 origin of a push endpoint URL, the value a
// sender puts in aud: lower-case scheme and host, default ports dropped.
func Origin(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("vapid: %q is not an http(s) URL", endpoint)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host, nil
	}
	return scheme + "://" + host + ":" + port, nil
}

// vapidClaims are decoded with pointers so a missing claim is told apart
// from a zero one.
type vapidClaims struct {
	Aud *jwt.Audience    `json:"aud"`
	Exp *jwt.NumericDate `json:"exp"`
	Sub *string          `json:"sub"`
}

// Verify checks h's token: an ES256 signature by h.Key, aud equal to the
// Verifier's origin, exp present, not past (with Leeway) and at most 24 h
// ahead, and sub when required.
func (v *Verifier) Verify(h Header) (Claims, error) {
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), h.Key)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: not an uncompressed P-256 point", ErrInvalidKey)
	}
	tok, err := jwt.ParseSigned(h.Token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	var c vapidClaims
	if err := tok.Claims(pub, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Aud == nil || !c.Aud.Contains(v.Origin) {
		return Claims{}, ErrInvalidAudience
	}
	if c.Exp == nil {
		return Claims{}, fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	exp := c.Exp.Time()
	if exp.Before(now.Add(-Leeway)) {
		return Claims{}, ErrExpired
	}
	if exp.After(now.Add(MaxExpiry)) {
		return Claims{}, ErrExpiryTooLong
	}
	out := Claims{Audience: v.Origin, Expiry: exp}
	if c.Sub != nil {
		out.Subject = *c.Sub
	}
	if v.RequireSubject && !validSubject(out.Subject) {
		return Claims{}, ErrSubject
	}
	return out, nil
}

func validSubject(sub string) bool {
	rest, ok := strings.CutPrefix(sub, "mailto:")
	if !ok {
		rest, ok = strings.CutPrefix(sub, "https://")
	}
	return ok && rest != ""
}

// Signer signs VAPID headers for an application server (weave's accounts
// service when it pushes to devices). Its key must not be one used for
// message encryption (RFC 8292 §3.2); ece makes a fresh one per message.
type Signer struct {
	key     *ecdsa.PrivateKey
	subject string
	signer  jose.Signer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewSigner returns a Signer for key, putting subject (a mailto: or https:
// contact) in every token.
func NewSigner(key *ecdsa.PrivateKey, subject string) (*Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("vapid: the signing key must be a P-256 key")
	}
	if !validSubject(subject) {
		return nil, fmt.Errorf("vapid: subject %q is not a mailto: or https: URI", subject)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, subject: subject, signer: s}, nil
}

// PublicKey is the signer's key as it goes in k= and in a restricted
// subscription's applicationServerKey: base64url of the uncompressed point.
func (s *Signer) PublicKey() string {
	b, _ := s.key.PublicKey.Bytes() // cannot fail for a P-256 key
	return base64.RawURLEncoding.EncodeToString(b)
}

// Authorization returns the Authorization header value for a push to
// endpoint: "vapid t=<JWT>, k=<key>", the token valid for ttl (at most
// MaxExpiry; 12 h is customary and leaves room for clock skew).
func (s *Signer) Authorization(endpoint string, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > MaxExpiry {
		return "", fmt.Errorf("vapid: token lifetime %v is outside (0, %v]", ttl, MaxExpiry)
	}
	aud, err := Origin(endpoint)
	if err != nil {
		return "", err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	claims := struct {
		Aud string           `json:"aud"`
		Exp *jwt.NumericDate `json:"exp"`
		Sub string           `json:"sub"`
	}{aud, jwt.NewNumericDate(now.Add(ttl)), s.subject}
	tok, err := jwt.Signed(s.signer).Claims(claims).Serialize()
	if err != nil {
		return "", err
	}
	return "vapid t=" + tok + ", k=" + s.PublicKey(), nil
}

// ParsePrivateKey reads a VAPID private key in the form VAPID tools print it:
// base64url of the 32-byte scalar.
func ParsePrivateKey(s string) (*ecdsa.PrivateKey, error) {
	d, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("vapid: private key is not base64url: %w", err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return nil, fmt.Errorf("vapid: private key: %w", err)
	}
	return k, nil
}

// EncodePrivateKey is the inverse of ParsePrivateKey, for writing a key file
// (mode 0600: it is a secret).
func EncodePrivateKey(k *ecdsa.PrivateKey) (string, error) {
	d, err := k.Bytes()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(d), nil
}
