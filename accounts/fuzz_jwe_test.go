package accounts

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzJWE covers the JWE and JWK parsers: the keys_jwe shape check the
// server applies, DecryptJWE of arbitrary compact JWEs (what a Go client
// does with the server's answer), and ParseJWK of arbitrary keys_jwk JSON.
// Failures are ErrBadJWE; what encrypts to a key decrypts back with it.
func FuzzJWE(f *testing.F) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	good, err := EncryptJWE(priv.PublicKey(), []byte(`{"https://identity.mozilla.com/apps/oldsync":{}}`))
	if err != nil {
		f.Fatal(err)
	}
	jwk, _ := json.Marshal(PublicJWK(priv.PublicKey()))
	f.Add(good, jwk, []byte("plaintext"))
	f.Add("a..b.c.d", []byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}`), []byte(nil))
	f.Add("eyJhbGciOiJFQ0RILUVTIn0..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA", []byte(`{"kty":"RSA"}`), []byte{0})
	f.Add("....", []byte(`null`), []byte{})
	f.Fuzz(func(t *testing.T, jwe string, jwkJSON, plaintext []byte) {
		valid := validJWE(jwe)
		if valid && len(jwe) > 1024 {
			t.Fatalf("overlong keys_jwe accepted")
		}
		if pt, err := DecryptJWE(jwe, priv); err != nil {
			if !errors.Is(err, ErrBadJWE) {
				t.Fatalf("DecryptJWE: %v", err)
			}
		} else if jwe != good && !bytes.Equal(pt, []byte(`{"https://identity.mozilla.com/apps/oldsync":{}}`)) {
			// Only the one authentic JWE (or a re-encoding of its
			// base64) can decrypt; anything else would be a forgery.
			t.Fatalf("forged JWE %q decrypted to %q", jwe, pt)
		}
		var j JWK
		if json.Unmarshal(jwkJSON, &j) != nil {
			return
		}
		pub, err := ParseJWK(j)
		if err != nil {
			if !errors.Is(err, ErrBadJWE) {
				t.Fatalf("ParseJWK: %v", err)
			}
			return
		}
		if back, err := ParseJWK(PublicJWK(pub)); err != nil || !back.Equal(pub) {
			t.Fatalf("JWK %s does not round-trip: %v", jwkJSON, err)
		}
		// The key is only ever a peer: a JWE to it must be well formed
		// (an empty plaintext has an empty ciphertext part, which the
		// keys_jwe check, like FxA's, refuses; bundles are never empty).
		out, err := EncryptJWE(pub, plaintext)
		if err != nil || !validJWE(out) && len(out) <= 1024 && len(plaintext) > 0 {
			t.Fatalf("EncryptJWE to %s: %q, %v", jwkJSON, out, err)
		}
		if pub.Equal(priv.PublicKey()) {
			if pt, err := DecryptJWE(out, priv); err != nil || !bytes.Equal(pt, plaintext) {
				t.Fatalf("round trip: %q, %v", pt, err)
			}
		}
	})
}
