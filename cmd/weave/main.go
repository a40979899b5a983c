// Command weave is the whole Firefox Sync service in one binary: token
// server, storage nodes and the operator's tools.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/weave-sync/weave/internal/cli"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "0.1.0-dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// app holds the I/O every command writes to, so tests can run commands
// in-process.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, stdin: os.Stdin, stdout: stdout, stderr: stderr}
	return cli.Dispatch(a.commands(), args, stdout, stderr, a.usage)
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, "weave — a Firefox Sync server (token server + storage API 1.5) in one binary.\n\nUsage: weave COMMAND [flags]\n\nCommands:\n")
	cli.Summaries(w, a.commands())
	fmt.Fprintf(w, "\nRun `weave COMMAND --help` for a command's flags. Every flag can also be set\nwith an environment variable: --database-url is WEAVE_DATABASE_URL.\n")
}

func (a *app) commands() []*cli.Command {
	return []*cli.Command{
		a.serveCommand(),
		a.dbCommand(),
		a.nodeCommand(),
		a.userCommand(),
		a.cacheCommand(),
		a.accountCommand(),
		a.legacyUserCommand(),
		a.importCommand(),
		a.pushCommand(),
		a.loadtestCommand(),
		a.versionCommand(),
	}
}

func (a *app) versionCommand() *cli.Command {
	c := cli.New("version", "", "Print the version of this weave binary.")
	c.Run = func([]string) error {
		fmt.Fprintf(a.stdout, "weave %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	return c
}
