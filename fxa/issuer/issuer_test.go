package issuer_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/weave-sync/weave/fxa/issuer"
)

// TestWithKID: a stored key keeps the id it was stored with, in its JWK and
// in the tokens it signs, and still verifies with the same public key.
func TestWithKID(t *testing.T) {
	orig := issuer.New()
	loaded, err := issuer.FromPEM(orig.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	if loaded.KID() != orig.KID() {
		t.Fatalf("FromPEM kid %q, want %q", loaded.KID(), orig.KID())
	}
	iss := loaded.WithKID("weave-0123")
	if iss.KID() != "weave-0123" || iss.JWK()["kid"] != "weave-0123" || loaded.KID() != orig.KID() {
		t.Fatalf("WithKID: kid %q, JWK kid %v, original now %q", iss.KID(), iss.JWK()["kid"], loaded.KID())
	}
	tok := iss.Mint(issuer.Token{})
	parts := strings.Split(tok, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(hdr), `"kid":"weave-0123"`) {
		t.Errorf("header %s", hdr)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(orig.PublicKey(), crypto.SHA256, d[:], sig); err != nil {
		t.Errorf("signature: %v", err)
	}
}
