package memcache

import (
	"strings"
	"testing"
)

// TestNodePrefix: every node has keys of its own, the same however its URL
// is written, and valid as a Config.Prefix.
func TestNodePrefix(t *testing.T) {
	a, b := NodePrefix("https://a.example.com/"), NodePrefix("HTTPS://A.example.com:443")
	if a != b || !strings.HasPrefix(a, DefaultPrefix) || a == NodePrefix("https://b.example.com") {
		t.Fatalf("prefixes %q %q %q", a, b, NodePrefix("https://b.example.com"))
	}
	if _, err := (Config{Servers: []string{"127.0.0.1:11211"}, Prefix: a}).withDefaults(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigCheck(t *testing.T) {
	if err := (&Config{MirrorServers: []string{"127.0.0.1:1"}}).Check(); err == nil || !strings.Contains(err.Error(), "--memcache-mirror needs --memcache") {
		t.Fatalf("mirror alone: %v", err)
	}
	c := &Config{Servers: []string{"127.0.0.1:1"}, MirrorServers: []string{"127.0.0.1:2"}}
	if err := c.Check(); err != nil || !c.On() || (&Config{}).On() {
		t.Fatalf("both pools: %v", err)
	}
}
