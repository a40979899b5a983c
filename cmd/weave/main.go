// Command weave is the whole Firefox Sync service in one binary: token
// server, storage nodes and the operator's tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
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
	cmds := a.commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		a.usage(cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		c.flags.SetOutput(stderr)
		if err := c.parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "weave %s: %v\n", c.name, err)
			return 2
		}
		for _, w := range c.warnings {
			fmt.Fprintf(stderr, "weave %s: %s\n", c.name, w)
		}
		if err := c.run(c.positional); err != nil {
			fmt.Fprintf(stderr, "weave %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "weave: unknown command %q; run `weave --help` for the list\n", args[0])
	return 2
}

func (a *app) usage(cmds []*command) {
	fmt.Fprintf(a.stdout, "weave — a Firefox Sync server (token server + storage API 1.5) in one binary.\n\nUsage: weave COMMAND [flags]\n\nCommands:\n")
	for _, c := range cmds {
		first, _, _ := strings.Cut(c.summary, "\n")
		fmt.Fprintf(a.stdout, "  %-14s %s\n", c.name, first)
	}
	fmt.Fprintf(a.stdout, "\nRun `weave COMMAND --help` for a command's flags. Every flag can also be set\nwith an environment variable: --database-url is WEAVE_DATABASE_URL.\n")
}

func (a *app) commands() []*command {
	return []*command{
		a.serveCommand(),
		a.dbCommand(),
		a.nodeCommand(),
		a.userCommand(),
		a.cacheCommand(),
		a.accountCommand(),
		a.legacyUserCommand(),
		a.importCommand(),
		a.loadtestCommand(),
		a.versionCommand(),
	}
}

func (a *app) versionCommand() *command {
	c := newCommand("version", "", "Print the version of this weave binary.")
	c.run = func([]string) error {
		fmt.Fprintf(a.stdout, "weave %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	return c
}
