package loadtest

import (
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// TestFlags: the flags set the session-mix run's Config (mode, legacy
// share) and the push run borrows its target, duration and reporting.
func TestFlags(t *testing.T) {
	f := NewFlags()
	c := cli.New("loadtest", "", "")
	c.EnvPrefix = "WEAVE_LOADTEST_"
	f.RegisterFlags(c)
	err := c.Parse([]string{"--target", "http://127.0.0.1:1", "--mode", "direct", "--node-secret", "s",
		"--legacy-percent", "25", "--duration", "3s", "--push-rate", "40", "--push-sources", "127.0.0.2,127.0.0.3"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.RunConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != Mode("direct") || cfg.LegacyShare != 0.25 || cfg.Duration != 3*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	pc := f.PushRunConfig()
	if pc.Target != cfg.Target || pc.Duration != 3*time.Second || pc.Rate != 40 || len(pc.Sources) != 2 || pc.Conns != 1000 {
		t.Fatalf("push config %+v", pc)
	}
	f.mode = "bogus"
	if _, err := f.RunConfig(); err == nil {
		t.Fatal("a bogus mode passed")
	}
}
