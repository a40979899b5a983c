package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// StringList registers a comma-separated list flag: *p is its items, spaces
// trimmed and empty ones dropped (as List does). Its help shows it as a
// string flag.
func (c *Command) StringList(p *[]string, name, def, help string) {
	c.env[name] = c.envName(name)
	*p = List(def)
	c.Flags.Var(listValue{p}, name, help)
}

// listValue is the flag.Value of StringList.
type listValue struct{ p *[]string }

func (v listValue) String() string {
	if v.p == nil { // the zero value flag.PrintDefaults makes
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v listValue) Set(s string) error {
	*v.p = List(s)
	return nil
}

// ReadPassword is the password of a command: flag when given, else the
// first line of r (standard input).
func ReadPassword(r io.Reader, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password: give --password or one line on standard input (%v)", err)
	}
	return line, nil
}

// PasswordFlag registers --password (a Secret, so also --password-file) for
// the create and reset-password subcommands, and returns what reads the
// password: the flag, or else the first line of stdin (ReadPassword).
func (c *Command) PasswordFlag(stdin io.Reader) func() (string, error) {
	var password string
	c.Secret(&password, "password", "", "password for create and reset-password (prefer standard input or --password-file)")
	return func() (string, error) { return ReadPassword(stdin, password) }
}
