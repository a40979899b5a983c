package firefox

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Require returns the Firefox binary for a test. Without one the test is
// skipped, or fails under WEAVE_REQUIRE_BACKENDS=1 (as in CI).
func Require(t testing.TB) string {
	t.Helper()
	bin, ok := Binary()
	if !ok {
		msg := "Firefox test skipped: " + bin + " not found (apt-get install firefox-esr, or set WEAVE_FIREFOX)"
		if req, _ := strconv.ParseBool(os.Getenv("WEAVE_REQUIRE_BACKENDS")); req {
			t.Fatal(msg + "; WEAVE_REQUIRE_BACKENDS=1 makes this a failure")
		}
		t.Skip(msg)
	}
	return bin
}

// StartT starts Firefox for a test (see Require) and quits it when the
// test ends; a failed test's log gets the end of Firefox's output.
func StartT(t testing.TB, opts Options) *Firefox {
	t.Helper()
	opts.Binary = Require(t)
	if opts.Profile == "" {
		opts.Profile = filepath.Join(t.TempDir(), "profile")
	}
	f, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("Firefox output (profile %s):\n%s", opts.Profile, Tail(f.Log(), 20000))
		}
	})
	return f
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
