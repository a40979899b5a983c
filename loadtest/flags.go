package loadtest

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// Flags are the flags of `weave loadtest`: the session-mix run's Config,
// the push run's PushConfig (`weave loadtest push`), the keygen directory
// and the report format. Register them on a command whose EnvPrefix is
// the load generator's own, so that a server's variables do not leak in.
type Flags struct {
	Config Config
	Push   PushConfig
	KeyDir string
	JSON   bool

	mode          string
	legacyPercent int
	pushRate      int
	pushSources   string
}

// NewFlags returns the flags with DefaultConfig's defaults.
func NewFlags() *Flags { return &Flags{Config: DefaultConfig()} }

// RegisterFlags registers the flags on c.
func (f *Flags) RegisterFlags(c *cli.Command) {
	cfg, pc := &f.Config, &f.Push
	c.String(&cfg.Target, "target", "", "server base URL, e.g. http://127.0.0.1:8000 (token server mode) or a storage node URL (direct mode)")
	c.String(&f.mode, "mode", string(cfg.Mode), "tokenserver (FxA-style JWTs from --fxa-key-file) or direct (tokens minted with the node's secret)")
	c.String(&cfg.KeyFile, "fxa-key-file", "", "private key written by `weave loadtest keygen` (tokenserver mode)")
	c.Secret(&cfg.MasterSecret, "node-secret", "", "the node's master secret (direct mode); comma-separated, newest last; --node-secret-file DATA_DIR/master-secret reads it from the server's file")
	c.Bool(&cfg.DerivedSecret, "derived-secret", false, "derive the node secret from the master secret per node (Mozilla's DerivedSecrets)")
	c.Int(&cfg.Users, "users", cfg.Users, "simulated users")
	c.Int64(&cfg.FirstUID, "first-uid", cfg.FirstUID, "first uid in direct mode")
	c.String(&cfg.UserPrefix, "user-prefix", cfg.UserPrefix, "prefix of simulated FxA uids in tokenserver mode")
	c.Int(&cfg.Concurrency, "concurrency", cfg.Concurrency, "sessions running at once (at most --users)")
	c.Duration(&cfg.Duration, "duration", cfg.Duration, "how long to run (0: until --sessions)")
	c.Int64(&cfg.Sessions, "sessions", 0, "how many sessions to run (0: until --duration)")
	c.Duration(&cfg.RampUp, "ramp-up", 0, "time over which workers start")
	c.Int64(&cfg.Seed, "seed", 0, "random seed (0: random, printed in the report)")
	c.Duration(&cfg.ThinkTime, "think-time", 0, "pause between a user's sessions")
	c.Bool(&cfg.ClosedLoop, "closed-loop", false, "max-throughput mode: --concurrency sessions back to back (no think time, no ramp-up); the report's sessions/s and session p50/p99 are the server's capacity on the mix")
	c.Int(&cfg.ServerPID, "server-pid", 0, "PID of the server on this machine: report its CPU seconds over the run and per 1,000 sessions (from /proc/PID/stat)")
	c.String(&cfg.Mix, "mix", MixMolotov, "session mix: "+strings.Join(MixNames(), " (default, write-heavy) or ")+" (Firefox-like, mostly reads); see docs/benchmarks.md")
	c.Duration(&cfg.HTTPTimeout, "http-timeout", cfg.HTTPTimeout, "timeout of one request")
	c.Duration(&cfg.MaxBackoff, "max-backoff", cfg.MaxBackoff, "longest server-requested backoff honoured per user")
	c.Duration(&cfg.TokenDuration, "direct-token-duration", cfg.TokenDuration, "lifetime of tokens minted in direct mode")
	c.Bool(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not on this machine")
	c.Bool(&cfg.InfoConfigurationEverySession, "info-configuration-every-session", false, "GET /info/configuration in every session (as Mozilla's Molotov script did)")
	c.Bool(&cfg.Verify, "verify", false, "track every acknowledged record and read all back at the end: report lost or duplicated records")
	c.Int64(&cfg.VerifyMaxRecords, "verify-max-records", cfg.VerifyMaxRecords, "memory cap of --verify")
	c.Int(&f.legacyPercent, "legacy-percent", 0, "percentage of users who sync like Pale Moon over Sync 1.1 (the server needs --legacy; their accounts are created on first use)").Min(0).Max(100)
	c.Secret(&cfg.LegacySecret, "legacy-secret", "", "X-Weave-Secret for creating the 1.1 accounts (the server's --legacy-weave-secret); not needed with --legacy-signup open")
	c.Bool(&f.JSON, "json", false, "print the report as JSON")
	c.Duration(&cfg.ProgressInterval, "progress-interval", cfg.ProgressInterval, "how often the progress line (totals, rates, p99 overall and of the interval) goes to stderr")
	c.Int(&pc.Conns, "push-conns", 1000, "push mode: simulated browsers, each with one WebSocket and one channel (the server's --max-conns and --max-conns-per-client must allow them)").Min(1)
	c.Int(&pc.DialConcurrency, "push-dial-concurrency", 64, "push mode: connections opened at once").Min(1)
	c.Int(&f.pushRate, "push-rate", 0, "push mode: messages per second posted to the endpoints once all connections are up (0: idle only)").Min(0)
	c.Duration(&pc.PingInterval, "push-ping-interval", time.Minute, "push mode: how often each connection sends a ping frame")
	c.Int(&pc.TTL, "push-ttl", 60, "push mode: TTL of the posted messages in seconds").Min(1)
	c.String(&f.pushSources, "push-sources", "", "push mode: comma-separated local addresses (e.g. 127.0.0.2,127.0.0.3) to spread connections over when one runs out of ephemeral ports")
	c.String(&f.KeyDir, "dir", ".", "directory for `keygen` output")
}

// RunConfig is the session-mix run's Config, checked.
func (f *Flags) RunConfig() (Config, error) {
	cfg := f.Config
	cfg.Mode = Mode(f.mode)
	cfg.LegacyShare = float64(f.legacyPercent) / 100
	return cfg, cfg.Validate()
}

// PushRunConfig is the push run's PushConfig, with the target, duration and
// reporting of the session-mix flags.
func (f *Flags) PushRunConfig() PushConfig {
	pc := f.Push
	cfg := f.Config
	pc.Target, pc.AllowRemote, pc.Duration = cfg.Target, cfg.AllowRemote, cfg.Duration
	pc.ServerPID, pc.ProgressInterval = cfg.ServerPID, cfg.ProgressInterval
	pc.Rate = float64(f.pushRate)
	if f.pushSources != "" {
		pc.Sources = strings.Split(f.pushSources, ",")
	}
	return pc
}

// WriteReport writes a run's report to w, as JSON or a table (the JSON
// flag), and fails when the run had errors.
func (f *Flags) WriteReport(w io.Writer, rep interface {
	WriteJSON(io.Writer) error
	WriteTable(io.Writer) error
	OK() bool
}) error {
	var err error
	if f.JSON {
		err = rep.WriteJSON(w)
	} else {
		err = rep.WriteTable(w)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return errors.New("the run had errors (see the report)")
	}
	return nil
}

// WriteKeygen writes the files of `weave loadtest keygen` into KeyDir and
// says what they are on w.
func (f *Flags) WriteKeygen(w io.Writer) error {
	key, jwks, err := Keygen(f.KeyDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s (private key, keep it secret)\nwrote %s: start the server with --fxa-jwks-file %s\n", key, jwks, jwks)
	return nil
}
