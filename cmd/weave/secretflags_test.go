package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestEverySecretHasAFile: each flag that carries a secret, in every
// command, has its -file variant with a WEAVE_…_FILE variable.
func TestEverySecretHasAFile(t *testing.T) {
	a := &app{ctx: context.Background()}
	secret := map[string]bool{"master-secret": true, "admin-token": true, "accounts-captcha-override": true,
		"database-url": true, "token-database-url": true, "password": true, "node-secret": true,
		"legacy-weave-secret": true, "legacy-captcha-override": true}
	seen := map[string]bool{}
	for _, c := range a.commands() {
		for name := range secret {
			if c.Flags.Lookup(name) == nil {
				continue
			}
			seen[name] = true
			if c.Flags.Lookup(name+"-file") == nil {
				t.Errorf("weave %s --%s has no --%s-file", c.Name, name, name)
			}
			if env, ok := c.Env(name); ok {
				if fileEnv, _ := c.Env(name + "-file"); fileEnv != env+"_FILE" {
					t.Errorf("weave %s --%s-file: environment %q, want %s_FILE", c.Name, name, fileEnv, env)
				}
			}
		}
	}
	for name := range secret {
		if !seen[name] {
			t.Errorf("no command has --%s", name)
		}
	}
}

// TestServeSecretsFromFiles: weave serve takes its admin token and master
// secret from files named by WEAVE_ADMIN_TOKEN_FILE and
// WEAVE_MASTER_SECRET_FILE (not from the data directory's own secret).
func TestServeSecretsFromFiles(t *testing.T) {
	const token = "admin-token-from-a-file-0123456789"
	t.Setenv("WEAVE_ADMIN_TOKEN_FILE", writeSecret(t, "admin", token+"\n"))
	t.Setenv("WEAVE_MASTER_SECRET_FILE", writeSecret(t, "master", "master-secret-from-a-file\n"))
	srv := startServer(t, "")
	for tok, want := range map[string]int{token: 200, "wrong-token-0123456789": 401} {
		req, _ := http.NewRequest("GET", srv.base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("/metrics with token %q: %d, want %d", tok, resp.StatusCode, want)
		}
	}
	// The file's secret is in use: none was generated in the data
	// directory (startServer's, found beside its database).
	dbs, _ := filepath.Glob(filepath.Join(os.TempDir(), "TestServeSecretsFromFiles*", "*", "data", "weave.db"))
	if len(dbs) != 1 {
		t.Fatalf("data directory not found: %v", dbs)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dbs[0]), "master-secret")); !os.IsNotExist(err) {
		t.Errorf("a master secret was generated although one was given: %v", err)
	}
}

// writeSecret writes a private secret file.
func writeSecret(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
