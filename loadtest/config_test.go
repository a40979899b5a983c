package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func directConfig() Config {
	c := DefaultConfig()
	c.Mode = ModeDirect
	c.Target = "http://127.0.0.1:8000"
	c.MasterSecret = "secret"
	return c
}

func TestValidateAccepts(t *testing.T) {
	dir := t.TempDir()
	keyFile, _, err := Keygen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ok := []func(*Config){
		func(*Config) {},
		func(c *Config) { c.Duration = 0; c.Sessions = 10 },
		func(c *Config) { c.Sessions = 10 },
		func(c *Config) { c.Target = "http://localhost:8000/" },
		func(c *Config) { c.Target = "http://[::1]:8000" },
		func(c *Config) { c.Target = "https://127.1.2.3/sync" },
		func(c *Config) { c.Target = "http://sync.example.com"; c.AllowRemote = true },
		func(c *Config) { c.Concurrency = c.Users },
		func(c *Config) { c.RampUp = 10 * time.Second },
		func(c *Config) { c.MasterSecret = "old,new" },
		func(c *Config) { c.DerivedSecret = true; c.MasterSecret = "0123456789abcdef" },
		func(c *Config) {
			c.Mode = ModeTokenServer
			c.MasterSecret = ""
			c.KeyFile = keyFile
		},
		// Zero optional fields take their defaults.
		func(c *Config) { c.HTTPTimeout, c.MaxBackoff, c.TokenDuration, c.FirstUID = 0, 0, 0, 0 },
	}
	for i, mod := range ok {
		c := directConfig()
		mod(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Target = "" }, "target URL is missing"},
		{func(c *Config) { c.Target = "ftp://127.0.0.1" }, "scheme must be http or https"},
		{func(c *Config) { c.Target = "http://" }, "has no host"},
		{func(c *Config) { c.Target = "http://127.0.0.1:8000/?x=1" }, "without credentials, query or fragment"},
		{func(c *Config) { c.Target = "http://sync.example.com" }, "not a loopback address"},
		{func(c *Config) { c.Target = "http://10.0.0.1:8000" }, "not a loopback address"},
		{func(c *Config) { c.Target = "http://localhost.example.com" }, "not a loopback address"},
		{func(c *Config) { c.Target = "http://0.0.0.0:8000" }, "not a loopback address"},
		{func(c *Config) { c.Mode = "" }, "mode is missing"},
		{func(c *Config) { c.Mode = "fxa" }, `unknown mode "fxa"`},
		{func(c *Config) { c.MasterSecret = "" }, "needs the storage node's master secret"},
		{func(c *Config) { c.KeyFile = "k.pem" }, "key file is only used in tokenserver mode"},
		{func(c *Config) { c.Mode = ModeTokenServer; c.MasterSecret = "" }, "needs a key file"},
		{func(c *Config) { c.Mode = ModeTokenServer }, "master secret is only used in direct mode"},
		{func(c *Config) {
			c.Mode, c.MasterSecret, c.KeyFile = ModeTokenServer, "", filepath.Join(dir, "missing.pem")
		}, "key file"},
		{func(c *Config) { c.Mode, c.MasterSecret, c.KeyFile = ModeTokenServer, "", garbage }, "garbage.pem"},
		{func(c *Config) { c.Users = 0 }, "users must be at least 1"},
		{func(c *Config) { c.Users = -5 }, "users must be at least 1"},
		{func(c *Config) { c.Users = MaxUsers + 1 }, "users must be at most"},
		{func(c *Config) { c.Concurrency = 0 }, "concurrency must be at least 1"},
		{func(c *Config) { c.Concurrency = -1 }, "concurrency must be at least 1"},
		{func(c *Config) { c.Concurrency = c.Users + 1 }, "exceeds users"},
		{func(c *Config) { c.Duration = -time.Second }, "duration must not be negative"},
		{func(c *Config) { c.Duration = 48 * time.Hour }, "duration must be at most"},
		{func(c *Config) { c.Sessions = -1 }, "sessions must not be negative"},
		{func(c *Config) { c.Sessions = MaxSessions + 1 }, "sessions must be at most"},
		{func(c *Config) { c.Duration, c.Sessions = 0, 0 }, "unbounded"},
		{func(c *Config) { c.RampUp = -time.Second }, "ramp-up must not be negative"},
		{func(c *Config) { c.RampUp = c.Duration }, "ramp-up (30s) must be shorter than the duration"},
		{func(c *Config) { c.ThinkTime = -time.Second }, "think time must not be negative"},
		{func(c *Config) { c.HTTPTimeout = -time.Second }, "HTTP timeout must not be negative"},
		{func(c *Config) { c.HTTPTimeout = time.Hour }, "HTTP timeout must be at most"},
		{func(c *Config) { c.MaxBackoff = -time.Second }, "max backoff must not be negative"},
		{func(c *Config) { c.TokenDuration = time.Second }, "token duration must be at least"},
		{func(c *Config) { c.FirstUID = -1 }, "first uid must not be negative"},
		{func(c *Config) { c.FirstUID = maxUID }, "exceeds the largest storage uid"},
		{func(c *Config) { c.VerifyMaxRecords = -1 }, "verify max records"},
		{func(c *Config) { c.Seed = -1 }, "seed must not be negative"},
		{func(c *Config) { c.MasterSecret = " , " }, "needs the storage node's master secret"},
		{func(c *Config) { c.DerivedSecret, c.MasterSecret = true, "x" }, "master secret length"},
		{func(c *Config) {
			c.Mode, c.MasterSecret, c.KeyFile, c.DerivedSecret = ModeTokenServer, "", "k.pem", true
		}, "derived secret only applies to direct mode"},
	}
	for _, tc := range cases {
		c := directConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("want an error containing %q, got none", tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q does not contain %q", err, tc.want)
		}
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := directConfig()
	c.Users, c.Concurrency, c.Duration = 0, 0, -1
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"users", "concurrency", "duration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	c := directConfig()
	c.Target = "http://192.0.2.1:8000"
	rep, err := Run(t.Context(), c, nil)
	if err == nil || rep != nil {
		t.Fatalf("Run with a remote target: report %v, err %v", rep, err)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "localhost.": true,
		"127.0.0.1": true, "127.255.0.9": true, "::1": true, "[::1]": true, "::ffff:127.0.0.1": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "128.0.0.1": false,
		"example.com": false, "localhost.example.com": false, "mylocalhost": false, "::2": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// The dialer itself refuses non-loopback addresses, whatever URL led there
// (a token server's api_endpoint, DNS).
func TestDialerRefusesRemote(t *testing.T) {
	c := directConfig().withDefaults()
	c.HTTPTimeout = 2 * time.Second
	client := newHTTPClient(c)
	_, err := client.Get("http://192.0.2.1:9/")
	if err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Fatalf("want a refusal, got %v", err)
	}
}
