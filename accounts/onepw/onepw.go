// Package onepw holds the key derivations of Firefox Accounts' "onepw"
// protocol, shared by weave's accounts server and its Go client (and
// mirrored later by the sign-in pages in WebCrypto):
//
//	quickStretchedPW = PBKDF2-SHA256(password, "…/quickStretch:"+email, 1000, 32)
//	authPW           = HKDF-SHA256(quickStretchedPW, info "…/authPW")       (sent to the server)
//	unwrapBKey       = HKDF-SHA256(quickStretchedPW, info "…/unwrapBkey")   (never leaves the client)
//	kB               = wrapKb XOR unwrapBKey
//
// Server side, authPW is stretched again with scrypt under a per-account
// salt; verifyHash (what is stored and compared) and wrapWrapKey (which
// hides wrapKb at rest) are HKDF outputs of that. Tokens (sessionToken,
// keyFetchToken, …) are 32 random bytes from which HKDF derives the Hawk id,
// the Hawk key and, for keyFetchToken, the key that seals the account/keys
// bundle. Every HKDF here has an empty salt and "identity.mozilla.com/picl/v1/"
// prefixed info, as the protocol specifies.
package onepw

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"

	"golang.org/x/crypto/scrypt"
)

// KeyLen is the length of every key and token in the protocol.
const KeyLen = 32

// Prefix starts every "key word" (HKDF info / PBKDF2 salt) of the protocol.
const Prefix = "identity.mozilla.com/picl/v1/"

// OldSyncScope is the scope whose scoped key is kSync.
const OldSyncScope = "https://identity.mozilla.com/apps/oldsync"

// QuickStretchRounds is the PBKDF2 iteration count of the client stretch.
const QuickStretchRounds = 1000

// HKDF derives n bytes from ikm with an empty salt and the given info.
func HKDF(ikm []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, ikm, nil, info, n)
	if err != nil {
		panic(err) // only for n > 255*32, never used here
	}
	return out
}

// KW returns the key word "identity.mozilla.com/picl/v1/<name>".
func KW(name string) string { return Prefix + name }

// Credentials are what the client derives from email and password.
type Credentials struct {
	QuickStretchedPW []byte
	AuthPW           []byte
	UnwrapBKey       []byte
}

// Stretch derives the client credentials. email is used exactly as the
// user typed it at sign-up (the server tells the client the stored spelling
// with errno 120 when a sign-in differs in case).
func Stretch(email, password string) Credentials {
	qs, err := pbkdf2.Key(sha256.New, password, []byte(KW("quickStretch:")+email), QuickStretchRounds, KeyLen)
	if err != nil {
		panic(err)
	}
	return Credentials{
		QuickStretchedPW: qs,
		AuthPW:           HKDF(qs, KW("authPW"), KeyLen),
		UnwrapBKey:       HKDF(qs, KW("unwrapBkey"), KeyLen),
	}
}

// ScryptParams are the server-side stretch parameters, stored per account
// so they can be raised later without locking anyone out.
type ScryptParams struct{ N, R, P int }

// DefaultScrypt is FxA's server stretch: N=2^16, r=8, p=1 (64 MiB, about
// 0.1–0.3 s per password check).
var DefaultScrypt = ScryptParams{N: 1 << 16, R: 8, P: 1}

// ServerKeys are derived by the server from authPW and the account's salt.
type ServerKeys struct {
	VerifyHash  []byte // stored; compared on login
	WrapWrapKey []byte // wrapWrapKb = wrapKb XOR WrapWrapKey
}

// ServerStretch runs scrypt over authPW and derives verifyHash and
// wrapWrapKey from the result.
func ServerStretch(authPW, authSalt []byte, p ScryptParams) (ServerKeys, error) {
	big, err := scrypt.Key(authPW, authSalt, p.N, p.R, p.P, KeyLen)
	if err != nil {
		return ServerKeys{}, err
	}
	return ServerKeys{
		VerifyHash:  HKDF(big, KW("verifyHash"), KeyLen),
		WrapWrapKey: HKDF(big, KW("wrapwrapKey"), KeyLen),
	}, nil
}

// TokenKeys are the values derived from a token's 32 random bytes.
type TokenKeys struct {
	ID      []byte // Hawk id (hex-encoded on the wire); the server's lookup key
	HMACKey []byte // Hawk key
	Extra   []byte // keyFetchToken: keyRequestKey; unused for others
}

// DeriveToken derives the Hawk credentials of a token; name is
// "sessionToken", "keyFetchToken", "passwordChangeToken", …
func DeriveToken(token []byte, name string) TokenKeys {
	b := HKDF(token, KW(name), 3*KeyLen)
	return TokenKeys{ID: b[:32], HMACKey: b[32:64], Extra: b[64:]}
}

// ErrBadBundle is returned when a bundle's MAC does not verify.
var ErrBadBundle = errors.New("onepw: bundle MAC mismatch")

func bundleKeys(key []byte, name string, n int) (hmacKey, xorKey []byte) {
	b := HKDF(key, KW(name), KeyLen+n)
	return b[:KeyLen], b[KeyLen:]
}

// SealBundle encrypts plaintext (kA‖wrapKb for "account/keys") under a
// request key: ciphertext = plaintext XOR HKDF stream, followed by
// HMAC-SHA256(ciphertext).
func SealBundle(key []byte, name string, plaintext []byte) []byte {
	hk, xk := bundleKeys(key, name, len(plaintext))
	out := make([]byte, len(plaintext), len(plaintext)+sha256.Size)
	for i := range plaintext {
		out[i] = plaintext[i] ^ xk[i]
	}
	m := hmac.New(sha256.New, hk)
	m.Write(out)
	return m.Sum(out)
}

// OpenBundle reverses SealBundle, checking the MAC first.
func OpenBundle(key []byte, name string, bundle []byte) ([]byte, error) {
	if len(bundle) < sha256.Size {
		return nil, ErrBadBundle
	}
	ct, mac := bundle[:len(bundle)-sha256.Size], bundle[len(bundle)-sha256.Size:]
	hk, xk := bundleKeys(key, name, len(ct))
	m := hmac.New(sha256.New, hk)
	m.Write(ct)
	if !hmac.Equal(m.Sum(nil), mac) {
		return nil, ErrBadBundle
	}
	pt := make([]byte, len(ct))
	for i := range ct {
		pt[i] = ct[i] ^ xk[i]
	}
	return pt, nil
}

// XOR returns a XOR b (equal lengths).
func XOR(a, b []byte) []byte {
	if len(a) != len(b) {
		panic("onepw: XOR of unequal lengths")
	}
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// KSync is the oldsync scoped key: 64 bytes, the first half the AES key and
// the second the HMAC key of the sync key bundle.
func KSync(kB []byte) []byte { return HKDF(kB, KW("oldsync"), 64) }

// KXCS is the key fingerprint the token server calls client state.
func KXCS(kB []byte) []byte {
	s := sha256.Sum256(kB)
	return s[:16]
}

// KeyID is the X-KeyID header / scoped-key kid for oldsync:
// "<keyRotationTimestamp>-<base64url(kXCS)>".
func KeyID(keysChangedAt int64, kB []byte) string {
	return strconv.FormatInt(keysChangedAt, 10) + "-" + base64.RawURLEncoding.EncodeToString(KXCS(kB))
}
