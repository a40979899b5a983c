package fxa

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	fuzzKeyOnce sync.Once
	fuzzKey     *rsa.PrivateKey
)

// fuzzSigner is one RSA key for every fuzz target (generating one takes
// tens of milliseconds).
func fuzzSigner(tb testing.TB) *rsa.PrivateKey {
	fuzzKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			tb.Fatal(err)
		}
		fuzzKey = k
	})
	return fuzzKey
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// FuzzVerifyToken gives the verifier (pinned keys, no network) three
// tokens per input: the raw string, the header and claims under a junk
// signature, and the same header and claims properly signed by the trusted
// key. No token is ever unavailable (there is no server to be
// unavailable), an unsigned one is never accepted, and a signed one is
// accepted only with claims the token server can rely on.
func FuzzVerifyToken(f *testing.F) {
	key := fuzzSigner(f)
	now := time.Unix(1700000000, 0)
	v, err := NewVerifier(Options{Keys: &KeySet{keys: []publicKey{{kid: "k1", pub: &key.PublicKey}}}, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	hdr := `{"alg":"RS256","typ":"at+jwt","kid":"k1"}`
	f.Add(hdr, `{"sub":"0123456789abcdef0123456789abcdef","exp":1700000600,"scope":"profile https://identity.mozilla.com/apps/oldsync","fxa-generation":1699999999000,"client_id":"5882386c6d801776"}`, []byte("sig"), "a.b.c")
	f.Add(`{"alg":"none","typ":"application/at+jwt"}`, `{"sub":"x","exp":1.7e9,"nbf":1.8e9,"scope":["https://identity.mozilla.com/apps/","profile"]}`, []byte(nil), "e30.e30.")
	f.Add(`{"alg":"RS256","typ":"JWT","crit":["b64"]}`, `{"sub":"a=","exp":"1700000600","scope":"https://identity.mozilla.com/apps/oldsync#x","fxa-generation":-1}`, []byte{0}, "opaque-token")
	f.Add(hdr, `{"sub":"A-_=","exp":1700000000.5,"scope":"https://identity.mozilla.com/apps/oldsync/sub,other","fxa-generation":1e3,"fxa-profileChangedAt":"x"}`, []byte{}, "..")
	f.Fuzz(func(t *testing.T, header, claims string, sig []byte, raw string) {
		ctx := context.Background()
		si := b64url([]byte(header)) + "." + b64url([]byte(claims))
		for _, tok := range []string{raw, si + "." + b64url(sig)} {
			if c, err := v.Verify(ctx, tok); err == nil {
				t.Fatalf("token %q without a valid signature accepted: %+v", tok, c)
			} else if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("token %q: %v", tok, err)
			}
		}
		digest := sha256.Sum256([]byte(si))
		good, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(ctx, si+"."+b64url(good))
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("signed token: %v", err)
			}
			return
		}
		if !validUID(c.FxAUID) || c.Generation < 0 || !strings.Contains(header, "RS256") {
			t.Fatalf("accepted claims %+v (header %s)", c, header)
		}
		granted := false
		for _, s := range c.Scopes {
			granted = granted || ScopeGrants(s, OldSyncScope)
		}
		if !granted {
			t.Fatalf("accepted scopes %q", c.Scopes)
		}
	})
}

// FuzzParseJWKS checks that a JWKS document (fetched from FxA or read
// from a pinned file) either fails or yields only RS256-usable keys of at
// least 2048 bits.
func FuzzParseJWKS(f *testing.F) {
	key := fuzzSigner(f)
	n, e := b64url(key.N.Bytes()), b64url(big.NewInt(int64(key.E)).Bytes())
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"` + n + `","e":"` + e + `","fxa-createdAt":1}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},{"kty":"RSA","n":"` + n + `==","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"` + n + `","e":"AAAAAAE"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ks, err := ParseJWKS(doc)
		if err != nil {
			if ks != nil {
				t.Fatalf("key set with error %v", err)
			}
			return
		}
		if ks.Len() == 0 {
			t.Fatal("empty key set accepted")
		}
		for _, k := range ks.keys {
			if k.pub.N.BitLen() < minRSABits || k.pub.E < 3 || k.pub.E%2 == 0 {
				t.Fatalf("weak key accepted: %d bits, e=%d", k.pub.N.BitLen(), k.pub.E)
			}
		}
	})
}
