// Package loadtest replays the realistic Firefox Sync session mix of
// spec/load-model.md (§1.1, the Molotov model, with the §6 checklist) against
// a Sync 1.5 server, either through a token server or directly against a
// storage node with its master secret, and reports latency and errors per
// request kind. It can also verify afterwards that every acknowledged record
// is still there exactly once.
package loadtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/weave-sync/weave/tokenlib"
)

// Mode selects how simulated users obtain their Sync credentials.
type Mode string

const (
	// ModeTokenServer mints FxA-style OAuth access tokens (RS256 JWTs) with the
	// private key written by Keygen and trades them for Sync credentials at
	// <Target>/1.0/sync/1.5, as Firefox does. The server must trust the JWKS
	// that Keygen wrote.
	ModeTokenServer Mode = "tokenserver"
	// ModeDirect mints tokenlib tokens locally with the storage node's master
	// secret, for uids FirstUID..FirstUID+Users-1 and node = Target. It needs
	// no token server, so it can drive any Sync 1.5 storage node.
	ModeDirect Mode = "direct"
)

// Hard caps: whatever the configuration says, a run never exceeds these.
const (
	MaxRunDuration = 24 * time.Hour
	MaxSessions    = 1_000_000_000
	MaxUsers       = 10_000_000
	MaxConcurrency = 10_000
	maxUID         = 9_999_999_999 // storage URLs allow at most 10 digits
	maxBackoffCap  = time.Hour
)

// Config is every option of a load test run. The zero value of an optional
// field means its default (see DefaultConfig); required ones are Target,
// Mode, the mode's secret, Users, Concurrency and a bound (Duration and/or
// Sessions).
type Config struct {
	// Target is the token server base URL (ModeTokenServer) or the storage
	// node's public base URL (ModeDirect), e.g. http://127.0.0.1:8000.
	Target string `json:"target"`
	Mode   Mode   `json:"mode"`
	// KeyFile is the PEM RSA private key written by Keygen (ModeTokenServer).
	KeyFile string `json:"key_file,omitempty"`
	// MasterSecret is the storage node's token secret (ModeDirect). Like
	// `weave serve --master-secret` it may list several, comma-separated,
	// newest last: the last one signs.
	MasterSecret string `json:"-"`
	// DerivedSecret treats MasterSecret as a mozsvc master secret and signs
	// with the secret derived from it for the node Target (tokenserver-1.0.md
	// §8.3 DerivedSecrets), as Mozilla's Python deployments configure nodes.
	DerivedSecret bool `json:"derived_secret,omitempty"`

	// Users is the size of the simulated user pool. A user runs at most one
	// session at a time, like one Firefox profile.
	Users int `json:"users"`
	// FirstUID is the first storage uid in ModeDirect (default 1).
	FirstUID int64 `json:"first_uid,omitempty"`
	// UserPrefix namespaces the FxA uids derived for ModeTokenServer users, so
	// separate runs can use disjoint accounts (default "weave-loadtest").
	UserPrefix string `json:"user_prefix,omitempty"`

	// Concurrency is the number of workers running sessions in parallel. It
	// may not exceed Users: each session needs its own user.
	Concurrency int `json:"concurrency"`
	// Duration bounds the run in time, Sessions in session count; at least one
	// must be set, and both are capped by MaxRunDuration and MaxSessions.
	Duration time.Duration `json:"duration"`
	Sessions int64         `json:"sessions,omitempty"`
	// RampUp spreads the workers' start evenly over this time.
	RampUp time.Duration `json:"ramp_up,omitempty"`
	// Seed makes the session choices deterministic; 0 picks one from the
	// clock (the report shows it so the run can be repeated).
	Seed int64 `json:"seed"`
	// ThinkTime is the pause of a worker between two sessions.
	ThinkTime time.Duration `json:"think_time,omitempty"`
	// ClosedLoop is the max-throughput mode: Concurrency sessions at a time,
	// each started as soon as the previous one ends (no think time, no
	// ramp-up), so the server's answers set the pace and the report's
	// sessions/s is its capacity on the mix.
	ClosedLoop bool `json:"closed_loop,omitempty"`
	// ServerPID is the server's process on this machine: its CPU time
	// (/proc/PID/stat) over the load phase is reported, also per 1,000
	// sessions.
	ServerPID int `json:"server_pid,omitempty"`
	// Mix names the session mix (MixNames; default MixMolotov).
	Mix string `json:"mix,omitempty"`
	// HTTPTimeout bounds each request (default 30s).
	HTTPTimeout time.Duration `json:"http_timeout"`
	// AllowRemote permits targets that are not loopback addresses.
	AllowRemote bool `json:"allow_remote,omitempty"`

	// InfoConfigurationEverySession re-reads /info/configuration in every
	// session, as the Molotov script did (an artefact of the script; Firefox
	// reads it rarely). Off: once per user.
	InfoConfigurationEverySession bool `json:"info_configuration_every_session,omitempty"`
	// Verify tracks every acknowledged record and reads all of them back at
	// the end, reporting lost, duplicated and altered records.
	Verify bool `json:"verify,omitempty"`
	// VerifyMaxRecords bounds the memory of Verify (default 2 000 000): users
	// who write after the limit is reached are left out of the check.
	VerifyMaxRecords int64 `json:"verify_max_records,omitempty"`

	// MaxBackoff bounds how long a user honours X-Weave-Backoff/Retry-After
	// (default 60s), so a misbehaving server cannot stall the run.
	MaxBackoff time.Duration `json:"max_backoff"`
	// TokenDuration is the lifetime of locally minted tokens in ModeDirect
	// (default 1h); they are renewed at half of it, like the token server's.
	TokenDuration time.Duration `json:"token_duration,omitempty"`
	// ProgressInterval is how often the progress line is written (default 1s).
	ProgressInterval time.Duration `json:"-"`

	// LegacyShare is the fraction of users (0 to 1) who are Pale Moon-style
	// Sync 1.1 clients: each signs up at <Target>/user/1.0/ on its first
	// session (an existing account is reused), looks its node up, and
	// syncs over Basic auth the way the UXP client does (newline reads, no
	// batches, no X-If-Unmodified-Since). The server needs `weave serve
	// --legacy` with open sign-up or LegacySecret.
	LegacyShare float64 `json:"legacy_share,omitempty"`
	// LegacySecret is sent as X-Weave-Secret when creating 1.1 accounts.
	LegacySecret string `json:"-"`
}

// DefaultConfig returns the defaults the CLI should start from.
func DefaultConfig() Config {
	return Config{
		Mode:             ModeTokenServer,
		Users:            100,
		FirstUID:         1,
		UserPrefix:       "weave-loadtest",
		Concurrency:      10,
		Duration:         30 * time.Second,
		HTTPTimeout:      30 * time.Second,
		MaxBackoff:       60 * time.Second,
		TokenDuration:    time.Hour,
		VerifyMaxRecords: 2_000_000,
		ProgressInterval: time.Second,
	}
}

// withDefaults fills the optional fields left at zero.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.FirstUID == 0 {
		c.FirstUID = d.FirstUID
	}
	if c.UserPrefix == "" {
		c.UserPrefix = d.UserPrefix
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = d.HTTPTimeout
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.TokenDuration == 0 {
		c.TokenDuration = d.TokenDuration
	}
	if c.VerifyMaxRecords == 0 {
		c.VerifyMaxRecords = d.VerifyMaxRecords
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = d.ProgressInterval
	}
	if c.Mix == "" {
		c.Mix = MixMolotov
	}
	return c
}

// Validate reports every problem of the configuration at once, each as a
// sentence naming the option, or nil. It reads the key file in
// ModeTokenServer, so an unreadable or malformed key is refused here.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

// validate checks the configuration and returns the target URL parsed.
func (c Config) validate() (*url.URL, error) {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	target, err := checkTarget(c.Target, c.AllowRemote)
	if err != nil {
		errs = append(errs, err)
	}

	switch c.Mode {
	case ModeTokenServer:
		if c.MasterSecret != "" {
			bad("master secret is only used in %s mode; %s mode needs the key file from `weave loadtest keygen`", ModeDirect, ModeTokenServer)
		}
		if c.KeyFile == "" {
			bad("%s mode needs a key file (create one with `weave loadtest keygen` and make the server trust its JWKS)", ModeTokenServer)
		} else if _, err := loadSigner(c.KeyFile); err != nil {
			errs = append(errs, err)
		}
	case ModeDirect:
		if c.KeyFile != "" {
			bad("key file is only used in %s mode; %s mode needs the storage node's master secret", ModeTokenServer, ModeDirect)
		}
		if signingSecret(c.MasterSecret) == "" {
			bad("%s mode needs the storage node's master secret", ModeDirect)
		} else if c.DerivedSecret && target != nil {
			if _, err := tokenlib.DerivedNodeSecret(signingSecret(c.MasterSecret), target.String()); err != nil {
				errs = append(errs, err)
			}
		}
	case "":
		bad("mode is missing: use %q or %q", ModeTokenServer, ModeDirect)
	default:
		bad("unknown mode %q: use %q or %q", c.Mode, ModeTokenServer, ModeDirect)
	}

	switch {
	case c.Users <= 0:
		bad("users must be at least 1 (got %d)", c.Users)
	case c.Users > MaxUsers:
		bad("users must be at most %d (got %d)", MaxUsers, c.Users)
	}
	switch {
	case c.Concurrency <= 0:
		bad("concurrency must be at least 1 (got %d)", c.Concurrency)
	case c.Concurrency > MaxConcurrency:
		bad("concurrency must be at most %d (got %d)", MaxConcurrency, c.Concurrency)
	case c.Users > 0 && c.Concurrency > c.Users:
		bad("concurrency (%d) exceeds users (%d): a user runs one session at a time, so raise users or lower concurrency", c.Concurrency, c.Users)
	}
	if c.Mode == ModeDirect {
		switch {
		case c.FirstUID < 0:
			bad("first uid must not be negative (got %d)", c.FirstUID)
		case c.FirstUID+int64(max(c.Users, 1))-1 > maxUID:
			bad("first uid %d + %d users exceeds the largest storage uid %d", c.FirstUID, c.Users, int64(maxUID))
		}
	}

	switch {
	case c.Duration < 0:
		bad("duration must not be negative (got %s)", c.Duration)
	case c.Duration > MaxRunDuration:
		bad("duration must be at most %s (got %s)", MaxRunDuration, c.Duration)
	}
	switch {
	case c.Sessions < 0:
		bad("sessions must not be negative (got %d)", c.Sessions)
	case c.Sessions > MaxSessions:
		bad("sessions must be at most %d (got %d)", int64(MaxSessions), c.Sessions)
	}
	if c.Duration == 0 && c.Sessions == 0 {
		bad("the run is unbounded: set a duration, a session count, or both")
	}
	switch {
	case c.RampUp < 0:
		bad("ramp-up must not be negative (got %s)", c.RampUp)
	case c.Duration > 0 && c.RampUp >= c.Duration:
		bad("ramp-up (%s) must be shorter than the duration (%s)", c.RampUp, c.Duration)
	case c.RampUp > MaxRunDuration:
		bad("ramp-up must be at most %s (got %s)", MaxRunDuration, c.RampUp)
	}
	switch {
	case c.ThinkTime < 0:
		bad("think time must not be negative (got %s)", c.ThinkTime)
	case c.ThinkTime > time.Hour:
		bad("think time must be at most 1h (got %s)", c.ThinkTime)
	}
	switch {
	case c.HTTPTimeout < 0:
		bad("HTTP timeout must not be negative (got %s)", c.HTTPTimeout)
	case c.HTTPTimeout > 10*time.Minute:
		bad("HTTP timeout must be at most 10m (got %s)", c.HTTPTimeout)
	}
	switch {
	case c.MaxBackoff < 0:
		bad("max backoff must not be negative (got %s)", c.MaxBackoff)
	case c.MaxBackoff > maxBackoffCap:
		bad("max backoff must be at most %s (got %s)", maxBackoffCap, c.MaxBackoff)
	}
	if c.Mode == ModeDirect {
		switch {
		case c.TokenDuration < 10*time.Second:
			bad("token duration must be at least 10s (got %s)", c.TokenDuration)
		case c.TokenDuration > 24*time.Hour:
			bad("token duration must be at most 24h (got %s)", c.TokenDuration)
		}
	}
	if c.Seed < 0 {
		bad("seed must not be negative (got %d)", c.Seed)
	}
	if c.DerivedSecret && c.Mode != ModeDirect {
		bad("derived secret only applies to %s mode", ModeDirect)
	}
	if c.VerifyMaxRecords < 0 {
		bad("verify max records must not be negative (got %d)", c.VerifyMaxRecords)
	}
	if !(c.LegacyShare >= 0 && c.LegacyShare <= 1) {
		bad("legacy share must be between 0 and 1 (got %v)", c.LegacyShare)
	}
	if c.ProgressInterval < 0 {
		bad("progress interval must not be negative (got %s)", c.ProgressInterval)
	}
	if c.ClosedLoop && c.ThinkTime > 0 {
		bad("closed loop runs sessions back to back: think time must be 0 (got %s)", c.ThinkTime)
	}
	if c.ClosedLoop && c.RampUp > 0 {
		bad("closed loop starts all sessions at once: ramp-up must be 0 (got %s)", c.RampUp)
	}
	switch {
	case c.ServerPID < 0:
		bad("server pid must not be negative (got %d)", c.ServerPID)
	case c.ServerPID > 0:
		if _, err := readCPU(c.ServerPID); err != nil {
			errs = append(errs, err)
		}
	}
	if _, ok := mixes[c.Mix]; !ok {
		bad("unknown mix %q: use one of %s", c.Mix, strings.Join(MixNames(), ", "))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return target, nil
}

// checkTarget parses a base URL and refuses anything but loopback hosts
// unless remote targets are allowed.
func checkTarget(raw string, allowRemote bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("target URL is missing (e.g. http://127.0.0.1:8000)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("target URL %q has no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("target URL %q: give a base URL without credentials, query or fragment", raw)
	}
	if !allowRemote && !IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("target %q is not a loopback address (127.0.0.0/8, ::1, localhost); pass allow-remote to load-test another host", u.Host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// IsLoopbackHost reports whether host (without port) names the local
// machine: localhost, an address in 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// signingSecret picks the secret that signs from a comma-separated list,
// newest last, as `weave serve --master-secret` takes them.
func signingSecret(list string) string {
	parts := strings.Split(list, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(parts[i]); s != "" {
			return s
		}
	}
	return ""
}

// readKeyFile reads a key file with a message naming the file on failure.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %v", err)
	}
	return b, nil
}
