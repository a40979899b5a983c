package memcache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/cli"
)

// RegisterFlags registers the memcached flags of `weave serve` and `weave
// cache warm` (--memcache, --memcache-mirror, --memcache-timeout).
func (c *Config) RegisterFlags(cmd *cli.Command) {
	cmd.StringList(&c.Servers, "memcache", "", "memcached servers HOST:PORT[,HOST:PORT…] caching collection timestamps, usage and meta/global + crypto/keys (default: no cache)")
	cmd.StringList(&c.MirrorServers, "memcache-mirror", "", "second pool every write and invalidation also goes to, for moving to a new cache (reads stay on --memcache)")
	cmd.Duration(&c.Timeout, "memcache-timeout", 150*time.Millisecond, "deadline of one memcached round trip; past it the database answers").Min(time.Millisecond)
}

// On reports whether a cache is configured.
func (c *Config) On() bool { return len(c.Servers) > 0 }

// Check refuses a mirror without a primary pool.
func (c *Config) Check() error {
	if !c.On() && len(c.MirrorServers) > 0 {
		return fmt.Errorf("--memcache-mirror needs --memcache")
	}
	return nil
}

// Open puts the cache decorator over the store of the node at nodeURL,
// with the node's own keys (NodePrefix).
func (c Config) Open(nodeURL string, inner weave.Store) (*Store, error) {
	c.Prefix = NodePrefix(nodeURL)
	return New(inner, c)
}

// NodePrefix starts the memcached keys of the node at nodeURL: the default
// prefix and a digest of the node's normalised URL, the same in every
// process serving the node, so that a write through any of them
// invalidates them all. A user keeps its uid when moved, so nodes sharing a
// memcached must not share keys: a process that has not yet seen a move
// could otherwise fill the new node's keys from the old node's data.
func NodePrefix(nodeURL string) string {
	sum := sha256.Sum256([]byte(weave.NodeURLKey(nodeURL)))
	return DefaultPrefix + base64.RawURLEncoding.EncodeToString(sum[:9]) + ":"
}

// WarmAndReport is `weave cache warm`: Warm of uids, with a progress line on
// progress and the result on out.
func (s *Store) WarmAndReport(ctx context.Context, pool Pool, uids []int64, out, progress io.Writer) error {
	start := time.Now()
	stats, err := s.Warm(ctx, pool, slices.Values(uids), len(uids), func(done, total int) {
		fmt.Fprintf(progress, "\rwarming %s: %d/%d users (%.0fs)", pool, done, total, time.Since(start).Seconds())
	})
	fmt.Fprintln(progress)
	if err != nil {
		return fmt.Errorf("warm stopped: %w (running it again is safe)", err)
	}
	fmt.Fprintf(out, "warmed %s pool: %d users, %d filled, %d skipped in %s\n", pool, stats.Users, stats.Filled, stats.Skipped, time.Since(start).Round(time.Millisecond))
	return nil
}
