package fxa

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// minRSABits rejects keys too weak to trust; FxA signs with 2048-bit keys.
const minRSABits = 2048

// KeySet is an immutable set of trusted RS256 public keys.
type KeySet struct {
	keys []publicKey
}

type publicKey struct {
	kid string // may be empty: such a key is tried for every token
	pub *rsa.PublicKey
}

// Len reports the number of usable keys.
func (ks *KeySet) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.keys)
}

// jwk holds the JWK members we use; FxA adds others (e.g. fxa-createdAt).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// ParseJWKS parses a JWKS document ({"keys":[…]}). Keys that are not for
// RS256 signatures (other kty, use or alg) are skipped, since FxA may publish
// them alongside; an RSA signing key that is malformed or shorter than 2048
// bits is an error, as is a document with no usable key.
func ParseJWKS(doc []byte) (*KeySet, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("fxa: JWKS: %w", err)
	}
	ks := &KeySet{}
	for i, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		pub, err := rsaKey(k.N, k.E)
		if err != nil {
			return nil, fmt.Errorf("fxa: JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		ks.keys = append(ks.keys, publicKey{kid: k.Kid, pub: pub})
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("fxa: JWKS has no RS256 signing key")
	}
	return ks, nil
}

// LoadJWKSFile reads and parses a JWKS file, for deployments that pin FxA's
// keys in configuration instead of fetching them.
func LoadJWKSFile(path string) (*KeySet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseJWKS(b)
}

func rsaKey(n64, e64 string) (*rsa.PublicKey, error) {
	// RFC 7518 says unpadded, but tolerating padding costs nothing.
	n, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n64, "="))
	if err != nil || len(n) == 0 {
		return nil, errors.New("bad modulus")
	}
	e, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e64, "="))
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("bad exponent")
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("bad exponent")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits is too short", pub.N.BitLen())
	}
	return pub, nil
}

// candidates returns the keys to try for a token header kid: those with that
// kid plus keys without one; with no kid, all keys. It reports whether the
// kid was known, which decides whether fetching new keys could help.
func (ks *KeySet) candidates(kid string) ([]publicKey, bool) {
	if ks == nil {
		return nil, false
	}
	if kid == "" {
		return ks.keys, true
	}
	var out []publicKey
	known := false
	for _, k := range ks.keys {
		if k.kid == kid {
			known = true
			out = append(out, k)
		} else if k.kid == "" {
			out = append(out, k)
		}
	}
	return out, known
}
