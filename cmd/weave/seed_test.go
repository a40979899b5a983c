package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDBSeed runs `weave db seed` on a fresh SQLite data directory: it
// migrates, writes the records, and then refuses the non-empty database
// unless told to append.
func TestDBSeed(t *testing.T) {
	dir := t.TempDir()
	seed := func(extra ...string) (int, string, string) {
		var out, errb bytes.Buffer
		args := append([]string{"db", "seed", "--data-dir", dir, "--seed-users", "3", "--seed-records-per-user", "10", "--seed-collections", "history,tabs"}, extra...)
		code := run(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := seed(); code != 0 || !strings.Contains(out, "seeded 30 records for 3 users") {
		t.Fatalf("first seed: exit %d, %q, %q", code, out, errs)
	}
	if code, _, errs := seed(); code == 0 || !strings.Contains(errs, "not empty") {
		t.Fatalf("second seed: exit %d, %q; want a refusal", code, errs)
	}
	if code, out, errs := seed("--seed-append", "--seed-first-uid", "100"); code != 0 || !strings.Contains(out, "seeded 30 records") {
		t.Fatalf("append: exit %d, %q, %q", code, out, errs)
	}
}
