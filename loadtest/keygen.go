package loadtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/weave-sync/weave/fxa/issuer"
	"github.com/weave-sync/weave/internal/privfile"
)

// Names of the files Keygen writes.
const (
	KeyFileName  = "loadtest-key.pem"
	JWKSFileName = "loadtest-jwks.json"
)

// Keygen creates the key for ModeTokenServer in dir (created if missing):
// the RSA private key the load generator signs FxA-style access tokens with
// (PEM, mode 0600) and the JWKS document the token server must trust, e.g.
// as its pinned FxA keys. It refuses to overwrite existing files.
func Keygen(dir string) (keyFile, jwksFile string, err error) {
	iss := issuer.New()
	return writeKeyFiles(dir, iss.PrivateKeyPEM(), iss.JWKS())
}

// jwtSigner mints the FxA OAuth access tokens of ModeTokenServer.
type jwtSigner struct {
	iss *issuer.Issuer
}

// loadSigner reads the private key written by Keygen.
func loadSigner(path string) (*jwtSigner, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	iss, err := issuer.FromPEM(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %v", path, err)
	}
	return &jwtSigner{iss: iss}, nil
}

// mint returns an RS256 access token as FxA issues them (typ at+jwt, the
// oldsync scope, Firefox's client id) for account sub.
func (s *jwtSigner) mint(sub string, generation int64, iat, exp time.Time) string {
	return s.iss.Mint(issuer.Token{Sub: sub, Generation: generation, IssuedAt: iat, Exp: exp})
}

// writeKeyFiles stores a new key pair in dir (created if missing). It never
// replaces existing files: the server may already trust the old JWKS, and a
// silently rotated key would make every token request fail.
func writeKeyFiles(dir string, keyPEM, jwks []byte) (keyFile, jwksFile string, err error) {
	if dir == "" {
		dir = "."
	}
	if err := privfile.MkdirAll(dir); err != nil {
		return "", "", fmt.Errorf("keygen: %w", err)
	}
	keyFile = filepath.Join(dir, KeyFileName)
	jwksFile = filepath.Join(dir, JWKSFileName)
	for _, p := range []string{keyFile, jwksFile} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("keygen: %s exists; remove it or choose another directory", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("keygen: %w", err)
		}
	}
	if err := privfile.WriteFile(keyFile, keyPEM); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", "", fmt.Errorf("keygen: %s exists; remove it or choose another directory", keyFile)
		}
		return "", "", fmt.Errorf("keygen: %w", err)
	}
	if err := writeExclusive(jwksFile, jwks, 0o644); err != nil {
		os.Remove(keyFile)
		return "", "", err
	}
	return keyFile, jwksFile, nil
}

func writeExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keygen: %s exists; remove it or choose another directory", path)
		}
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}
