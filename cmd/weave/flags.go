package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// command is one subcommand: its flags, where every flag also reads a WEAVE_*
// environment variable, and what it runs.
type command struct {
	name    string
	summary string
	usage   string // argument synopsis after the name
	flags   *flag.FlagSet
	env     map[string]string // flag name → environment variable
	run     func(args []string) error
	// positional are the non-flag arguments, wherever they stood.
	positional []string
	// envPrefix starts every flag's environment variable ("WEAVE_"; the
	// load tester uses its own so a server's variables do not leak in).
	envPrefix string
	// checks run after parsing; each refuses a value out of its flag's range.
	checks []func() error
}

func newCommand(name, usage, summary string) *command {
	fs := flag.NewFlagSet("weave "+name, flag.ContinueOnError)
	c := &command{name: name, summary: summary, usage: usage, flags: fs, env: map[string]string{}, envPrefix: "WEAVE_"}
	fs.Usage = func() { c.printUsage(fs.Output()) }
	return c
}

func (c *command) envName(flagName string) string {
	return c.envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *command) String(p *string, name, def, help string) {
	c.env[name] = c.envName(name)
	c.flags.StringVar(p, name, def, help)
}

func (c *command) Int(p *int, name string, def int, help string) bound[int] {
	c.env[name] = c.envName(name)
	c.flags.IntVar(p, name, def, help)
	return bound[int]{c, name, p}
}

func (c *command) Int64(p *int64, name string, def int64, help string) bound[int64] {
	c.env[name] = c.envName(name)
	c.flags.Int64Var(p, name, def, help)
	return bound[int64]{c, name, p}
}

func (c *command) Bool(p *bool, name string, def bool, help string) {
	c.env[name] = c.envName(name)
	c.flags.BoolVar(p, name, def, help)
}

func (c *command) Duration(p *time.Duration, name string, def time.Duration, help string) bound[time.Duration] {
	c.env[name] = c.envName(name)
	c.flags.DurationVar(p, name, def, help)
	return bound[time.Duration]{c, name, p}
}

// bound restricts a numeric flag to a range, checked once parsing is done,
// so that a value such as --hawk-skew -1s, which would quietly turn a
// protection off, stops the command at start instead. Every number flag
// should say its range: most are at least 0 (Min(0)) or at least 1.
type bound[T int | int64 | time.Duration] struct {
	c    *command
	name string
	p    *T
}

// Min refuses values below min.
func (b bound[T]) Min(min T) bound[T] {
	b.c.checks = append(b.c.checks, func() error {
		if *b.p < min {
			return b.refuse("must be at least %v", min)
		}
		return nil
	})
	return b
}

// Max refuses values above max.
func (b bound[T]) Max(max T) bound[T] {
	b.c.checks = append(b.c.checks, func() error {
		if *b.p > max {
			return b.refuse("must be at most %v", max)
		}
		return nil
	})
	return b
}

func (b bound[T]) refuse(format string, arg T) error {
	return fmt.Errorf("--%s %v (or %s): %s", b.name, *b.p, b.c.env[b.name], fmt.Sprintf(format, arg))
}

// parse reads the environment first and the command line second, so a flag
// given on the command line wins over its WEAVE_* variable.
func (c *command) parse(args []string) error {
	for name, env := range c.env {
		if v, ok := os.LookupEnv(env); ok {
			if err := c.flags.Set(name, v); err != nil {
				return fmt.Errorf("environment %s=%q: %v", env, v, err)
			}
		}
	}
	// Flags may come before or after positional arguments
	// ("weave db status --data-dir x"): parse, take a positional, repeat.
	for {
		if err := c.flags.Parse(args); err != nil {
			return err
		}
		rest := c.flags.Args()
		if len(rest) == 0 {
			return c.check()
		}
		c.positional = append(c.positional, rest[0])
		args = rest[1:]
		if rest[0] == "--" {
			c.positional = append(c.positional[:len(c.positional)-1], args...)
			return c.check()
		}
	}
}

func (c *command) check() error {
	for _, f := range c.checks {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func (c *command) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: weave %s %s\n\n%s\n", c.name, c.usage, c.summary)
	var names []string
	c.flags.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nFlags (each also read from the environment variable shown):\n")
	for _, n := range names {
		f := c.flags.Lookup(n)
		typ, help := flag.UnquoteUsage(f)
		head := "  --" + n
		if typ != "" {
			head += " " + typ
		}
		if env, ok := c.env[n]; ok {
			head += "  (" + env + ")"
		}
		fmt.Fprintln(w, head)
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "      %s%s\n", help, def)
	}
}
