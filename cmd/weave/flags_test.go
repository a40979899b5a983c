package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestFlagRangesRefusedAtStart: a value that would quietly switch off a
// protection (a negative --hawk-skew turned off the timestamp and replay
// checks) or that makes no sense stops serve at start with exit status 2
// and names the flag, from the command line and from the environment.
func TestFlagRangesRefusedAtStart(t *testing.T) {
	cases := []struct {
		args []string
		env  [2]string
		want string
	}{
		{args: []string{"--hawk-skew", "-1s"}, want: "--hawk-skew -1s (or WEAVE_HAWK_SKEW): must be at least 1s"},
		{args: []string{"--hawk-skew", "0s"}, want: "--hawk-skew 0s"},
		{args: []string{"--hawk-skew", "2h"}, want: "must be at most 1h0m0s"},
		{env: [2]string{"WEAVE_HAWK_SKEW", "-1s"}, want: "--hawk-skew -1s"},
		{args: []string{"--quota-bytes", "-1"}, want: "--quota-bytes -1"},
		{args: []string{"--max-request-bytes", "0"}, want: "--max-request-bytes 0"},
		{args: []string{"--max-post-records", "-5"}, want: "--max-post-records -5"},
		{args: []string{"--max-record-payload-bytes", "-1"}, want: "--max-record-payload-bytes -1"},
		{args: []string{"--batch-lifetime", "-1h"}, want: "--batch-lifetime"},
		{args: []string{"--token-duration", "0s"}, want: "--token-duration"},
		{args: []string{"--purge-interval", "-1m"}, want: "--purge-interval"},
		{args: []string{"--db-timeout", "-1s"}, want: "--db-timeout"},
		{args: []string{"--memcache-timeout", "0s"}, want: "--memcache-timeout"},
		{args: []string{"--body-timeout", "0s"}, want: "--body-timeout"},
		{args: []string{"--header-timeout", "-1s"}, want: "--header-timeout"},
		{args: []string{"--min-transfer-rate", "-1"}, want: "--min-transfer-rate"},
		{args: []string{"--max-conns-per-client", "-1"}, want: "--max-conns-per-client"},
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"legacy-user", "reset-password", "a", "--link-ttl", "-1h"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--link-ttl -1h0m0s") {
		t.Errorf("legacy-user --link-ttl -1h: exit %d, %q", code, errb.String())
	}
	for _, tc := range cases {
		name := strings.Join(tc.args, " ") + tc.env[0] + tc.env[1]
		t.Run(name, func(t *testing.T) {
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			// Without the check serve starts and runs until ctx ends.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--public-url", "http://127.0.0.1:1", "--data-dir", t.TempDir(), "--shutdown-grace", "0s"}, tc.args...)
			var out, errb bytes.Buffer
			code := run(ctx, args, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
			if strings.Contains(out.String(), "listening") {
				t.Fatalf("serve started: %s", out.String())
			}
		})
	}
	// The defaults and ordinary values pass: serve starts listening, and
	// exits 0 when stopped. (Stopped once it listens, not after a fixed
	// time: its migrations took over 2 s on a loaded machine.)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sout, serr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--public-url", "http://127.0.0.1:1", "--data-dir", t.TempDir(), "--shutdown-grace", "0s", "--hawk-skew", "30s", "--quota-bytes", "0", "--purge-interval", "0s"}, sout, serr)
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(sout.String(), "listening"); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("ordinary values refused: %d %s", code, serr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not listening after 30s: %s %s", sout.String(), serr.String())
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve with ordinary values exited with %d when stopped: %s", code, serr.String())
	}
}

// TestCORSOriginsFlag: --cors-origins reaches the storage server, which
// refuses an origin that is not scheme://host[:port] at start.
func TestCORSOriginsFlag(t *testing.T) {
	// The origins are checked after the database is opened and migrated,
	// which took over 2 s on a loaded machine; a serve that accepted them
	// would run until this ends and exit 0.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--public-url", "http://127.0.0.1:1", "--data-dir", t.TempDir(),
		"--shutdown-grace", "0s", "--cors-origins", "https://app.example,https://app.example/path"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), `CORS origin "https://app.example/path"`) || strings.Contains(out.String(), "listening") {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errb.String(), out.String())
	}
}
