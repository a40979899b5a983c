// Package firefox starts a real, headless Firefox with a fresh profile for
// tests and connects to it over Marionette (internal/marionette).
package firefox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weave-sync/weave/internal/marionette"
)

// DefaultBinary is Debian's Firefox ESR.
const DefaultBinary = "/usr/bin/firefox-esr"

// Binary is the Firefox to run: $WEAVE_FIREFOX if set, else DefaultBinary
// or firefox-esr / firefox on the PATH. ok is false when none exists.
func Binary() (path string, ok bool) {
	if p := os.Getenv("WEAVE_FIREFOX"); p != "" {
		_, err := os.Stat(p)
		return p, err == nil
	}
	if _, err := os.Stat(DefaultBinary); err == nil {
		return DefaultBinary, true
	}
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return DefaultBinary, false
}

// Options configure Start.
type Options struct {
	// Binary defaults to Binary().
	Binary string
	// Profile is an empty directory for the new profile (a test's
	// t.TempDir()). Required.
	Profile string
	// Prefs are written to user.js over QuietPrefs.
	Prefs map[string]any
	// Width and Height of the headless window (default 1280×900).
	Width, Height int
	// StartTimeout bounds the wait for Marionette (default 60 s).
	StartTimeout time.Duration
}

// Firefox is a running Firefox with a Marionette session.
type Firefox struct {
	*marionette.Client
	Profile string

	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done

	closeOnce sync.Once
}

// Start launches Firefox headless with a fresh profile holding opts.Prefs,
// waits for Marionette and opens a WebDriver session.
func Start(ctx context.Context, opts Options) (*Firefox, error) {
	if opts.Binary == "" {
		opts.Binary, _ = Binary()
	}
	if opts.Profile == "" {
		return nil, errors.New("firefox: Options.Profile is required")
	}
	if opts.Width == 0 {
		opts.Width, opts.Height = 1280, 900
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	prefs := QuietPrefs()
	maps.Copy(prefs, opts.Prefs)
	js, err := UserJS(prefs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Profile, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(opts.Profile, "user.js"), js, 0o600); err != nil {
		return nil, err
	}
	portFile := filepath.Join(opts.Profile, "MarionetteActivePort")
	os.Remove(portFile)

	// -remote-allow-system-access lets Marionette run chrome-context
	// (privileged) scripts, which the tests use to reach Sync and the
	// password manager.
	cmd := exec.Command(opts.Binary, "--headless", "--marionette", "-remote-allow-system-access",
		"--no-remote", "--profile", opts.Profile, "about:blank")
	cmd.Env = append(os.Environ(),
		"MOZ_HEADLESS=1",
		"MOZ_HEADLESS_WIDTH="+strconv.Itoa(opts.Width),
		"MOZ_HEADLESS_HEIGHT="+strconv.Itoa(opts.Height),
		"MOZ_CRASHREPORTER_DISABLE=1",
		// A crash must fail the test, not open the "safe mode?" dialog.
		"MOZ_DISABLE_AUTO_SAFE_MODE=1",
	)
	out := &logBuffer{max: 1 << 20}
	cmd.Stdout, cmd.Stderr = out, out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("firefox: %w", err)
	}
	f := &Firefox{Profile: opts.Profile, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { f.err = cmd.Wait(); close(f.done) }()

	addr, err := f.waitForPort(ctx, portFile, opts.StartTimeout)
	if err == nil {
		err = f.connect(ctx, addr, opts.StartTimeout)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w\nfirefox output:\n%s", err, f.Log())
	}
	return f, nil
}

// waitForPort polls for the port Firefox writes once Marionette listens.
func (f *Firefox) waitForPort(ctx context.Context, portFile string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(portFile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
				return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
			}
		}
		select {
		case <-f.done:
			return "", fmt.Errorf("firefox exited before Marionette started: %v", f.err)
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("firefox: Marionette did not start within %v", timeout)
		}
	}
}

func (f *Firefox) connect(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := marionette.Dial(ctx, addr)
	if err != nil {
		return err
	}
	// NewSession waits for the first browser window.
	if err := c.NewSession(ctx, map[string]any{"pageLoadStrategy": "normal"}); err != nil {
		c.Close()
		return err
	}
	f.Client = c
	return nil
}

// Log is what Firefox printed so far (capped at its last MiB).
func (f *Firefox) Log() string { return f.out.String() }

// Close quits Firefox: a Marionette quit first (so the profile is written
// cleanly), then SIGKILL to the whole process group (content processes
// included) if it is still running after a few seconds. Safe to call twice.
func (f *Firefox) Close() error {
	f.closeOnce.Do(func() {
		if f.Client != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := f.Client.Quit(ctx)
			cancel()
			f.Client.Close()
			if err == nil {
				select {
				case <-f.done:
				case <-time.After(5 * time.Second):
				}
			}
		}
		killProcessGroup(f.cmd)
		<-f.done
	})
	return nil
}

// logBuffer keeps the tail of Firefox's output.
type logBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
	cut bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if l.b.Len() > l.max {
		l.b.Next(l.b.Len() - l.max/2)
		l.cut = true
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return "[…earlier output dropped…]\n" + l.b.String()
	}
	return l.b.String()
}
