// Package issuer mints access tokens as Firefox Accounts' OAuth server
// does: RS256 JWTs (typ at+jwt) with a key published as a JWKS. The load
// generator and the built-in accounts (package accounts) sign their tokens
// with it; tests use it with the fake FxA server of package fxatest.
//
//	iss := issuer.New()
//	srv := fxatest.Serve(iss) // or pin the keys: fxa.ParseJWKS(iss.JWKS())
//	defer srv.Close()
//	v, _ := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL})
//	tok := iss.Mint(issuer.Token{Sub: "0123456789abcdef0123456789abcdef", Generation: 1700000000000})
package issuer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// OldSyncScope is the scope Sync requires; Mint grants it by default.
const OldSyncScope = "https://identity.mozilla.com/apps/oldsync"

// DefaultClientID is Firefox desktop's OAuth client id, used when a Token
// has none.
const DefaultClientID = "5882386c6d801776"

// Issuer holds one RSA signing key, as FxA's OAuth server does.
type Issuer struct {
	key *rsa.PrivateKey
	kid string
}

// New generates a fresh 2048-bit key (tens of milliseconds). It
// panics only if the system random source fails, which Go treats as fatal
// anyway.
func New() *Issuer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("issuer: generating RSA key: " + err.Error())
	}
	return newIssuer(k)
}

// FromPEM loads an issuer from a PKCS#8 or PKCS#1 PEM private key
// (as written by PrivateKeyPEM), so a key can persist across runs.
func FromPEM(data []byte) (*Issuer, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("issuer: no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return newIssuer(k), nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("issuer: not an RSA key")
	}
	return newIssuer(rk), nil
}

func newIssuer(k *rsa.PrivateKey) *Issuer {
	// The kid is derived from the public key so it is stable for a loaded key.
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(&k.PublicKey))
	return &Issuer{key: k, kid: hex.EncodeToString(sum[:8])}
}

// WithKID returns an issuer of the same key under another key id, for a
// key whose id was chosen when it was stored.
func (i *Issuer) WithKID(kid string) *Issuer { return &Issuer{key: i.key, kid: kid} }

// KID is the key id put in minted token headers and in the JWK.
func (i *Issuer) KID() string { return i.kid }

// PublicKey returns the verification key.
func (i *Issuer) PublicKey() *rsa.PublicKey { return &i.key.PublicKey }

// PrivateKeyPEM returns the key as PKCS#8 PEM ("PRIVATE KEY").
func (i *Issuer) PrivateKeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(i.key)
	if err != nil {
		panic("issuer: " + err.Error()) // cannot happen for an RSA key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// JWK returns the public key as a JWK object, shaped like FxA's.
func (i *Issuer) JWK() map[string]any {
	return map[string]any{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": i.kid,
		"n": base64.RawURLEncoding.EncodeToString(i.key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(i.key.E)).Bytes()),
	}
}

// JWKS returns a JWKS document with just this issuer's key.
func (i *Issuer) JWKS() []byte { return JWKS(i) }

// JWKS returns a JWKS document with the keys of all given issuers, e.g. the
// old and new key during a rotation.
func JWKS(issuers ...*Issuer) []byte {
	keys := make([]map[string]any, 0, len(issuers))
	for _, i := range issuers {
		keys = append(keys, i.JWK())
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// Token describes the claims of an access token to mint. Zero fields get
// working defaults, so Token{Sub: uid} yields a valid Sync token.
type Token struct {
	Sub              string    // FxA uid; empty: 32 random hex digits
	Scope            string    // space-separated; empty: OldSyncScope
	ClientID         string    // empty: DefaultClientID
	Generation       int64     // fxa-generation (ms); 0: omitted
	ProfileChangedAt int64     // fxa-profileChangedAt; 0: omitted
	IssuedAt         time.Time // iat; zero: now
	Exp              time.Time // exp; zero: IssuedAt + 1 h
	// Extra adds or overrides claims after the fields above; a nil value
	// removes the claim (e.g. {"scope": nil} for a token without scope).
	Extra map[string]any
}

// Claims returns the JWT claims t describes, with defaults applied.
func (t Token) Claims() map[string]any {
	iat := t.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	exp := t.Exp
	if exp.IsZero() {
		exp = iat.Add(time.Hour)
	}
	c := map[string]any{
		"sub": t.Sub, "scope": t.Scope, "client_id": t.ClientID,
		"iat": iat.Unix(), "exp": exp.Unix(),
		"iss": "https://accounts.example.invalid", "aud": "https://token.example.invalid",
		"jti": randomHex(16),
	}
	if t.Sub == "" {
		c["sub"] = randomHex(16)
	}
	if t.Scope == "" {
		c["scope"] = OldSyncScope
	}
	if t.ClientID == "" {
		c["client_id"] = DefaultClientID
	}
	if t.Generation != 0 {
		c["fxa-generation"] = t.Generation
	}
	if t.ProfileChangedAt != 0 {
		c["fxa-profileChangedAt"] = t.ProfileChangedAt
	}
	for k, v := range t.Extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// Mint returns an RS256 JWT for t with header {"alg":"RS256","typ":"at+jwt",
// "kid":KID()}, as FxA issues them.
func (i *Issuer) Mint(t Token) string {
	return i.Sign(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": i.kid}, t.Claims())
}

// Sign RS256-signs arbitrary header and claims, whatever the header claims
// its algorithm is; for building malformed or hostile tokens in tests.
func (i *Issuer) Sign(header, claims any) string {
	in := segment(header) + "." + segment(claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, i.key, crypto.SHA256, sum[:])
	if err != nil {
		panic("issuer: signing: " + err.Error()) // cannot happen for a valid key
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// segment is the base64url of v's JSON, or of v itself if it is []byte
// (to sign exact bytes).
func segment(v any) string {
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic("issuer: " + err.Error())
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
