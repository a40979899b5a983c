package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weave-sync/weave/fxa/issuer"
	"github.com/weave-sync/weave/internal/testkit"
)

// The fault tests run the real weave binary in processes of their own, so
// that they can kill it with SIGKILL and see its locks from outside. It is
// built once per test run (with -race when the tests are).

var built struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// weaveBinary returns the path of a weave binary built from this package.
func weaveBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "weave-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "weave")
		args := []string{"build", "-o", built.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		// go test puts its own go first on PATH.
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// proc is one weave process.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr
	exited chan struct{}
	state  *os.ProcessState
}

// startWeave runs the weave binary with args; it is killed when the test
// ends if still running.
func startWeave(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(weaveBinary(t), args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop ends the process with SIGTERM (a clean shutdown) and waits for it.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("weave did not stop within 30 s of SIGTERM:\n%s", p.out)
	}
}

// procEnv is what a weave serve process keeps across restarts: its
// address (so tokens stay valid), data directory (master secret, SQLite)
// and trusted FxA issuer.
type procEnv struct {
	t      *testing.T
	dir    string
	addr   string
	jwks   string
	issuer *issuer.Issuer
	args   []string // more serve flags: databases, nodes
}

func newProcEnv(t *testing.T, args ...string) *procEnv {
	t.Helper()
	dir := t.TempDir()
	e := &procEnv{t: t, dir: dir, addr: testkit.FreeAddr(t), jwks: filepath.Join(dir, "jwks.json"), issuer: issuer.New(), args: args}
	if err := os.WriteFile(e.jwks, e.issuer.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *procEnv) dataDir() string { return filepath.Join(e.dir, "data") }

// server returns the server handle clients use (valid across restarts).
func (e *procEnv) server() *server {
	return &server{base: "http://" + e.addr, issuer: e.issuer, stdout: &syncBuffer{}}
}

// serve starts `weave serve` and waits until its heartbeat answers 200.
func (e *procEnv) serve() *proc {
	t := e.t
	t.Helper()
	args := append([]string{"serve", "--listen", e.addr, "--data-dir", e.dataDir(),
		"--fxa-jwks-file", e.jwks, "--fxa-oauth-url", "http://127.0.0.1:1", "--shutdown-grace", "0s", "--log-level", "warn"}, e.args...)
	p := startWeave(t, args...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + e.addr + "/__heartbeat__")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("weave serve exited (%v):\n%s", p.state, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("weave serve not healthy after 30 s: %v\n%s", err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runWeave runs a weave command to completion and returns its exit code and
// output.
func runWeave(t *testing.T, args ...string) (int, string) {
	t.Helper()
	p := startWeave(t, args...)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		p.kill()
		t.Fatalf("weave %v did not finish within 60 s:\n%s", args, p.out)
	}
	return p.state.ExitCode(), p.out.String()
}
