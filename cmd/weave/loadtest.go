package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/weave-sync/weave/loadtest"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) loadtestCommand() *cli.Command {
	cfg := loadtest.DefaultConfig()
	var mode, keyDir string
	var asJSON bool
	var legacyPercent int
	var pc loadtest.PushConfig
	var pushSources string
	var pushRate int
	c := cli.New("loadtest", "[keygen|push] [flags]",
		"Replay the realistic Firefox sync session mix against a Sync 1.5 server and report latency per request kind.\n"+
			"`weave loadtest push` instead holds --push-conns idle push WebSockets (weave serve --push) and posts --push-rate messages/s to their endpoints, reporting POST-to-notification latency.\n"+
			"`weave loadtest keygen --dir D` writes an FxA-style signing key and the JWKS a server must trust (weave serve --fxa-jwks-file D/"+loadtest.JWKSFileName+").\n"+
			"Only loopback targets are allowed unless --allow-remote is given.")
	c.EnvPrefix = "WEAVE_LOADTEST_"
	c.String(&cfg.Target, "target", "", "server base URL, e.g. http://127.0.0.1:8000 (token server mode) or a storage node URL (direct mode)")
	c.String(&mode, "mode", string(cfg.Mode), "tokenserver (FxA-style JWTs from --fxa-key-file) or direct (tokens minted with the node's secret)")
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
	c.String(&cfg.Mix, "mix", loadtest.MixMolotov, "session mix: "+strings.Join(loadtest.MixNames(), " (default, write-heavy) or ")+" (Firefox-like, mostly reads); see docs/benchmarks.md")
	c.Duration(&cfg.HTTPTimeout, "http-timeout", cfg.HTTPTimeout, "timeout of one request")
	c.Duration(&cfg.MaxBackoff, "max-backoff", cfg.MaxBackoff, "longest server-requested backoff honoured per user")
	c.Duration(&cfg.TokenDuration, "direct-token-duration", cfg.TokenDuration, "lifetime of tokens minted in direct mode")
	c.Bool(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not on this machine")
	c.Bool(&cfg.InfoConfigurationEverySession, "info-configuration-every-session", false, "GET /info/configuration in every session (as Mozilla's Molotov script did)")
	c.Bool(&cfg.Verify, "verify", false, "track every acknowledged record and read all back at the end: report lost or duplicated records")
	c.Int64(&cfg.VerifyMaxRecords, "verify-max-records", cfg.VerifyMaxRecords, "memory cap of --verify")
	c.Int(&legacyPercent, "legacy-percent", 0, "percentage of users who sync like Pale Moon over Sync 1.1 (the server needs --legacy; their accounts are created on first use)").Min(0).Max(100)
	c.Secret(&cfg.LegacySecret, "legacy-secret", "", "X-Weave-Secret for creating the 1.1 accounts (the server's --legacy-weave-secret); not needed with --legacy-signup open")
	c.Bool(&asJSON, "json", false, "print the report as JSON")
	c.Duration(&cfg.ProgressInterval, "progress-interval", cfg.ProgressInterval, "how often the progress line (totals, rates, p99 overall and of the interval) goes to stderr")
	c.Int(&pc.Conns, "push-conns", 1000, "push mode: simulated browsers, each with one WebSocket and one channel (the server's --max-conns and --max-conns-per-client must allow them)").Min(1)
	c.Int(&pc.DialConcurrency, "push-dial-concurrency", 64, "push mode: connections opened at once").Min(1)
	c.Int(&pushRate, "push-rate", 0, "push mode: messages per second posted to the endpoints once all connections are up (0: idle only)").Min(0)
	c.Duration(&pc.PingInterval, "push-ping-interval", time.Minute, "push mode: how often each connection sends a ping frame")
	c.Int(&pc.TTL, "push-ttl", 60, "push mode: TTL of the posted messages in seconds").Min(1)
	c.String(&pushSources, "push-sources", "", "push mode: comma-separated local addresses (e.g. 127.0.0.2,127.0.0.3) to spread connections over when one runs out of ephemeral ports")
	c.String(&keyDir, "dir", ".", "directory for `keygen` output")
	c.Run = func(args []string) error {
		if len(args) == 1 && args[0] == "keygen" {
			key, jwks, err := loadtest.Keygen(keyDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %s (private key, keep it secret)\nwrote %s: start the server with --fxa-jwks-file %s\n", key, jwks, jwks)
			return nil
		}
		if len(args) == 1 && args[0] == "push" {
			pc.Target, pc.AllowRemote, pc.Duration = cfg.Target, cfg.AllowRemote, cfg.Duration
			pc.ServerPID, pc.ProgressInterval = cfg.ServerPID, cfg.ProgressInterval
			pc.Rate = float64(pushRate)
			if pushSources != "" {
				pc.Sources = strings.Split(pushSources, ",")
			}
			rep, err := loadtest.RunPush(a.ctx, pc, a.stderr)
			if err != nil {
				return fmt.Errorf("%w\n(see `weave loadtest --help`)", err)
			}
			return writeReport(a, rep, asJSON)
		}
		if len(args) != 0 {
			return fmt.Errorf("unexpected arguments %q (`keygen` and `push` are the subcommands)", args)
		}
		cfg.Mode = loadtest.Mode(mode)
		cfg.LegacyShare = float64(legacyPercent) / 100
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w\n(see `weave loadtest --help`)", err)
		}
		rep, err := loadtest.Run(a.ctx, cfg, a.stderr)
		if err != nil {
			return err
		}
		return writeReport(a, rep, asJSON)
	}
	return c
}

func writeReport(a *app, rep interface {
	WriteJSON(io.Writer) error
	WriteTable(io.Writer) error
	OK() bool
}, asJSON bool) error {
	var err error
	if asJSON {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteTable(a.stdout)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return errors.New("the run had errors (see the report)")
	}
	return nil
}
