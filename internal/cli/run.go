package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Dispatch runs the command args[0] names with the rest of args and returns
// the process's exit status: 0 done, 1 failed, 2 a usage error. usage
// writes the program's help (no arguments, -h, --help or help).
func Dispatch(cmds []*Command, args []string, stdout, stderr io.Writer, usage func(io.Writer)) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.Name != args[0] {
			continue
		}
		c.Flags.SetOutput(stderr)
		if err := c.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "weave %s: %v\n", c.Name, err)
			return 2
		}
		for _, w := range c.warnings {
			fmt.Fprintf(stderr, "weave %s: %s\n", c.Name, w)
		}
		if err := c.Run(c.positional); err != nil {
			fmt.Fprintf(stderr, "weave %s: %v\n", c.Name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "weave: unknown command %q; run `weave --help` for the list\n", args[0])
	return 2
}

// Summaries lists the commands with the first line of their summaries.
func Summaries(w io.Writer, cmds []*Command) {
	for _, c := range cmds {
		first, _, _ := strings.Cut(c.Summary, "\n")
		fmt.Fprintf(w, "  %-14s %s\n", c.Name, first)
	}
}

// List splits a comma-separated flag value, dropping blanks.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
