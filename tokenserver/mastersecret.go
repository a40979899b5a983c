package tokenserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/weave-sync/weave/internal/privfile"
)

// MasterSecret returns the configured master secret, or the one kept in the
// data directory, generating it (mode 0600) on first start so that tokens
// stay valid across restarts.
func MasterSecret(configured, dataDir string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dataDir, "master-secret")
	// An older weave, or a hand-made file, may be readable by others.
	if _, err := privfile.Tighten(path); err != nil && !errors.Is(err, fs.ErrPermission) {
		return "", fmt.Errorf("make %s private: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s is empty: delete it to generate a new secret, or set --master-secret", path)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read master secret: %w", err)
	}
	if err := privfile.MkdirAll(dataDir); err != nil {
		return "", fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw)
	f, err := privfile.Create(path)
	if err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			return MasterSecret("", dataDir)
		}
		return "", fmt.Errorf("write master secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return s, f.Close()
}
