package accounts

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
)

// The scoped-keys JWE of FxA's OAuth flow: the sign-in page encrypts the
// scoped key bundle to the ephemeral P-256 key the relier (Firefox) put in
// keys_jwk, and the server hands the JWE back with the token unread. Only
// the subset Firefox's jwcrypto speaks is implemented: compact
// serialisation, alg "ECDH-ES" (direct key agreement, no encrypted key),
// enc "A256GCM", no apu/apv. The Go side exists for tests and Go clients;
// the server itself only checks the JWE's shape.

// JWK is the public half of a P-256 key as keys_jwk carries it.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
}

// ErrBadJWE covers every malformed, unsupported or unauthentic JWE.
var ErrBadJWE = errors.New("accounts: bad JWE")

// PublicJWK returns pub (a P-256 key) as a JWK.
func PublicJWK(pub *ecdh.PublicKey) JWK {
	b := pub.Bytes() // 0x04 ‖ x ‖ y
	return JWK{Kty: "EC", Crv: "P-256", X: b64(b[1:33]), Y: b64(b[33:65])}
}

// ParseJWK checks a P-256 public JWK and returns its key; points off the
// curve are refused by crypto/ecdh.
func ParseJWK(j JWK) (*ecdh.PublicKey, error) {
	if j.Kty != "EC" || j.Crv != "P-256" {
		return nil, ErrBadJWE
	}
	x, err1 := base64.RawURLEncoding.DecodeString(j.X)
	y, err2 := base64.RawURLEncoding.DecodeString(j.Y)
	if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		return nil, ErrBadJWE
	}
	pub, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, ErrBadJWE
	}
	return pub, nil
}

type jweHeader struct {
	Alg string          `json:"alg"`
	Enc string          `json:"enc"`
	Epk JWK             `json:"epk"`
	Kid string          `json:"kid,omitempty"`
	Apu json.RawMessage `json:"apu,omitempty"`
	Apv json.RawMessage `json:"apv,omitempty"`
}

// concatKDF is NIST SP 800-56A's single-step KDF as JWA (RFC 7518 §4.6.2)
// uses it with SHA-256: one hash round is enough for keys up to 256 bits.
func concatKDF(z []byte, alg string, apu, apv []byte, keyBits int) []byte {
	h := sha256.New()
	var n [4]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	field([]byte(alg))
	field(apu)
	field(apv)
	binary.BigEndian.PutUint32(n[:], uint32(keyBits))
	h.Write(n[:])
	return h.Sum(nil)[:keyBits/8]
}

// EncryptJWE encrypts plaintext to peer as a compact ECDH-ES/A256GCM JWE,
// the way the sign-in page builds keys_jwe.
func EncryptJWE(peer *ecdh.PublicKey, plaintext []byte) (string, error) {
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	z, err := eph.ECDH(peer)
	if err != nil {
		return "", ErrBadJWE
	}
	hdr, _ := json.Marshal(jweHeader{Alg: "ECDH-ES", Enc: "A256GCM", Epk: PublicJWK(eph.PublicKey())})
	h := b64(hdr)
	gcm, _ := newGCM(concatKDF(z, "A256GCM", nil, nil, 256))
	iv := randomBytes(12)
	sealed := gcm.Seal(nil, iv, plaintext, []byte(h))
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	return h + ".." + b64(iv) + "." + b64(ct) + "." + b64(tag), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// DecryptJWE reverses EncryptJWE with the relier's private key, refusing
// anything Firefox's jwcrypto would refuse.
func DecryptJWE(jwe string, priv *ecdh.PrivateKey) ([]byte, error) {
	parts := strings.Split(jwe, ".")
	if len(parts) != 5 || parts[1] != "" {
		return nil, ErrBadJWE
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil
		}
		return b
	}
	hb, iv, ct, tag := dec(parts[0]), dec(parts[2]), dec(parts[3]), dec(parts[4])
	var h jweHeader
	if hb == nil || len(iv) != 12 || ct == nil || len(tag) != 16 || json.Unmarshal(hb, &h) != nil ||
		h.Alg != "ECDH-ES" || h.Enc != "A256GCM" || h.Apu != nil || h.Apv != nil {
		return nil, ErrBadJWE
	}
	epk, err := ParseJWK(h.Epk)
	if err != nil {
		return nil, err
	}
	z, err := priv.ECDH(epk)
	if err != nil {
		return nil, ErrBadJWE
	}
	gcm, _ := newGCM(concatKDF(z, "A256GCM", nil, nil, 256))
	pt, err := gcm.Open(nil, iv, append(ct, tag...), []byte(parts[0]))
	if err != nil {
		return nil, ErrBadJWE
	}
	return pt, nil
}

// validJWE is FxA's syntactic check of keys_jwe (auth-server validators):
// at most 1024 characters, five base64url parts, the second (the
// encrypted key, unused by ECDH-ES) possibly empty.
func validJWE(s string) bool {
	if len(s) > 1024 {
		return false
	}
	parts := strings.Split(s, ".")
	if len(parts) != 5 {
		return false
	}
	for i, p := range parts {
		if (p == "" && i != 1) || !isB64URL(p) {
			return false
		}
	}
	return true
}

// ScopedKey is one entry of the scoped-keys bundle a keys_jwe carries.
type ScopedKey struct {
	Kid   string `json:"kid"`
	K     string `json:"k"`
	Kty   string `json:"kty"`
	Scope string `json:"scope"`
}
