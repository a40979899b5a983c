package memcache

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config configures a Store.
type Config struct {
	// Servers is the primary pool (HOST:PORT each). Reads use only this
	// pool; writes invalidate it. Required.
	Servers []string
	// MirrorServers is an optional second pool that every write also
	// invalidates and that Warm can fill, so that it can take over as the
	// primary without a cold start.
	MirrorServers []string
	// Prefix starts every key, so that several services (or test runs) can
	// share one memcached. Default "weave:". At most 64 bytes of printable
	// ASCII without spaces.
	Prefix string

	// Timeout bounds every memcached round trip (connect, read, write).
	// Default 150 ms: a cache that answers slower than the database is no
	// use, and a hung server must not hold requests.
	Timeout time.Duration
	// TTL is the longest any cached figure or record is served after it
	// was read from the database, even with no write in between. It is
	// also the bound on staleness when a weave process can write to the
	// database but not reach memcached (see the package comment).
	// Default 20 minutes.
	TTL time.Duration
	// UsageTTL is the longest cached counts and usage (Usage,
	// CollectionUsage, CollectionCounts) are served. Writes invalidate them
	// at once; the bound is for records that expire by their TTL, which no
	// write announces. Default 30 s; negative disables caching them.
	UsageTTL time.Duration
	// PendingTTL is how long the mark of a write in progress keeps readers
	// off a user's cached figures when the writer never clears it (it
	// crashed or lost memcached). Must exceed the longest database write.
	// Default 60 s.
	PendingTTL time.Duration
	// MaxIdleConns is the number of idle connections kept per server
	// (default 64).
	MaxIdleConns int
	// MaxDirtyUsers bounds how many users with an unconfirmed invalidation
	// a pool remembers; past it the whole pool is distrusted until its
	// keys are versioned past the failure (default 100000).
	MaxDirtyUsers int
	// WarmConcurrency is the number of users Warm fills at once (default 8).
	WarmConcurrency int

	// Observer receives cache metrics (default: none).
	Observer Observer
	// Logger receives pool state changes (default: slog.Default()).
	Logger *slog.Logger
}

// Default values of Config fields.
const (
	DefaultPrefix          = "weave:"
	DefaultTimeout         = 150 * time.Millisecond
	DefaultTTL             = 20 * time.Minute
	DefaultUsageTTL        = 30 * time.Second
	DefaultPendingTTL      = 60 * time.Second
	DefaultMaxIdleConns    = 64
	DefaultMaxDirtyUsers   = 100_000
	DefaultWarmConcurrency = 8
)

func (c Config) withDefaults() (Config, error) {
	if len(c.Servers) == 0 {
		return c, errors.New("memcache: no primary servers configured")
	}
	for _, s := range append(append([]string(nil), c.Servers...), c.MirrorServers...) {
		if s == "" || strings.ContainsAny(s, " \t\r\n") || !strings.Contains(s, ":") {
			return c, fmt.Errorf("memcache: bad server address %q (want HOST:PORT)", s)
		}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if len(c.Prefix) > 64 {
		return c, fmt.Errorf("memcache: key prefix %q is longer than 64 bytes", c.Prefix)
	}
	for i := 0; i < len(c.Prefix); i++ {
		if c.Prefix[i] <= ' ' || c.Prefix[i] >= 0x7f {
			return c, fmt.Errorf("memcache: key prefix %q has spaces or control characters", c.Prefix)
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.UsageTTL == 0 {
		c.UsageTTL = DefaultUsageTTL
	}
	c.UsageTTL = min(c.UsageTTL, c.TTL)
	if c.PendingTTL <= 0 {
		c.PendingTTL = DefaultPendingTTL
	}
	if c.MaxIdleConns <= 0 {
		c.MaxIdleConns = DefaultMaxIdleConns
	}
	if c.MaxDirtyUsers <= 0 {
		c.MaxDirtyUsers = DefaultMaxDirtyUsers
	}
	if c.WarmConcurrency <= 0 {
		c.WarmConcurrency = DefaultWarmConcurrency
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Pool names one of the two pools of a Store.
type Pool int

const (
	// Primary is the pool that serves reads.
	Primary Pool = iota
	// Mirror is the pool that only receives writes (and Warm).
	Mirror
)

// String returns "primary" or "mirror", the pool label of metrics.
func (p Pool) String() string {
	switch p {
	case Primary:
		return "primary"
	case Mirror:
		return "mirror"
	}
	return fmt.Sprintf("Pool(%d)", int(p))
}

// ParsePool parses "primary" or "mirror" (as in `weave cache warm --to`).
func ParsePool(s string) (Pool, error) {
	switch strings.ToLower(s) {
	case "primary":
		return Primary, nil
	case "mirror":
		return Mirror, nil
	}
	return 0, fmt.Errorf("memcache: unknown pool %q (want primary or mirror)", s)
}

// Outcome is how a cacheable read was served.
type Outcome string

// Outcomes of a cacheable read.
const (
	// Hit: served from memcached.
	Hit Outcome = "hit"
	// Miss: not cached; read from the database and (when safe) filled.
	Miss Outcome = "miss"
	// Bypass: the cache could not be trusted for this read (a write to the
	// user in progress, an unconfirmed invalidation, the pool down or
	// failing); read from the database without filling.
	Bypass Outcome = "bypass"
)

// Observer receives the cache's metrics. Calls are synchronous and
// concurrent: implementations must be fast and safe for concurrent use.
// Pool labels are "primary" and "mirror".
type Observer interface {
	// Lookup reports how one cacheable read (op is the Store method, e.g.
	// "CollectionTimestamps") was served by the primary pool.
	Lookup(pool, op string, outcome Outcome)
	// RoundTrip reports one memcached command (cmd is "get", "cas", "add",
	// "incr", "version") with its latency; err is nil on success, including
	// protocol answers such as a miss or a lost compare-and-swap.
	RoundTrip(pool, cmd string, latency time.Duration, err error)
	// PoolState reports a change of a pool's state: healthy is false while
	// the pool is skipped after an error; trusted is false while reads of
	// every user bypass it.
	PoolState(pool string, healthy, trusted bool)
}

// NopObserver is an Observer that ignores everything.
type NopObserver struct{}

// Lookup implements Observer.
func (NopObserver) Lookup(string, string, Outcome) {}

// RoundTrip implements Observer.
func (NopObserver) RoundTrip(string, string, time.Duration, error) {}

// PoolState implements Observer.
func (NopObserver) PoolState(string, bool, bool) {}
