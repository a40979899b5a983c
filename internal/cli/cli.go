// Package cli is the command framework of the weave binary: subcommands
// whose flags each also read an environment variable, numeric flags with
// ranges, secret flags that may come from files, and the dispatcher.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Command is one subcommand: its flags, where every flag also reads a WEAVE_*
// environment variable, and what it runs.
type Command struct {
	Name    string
	Summary string
	Usage   string // argument synopsis after the name
	Flags   *flag.FlagSet
	// Run runs the command with its positional arguments.
	Run func(args []string) error
	// EnvPrefix starts every flag's environment variable ("WEAVE_"; the
	// load tester uses its own so a server's variables do not leak in).
	// Set it before registering flags.
	EnvPrefix string
	env       map[string]string // flag name → environment variable
	// positional are the non-flag arguments, wherever they stood.
	positional []string
	// checks run after parsing; each refuses a value out of its flag's range.
	checks []func() error
	// secrets are the flags that also take their value from a file.
	secrets []*secretFlag
	// phase is where values are being read from now: "environment" or
	// "command line" (secret flags record it to tell which one wins).
	phase string
	// warnings are printed by run before the command starts.
	warnings []string
}

// New returns a command of the weave binary.
func New(name, usage, summary string) *Command {
	fs := flag.NewFlagSet("weave "+name, flag.ContinueOnError)
	c := &Command{Name: name, Summary: summary, Usage: usage, Flags: fs, env: map[string]string{}, EnvPrefix: "WEAVE_"}
	fs.Usage = func() { c.PrintUsage(fs.Output()) }
	return c
}

func (c *Command) envName(flagName string) string {
	return c.EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Env is the environment variable of a flag, if it has one.
func (c *Command) Env(flagName string) (string, bool) {
	v, ok := c.env[flagName]
	return v, ok
}

// Warnings are what parsing found worth telling before the command runs.
func (c *Command) Warnings() []string { return c.warnings }

// Args are the positional arguments, once parsed.
func (c *Command) Args() []string { return c.positional }

func (c *Command) String(p *string, name, def, help string) {
	c.env[name] = c.envName(name)
	c.Flags.StringVar(p, name, def, help)
}

func (c *Command) Int(p *int, name string, def int, help string) Bound[int] {
	c.env[name] = c.envName(name)
	c.Flags.IntVar(p, name, def, help)
	return Bound[int]{c, name, p}
}

func (c *Command) Int64(p *int64, name string, def int64, help string) Bound[int64] {
	c.env[name] = c.envName(name)
	c.Flags.Int64Var(p, name, def, help)
	return Bound[int64]{c, name, p}
}

func (c *Command) Bool(p *bool, name string, def bool, help string) {
	c.env[name] = c.envName(name)
	c.Flags.BoolVar(p, name, def, help)
}

func (c *Command) Duration(p *time.Duration, name string, def time.Duration, help string) Bound[time.Duration] {
	c.env[name] = c.envName(name)
	c.Flags.DurationVar(p, name, def, help)
	return Bound[time.Duration]{c, name, p}
}

// Bound restricts a numeric flag to a range, checked once parsing is done,
// so that a value such as --hawk-skew -1s, which would quietly turn a
// protection off, stops the command at start instead. Every number flag
// should say its range: most are at least 0 (Min(0)) or at least 1.
type Bound[T int | int64 | time.Duration] struct {
	c    *Command
	name string
	p    *T
}

// Min refuses values below min.
func (b Bound[T]) Min(min T) Bound[T] {
	b.c.checks = append(b.c.checks, func() error {
		if *b.p < min {
			return b.refuse("must be at least %v", min)
		}
		return nil
	})
	return b
}

// Max refuses values above max.
func (b Bound[T]) Max(max T) Bound[T] {
	b.c.checks = append(b.c.checks, func() error {
		if *b.p > max {
			return b.refuse("must be at most %v", max)
		}
		return nil
	})
	return b
}

func (b Bound[T]) refuse(format string, arg T) error {
	return fmt.Errorf("--%s %v (or %s): %s", b.name, *b.p, b.c.env[b.name], fmt.Sprintf(format, arg))
}

// Secret registers a flag holding a secret (a token, a password, a
// database URL with a password in it) together with NAME-file, a file to
// read it from, each with its environment variable (WEAVE_NAME and
// WEAVE_NAME_FILE). Secrets in files stay out of the environment, which
// other processes of the same user, crash reports and `ps e` can see, and
// out of shell history. Giving both at the same level is an error; the
// command line wins over the environment as for every flag.
func (c *Command) Secret(p *string, name, def, help string) {
	c.secret(p, name, def, help, true)
}

// SecretNoEnv is Secret without the environment variables.
func (c *Command) SecretNoEnv(p *string, name, def, help string) {
	c.secret(p, name, def, help, false)
}

func (c *Command) secret(p *string, name, def, help string, env bool) {
	*p = def
	s := &secretFlag{name: name, p: p}
	s.value = phaseValue{c: c, src: &s.valueFrom, set: func(v string) { *p = v }, get: func() string { return *p }}
	s.file = phaseValue{c: c, src: &s.fileFrom, set: func(v string) { s.path = v }, get: func() string { return s.path }}
	c.Flags.Var(s.value, name, help)
	c.Flags.Var(s.file, name+"-file", "file holding --"+name+" (keeps it out of the environment and the command line; a trailing newline is ignored)")
	if env {
		c.env[name] = c.envName(name)
		c.env[name+"-file"] = c.envName(name + "-file")
	}
	c.secrets = append(c.secrets, s)
}

// secretFlag is a secret and the file it may come from.
type secretFlag struct {
	name                string
	p                   *string
	path                string
	value, file         phaseValue
	valueFrom, fileFrom string // "", "environment" or "command line"
}

// phaseValue is a string flag.Value that records where it was set.
type phaseValue struct {
	c   *Command
	src *string
	set func(string)
	get func() string
}

func (v phaseValue) String() string {
	if v.get == nil { // the zero value flag.PrintDefaults makes
		return ""
	}
	return v.get()
}

func (v phaseValue) Set(s string) error {
	v.set(s)
	*v.src = v.c.phase
	return nil
}

// maxSecretFile bounds what is read from a secret file (a device or a
// wrong path must not fill memory).
const maxSecretFile = 64 << 10

// resolve reads the secret's file when the file is what was given last.
func (s *secretFlag) resolve(c *Command) error {
	if s.fileFrom == "" {
		return nil
	}
	if s.valueFrom == s.fileFrom {
		return fmt.Errorf("--%s and --%s-file both given (%s): give one", s.name, s.name, s.fileFrom)
	}
	if s.valueFrom == "command line" { // the command line wins
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("--%s-file: %w", s.name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("--%s-file: %w", s.name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("--%s-file %s: not a regular file", s.name, s.path)
	}
	// Anyone who can write the file can set the secret: refuse. Being
	// readable by others is only warned about: Docker and Kubernetes mount
	// secrets 0444/0644 inside a container no other user shares.
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("--%s-file %s is writable by every user (mode %04o): chmod 600 it", s.name, s.path, fi.Mode().Perm())
	}
	if fi.Mode().Perm()&0o044 != 0 {
		c.warnings = append(c.warnings, fmt.Sprintf("warning: --%s-file %s is readable by other users (mode %04o); chmod 600 it unless only this service can see it (as in a container)", s.name, s.path, fi.Mode().Perm()))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return fmt.Errorf("--%s-file: %w", s.name, err)
	}
	if len(b) > maxSecretFile {
		return fmt.Errorf("--%s-file %s: larger than %d bytes", s.name, s.path, maxSecretFile)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return fmt.Errorf("--%s-file %s is empty", s.name, s.path)
	}
	*s.p = v
	return nil
}

// Parse reads the environment first and the command line second, so a flag
// given on the command line wins over its WEAVE_* variable.
func (c *Command) Parse(args []string) error {
	c.phase = "environment"
	for name, env := range c.env {
		if v, ok := os.LookupEnv(env); ok {
			if err := c.Flags.Set(name, v); err != nil {
				return fmt.Errorf("environment %s=%q: %v", env, v, err)
			}
		}
	}
	// Flags may come before or after positional arguments
	// ("weave db status --data-dir x"): parse, take a positional, repeat.
	c.phase = "command line"
	for {
		if err := c.Flags.Parse(args); err != nil {
			return err
		}
		rest := c.Flags.Args()
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

func (c *Command) check() error {
	for _, s := range c.secrets {
		if err := s.resolve(c); err != nil {
			return err
		}
	}
	for _, f := range c.checks {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// PrintUsage writes the command's help.
func (c *Command) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: weave %s %s\n\n%s\n", c.Name, c.Usage, c.Summary)
	var names []string
	c.Flags.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nFlags (each also read from the environment variable shown):\n")
	for _, n := range names {
		f := c.Flags.Lookup(n)
		typ, help := flag.UnquoteUsage(f)
		switch f.Value.(type) {
		case phaseValue, listValue:
			typ = "string"
		}
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
