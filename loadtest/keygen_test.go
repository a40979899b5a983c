package loadtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/fxa"
)

func TestKeygenOutputVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys") // created by Keygen
	keyFile, jwksFile, err := Keygen(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	pemBytes, _ := os.ReadFile(keyFile)
	if !strings.Contains(string(pemBytes), "PRIVATE KEY-----") {
		t.Errorf("key file is not PEM: %.40q", pemBytes)
	}

	keys, err := fxa.LoadJWKSFile(jwksFile)
	if err != nil {
		t.Fatalf("the JWKS does not parse: %v", err)
	}
	if keys.Len() != 1 {
		t.Fatalf("JWKS has %d keys", keys.Len())
	}
	v, err := fxa.NewVerifier(fxa.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}

	signer, err := loadSigner(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: DefaultConfig()}
	u := r.newUser(3)
	now := time.Now()
	tok := signer.mint(u.fxaUID, u.generation, now, now.Add(time.Hour))
	claims, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if claims.FxAUID != u.fxaUID || claims.Generation != keysChangedAt {
		t.Errorf("claims %+v, want sub %s generation %d", claims, u.fxaUID, int64(keysChangedAt))
	}
	if len(u.fxaUID) != 32 || strings.Trim(u.fxaUID, "0123456789abcdef") != "" {
		t.Errorf("fxa uid %q is not 32 hex digits", u.fxaUID)
	}

	// An expired token is refused: the minted exp is what the verifier sees.
	old := signer.mint(u.fxaUID, u.generation, now.Add(-2*time.Hour), now.Add(-time.Hour))
	if _, err := v.Verify(t.Context(), old); !errors.Is(err, fxa.ErrInvalidToken) {
		t.Errorf("expired token: %v", err)
	}

	// A second keygen into the same directory must not replace the key
	// the server already trusts.
	if _, _, err := Keygen(dir); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second keygen: %v", err)
	}
}

func TestLoadSignerErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadSigner(filepath.Join(dir, "nope.pem")); err == nil {
		t.Error("missing file accepted")
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	if _, err := loadSigner(bad); err == nil {
		t.Error("garbage key accepted")
	}
}
