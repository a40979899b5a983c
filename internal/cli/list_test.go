package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestStringList: a list flag takes its items from the environment or the
// command line, trimmed and without empty ones, and its help shows it as a
// string flag like the others.
func TestStringList(t *testing.T) {
	c := New("x", "", "")
	var hosts []string
	c.StringList(&hosts, "hosts", "a, b", "hosts")
	if strings.Join(hosts, "|") != "a|b" {
		t.Fatalf("default %q", hosts)
	}
	t.Setenv("WEAVE_HOSTS", "env1,env2")
	if err := c.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if strings.Join(hosts, "|") != "env1|env2" {
		t.Fatalf("from the environment: %q", hosts)
	}
	if err := c.Parse([]string{"--hosts", " x ,, y,"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(hosts, "|") != "x|y" {
		t.Fatalf("from the command line: %q", hosts)
	}
	var help bytes.Buffer
	c.PrintUsage(&help)
	if !strings.Contains(help.String(), "--hosts string  (WEAVE_HOSTS)") {
		t.Fatalf("help:\n%s", help.String())
	}
}

func TestReadPassword(t *testing.T) {
	if p, err := ReadPassword(strings.NewReader("ignored\n"), "given"); err != nil || p != "given" {
		t.Fatalf("flag: %q, %v", p, err)
	}
	if p, err := ReadPassword(strings.NewReader("from stdin\r\nsecond\n"), ""); err != nil || p != "from stdin" {
		t.Fatalf("stdin: %q, %v", p, err)
	}
	if _, err := ReadPassword(strings.NewReader("\n"), ""); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Fatalf("empty: %v", err)
	}
}

func TestPasswordFlag(t *testing.T) {
	c := New("x", "", "")
	read := c.PasswordFlag(strings.NewReader("typed\n"))
	if err := c.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if p, err := read(); err != nil || p != "typed" {
		t.Fatalf("from stdin: %q, %v", p, err)
	}
	if err := c.Parse([]string{"--password", "flagged"}); err != nil {
		t.Fatal(err)
	}
	if p, err := read(); err != nil || p != "flagged" {
		t.Fatalf("from the flag: %q, %v", p, err)
	}
}
