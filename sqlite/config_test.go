package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weave-sync/weave/internal/cli"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// TestConfigDatabases: sqlstore.Config finds the data directory's weave.db
// by default, the token database shares it, WriteStatus tells pending
// migrations until Prepare applied them, and BackupCommand copies the
// database and restores it, refusing a missing file name.
func TestConfigDatabases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &sqlstore.Config{DataDir: dir}
	want := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "weave.db"))
	if got, err := cfg.TokenDatabaseURL(); err != nil || got != want {
		t.Fatalf("token database %q, %v; want %q", got, err, want)
	}
	dbs, err := cfg.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dbs.Close()
	if dbs.Tokens != dbs.Storage || dbs.StorageBackend.Name != "sqlite" {
		t.Fatalf("one SQLite file should be one DB: %+v", dbs)
	}
	var out bytes.Buffer
	if err := dbs.WriteStatus(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "storage  schema version 0 of") || !strings.Contains(out.String(), "pending: run `weave db migrate`") {
		t.Fatalf("status before migrating:\n%s", out.String())
	}
	var applied []string
	if err := dbs.Prepare(ctx, true, func(set string, m sqlstore.Migration) { applied = append(applied, set) }); err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("Prepare applied no migration")
	}
	out.Reset()
	if err := dbs.WriteStatus(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "(up to date)") != 2 {
		t.Fatalf("status after migrating:\n%s", out.String())
	}
	var progress bytes.Buffer
	n, err := sqlstore.NewStore(dbs.Storage, sqlstore.StoreOptions{}).PurgeAllExpired(ctx, 10, &progress)
	if err != nil || n != 0 || !strings.HasSuffix(progress.String(), "\n") {
		t.Fatalf("purge of an empty database: %d, %v, progress %q", n, err, progress.String())
	}

	if err := sqlite.BackupCommand(ctx, &out, "backup", want, ""); err == nil || !strings.Contains(err.Error(), "want a file name") {
		t.Fatalf("backup without a file: %v", err)
	}
	file := filepath.Join(t.TempDir(), "copy.db")
	out.Reset()
	if err := sqlite.BackupCommand(ctx, &out, "backup", want, file); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil || !strings.HasPrefix(out.String(), "backed up "+want+" to "+file) {
		t.Fatalf("backup: %v; said %q", err, out.String())
	}
	if err := sqlite.BackupCommand(ctx, &out, "backup", "mysql://u:secret@127.0.0.1/db", file); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("backup of MySQL: %v", err)
	}
}

// TestConfigTokenFlags: the operator commands' token database is
// $WEAVE_DATABASE_URL when they are given none, as for weave serve.
func TestConfigTokenFlags(t *testing.T) {
	t.Setenv("WEAVE_DATABASE_URL", "sqlite:///from/env.db")
	var cfg sqlstore.Config
	if got, _ := cfg.TokenDatabaseURL(); strings.Contains(got, "env.db") {
		t.Fatalf("serve's own flags read the environment themselves, got %q", got)
	}
	c := cli.New("x", "", "")
	cfg.RegisterTokenFlags(c)
	if got, err := cfg.TokenDatabaseURL(); err != nil || got != "sqlite:///from/env.db" {
		t.Fatalf("token database %q, %v", got, err)
	}
	cfg.TokenURL = "sqlite:///tokens.db"
	if got, _ := cfg.TokenDatabaseURL(); got != "sqlite:///tokens.db" {
		t.Fatalf("--token-database-url ignored: %q", got)
	}
}

// TestAdmin: `weave db` migrates and reports the schema, purges, and
// refuses what it cannot run.
func TestAdmin(t *testing.T) {
	var out, progress bytes.Buffer
	adm := &sqlstore.Admin{Config: sqlstore.Config{DataDir: t.TempDir()}, PurgeBatch: 100, Backup: sqlite.BackupCommand, Out: &out, Progress: &progress}
	ctx := context.Background()
	for _, tc := range []struct {
		args string
		want string // in the output, or the error's text
	}{
		{"", "want one of migrate, status, purge, seed"},
		{"vacuum", `unknown db command "vacuum"`},
		{"migrate", "applying storage migration"},
		{"status", "tokens   schema version"},
		{"purge", "purged 0 expired records and batch rows"},
		{"backup " + filepath.Join(t.TempDir(), "b.db"), "integrity ok"},
	} {
		out.Reset()
		err := adm.Run(ctx, strings.Fields(tc.args))
		got := out.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("db %s: %q, want %q", tc.args, got, tc.want)
		}
	}
}
