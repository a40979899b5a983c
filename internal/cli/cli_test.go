package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func secretFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretFlagFiles: a secret flag's NAME-file variant reads the secret
// from a file (flag or WEAVE_NAME_FILE), the command line wins over the
// environment, both at once is an error, and a file others can write is
// refused while one they can read gets a warning.
func TestSecretFlagFiles(t *testing.T) {
	good := secretFile(t, "from-the-file\n", 0o600)
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // the secret, or the error's text
		wantErr bool
		warn    bool
	}{
		{name: "file flag", args: []string{"--admin-token-file", good}, want: "from-the-file"},
		{name: "file env", env: map[string]string{"WEAVE_ADMIN_TOKEN_FILE": good}, want: "from-the-file"},
		{name: "value flag", args: []string{"--admin-token", "given"}, want: "given"},
		{name: "cmd file beats env value", args: []string{"--admin-token-file", good}, env: map[string]string{"WEAVE_ADMIN_TOKEN": "env"}, want: "from-the-file"},
		{name: "cmd value beats env file", args: []string{"--admin-token", "given"}, env: map[string]string{"WEAVE_ADMIN_TOKEN_FILE": good}, want: "given"},
		{name: "both on the command line", args: []string{"--admin-token", "x", "--admin-token-file", good}, wantErr: true, want: "both given"},
		{name: "both in the environment", env: map[string]string{"WEAVE_ADMIN_TOKEN": "x", "WEAVE_ADMIN_TOKEN_FILE": good}, wantErr: true, want: "both given"},
		{name: "CRLF", args: []string{"--admin-token-file", secretFile(t, "tok en\r\n", 0o600)}, want: "tok en"},
		{name: "world-writable", args: []string{"--admin-token-file", secretFile(t, "s", 0o622)}, wantErr: true, want: "writable by every user"},
		{name: "readable by others", args: []string{"--admin-token-file", secretFile(t, "readable", 0o644)}, want: "readable", warn: true},
		{name: "empty", args: []string{"--admin-token-file", secretFile(t, "\n", 0o600)}, wantErr: true, want: "is empty"},
		{name: "missing", args: []string{"--admin-token-file", filepath.Join(t.TempDir(), "nope")}, wantErr: true, want: "no such file"},
		{name: "directory", args: []string{"--admin-token-file", t.TempDir()}, wantErr: true, want: "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var tok string
			c := New("x", "", "")
			c.Flags.SetOutput(io.Discard)
			c.Secret(&tok, "admin-token", "", "")
			err := c.Parse(tc.args)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want one saying %q", err, tc.want)
				}
				return
			}
			if err != nil || tok != tc.want {
				t.Fatalf("secret %q, %v; want %q", tok, err, tc.want)
			}
			if warned := len(c.warnings) > 0; warned != tc.warn {
				t.Fatalf("warnings %q, want some: %v", c.warnings, tc.warn)
			}
		})
	}
}
