package memcache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strconv"
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

// WarmCommand is `weave cache warm`: it fills a pool of Config from the
// store under the cache.
type WarmCommand struct {
	Config    Config
	To        string // primary or mirror
	Users     string // comma-separated uids ("": every user of the store)
	PublicURL string // the node whose keys are filled (NodePrefix)
}

// RegisterFlags registers the memcached flags, --to, --users and
// --public-url.
func (w *WarmCommand) RegisterFlags(c *cli.Command) {
	w.Config.RegisterFlags(c)
	c.String(&w.To, "to", "mirror", "pool to fill: primary or mirror")
	c.String(&w.Users, "users", "", "comma-separated uids to warm (default: every user in the storage database)")
	c.String(&w.PublicURL, "public-url", "http://127.0.0.1:8000", "public URL of the node whose database this is, as `weave serve` has it (each node has cache keys of its own)")
}

// Pool is the pool to fill; it fails without --memcache.
func (w *WarmCommand) Pool() (Pool, error) {
	pool, err := ParsePool(w.To)
	if err != nil {
		return pool, err
	}
	if !w.Config.On() {
		return pool, fmt.Errorf("--memcache is required (and --memcache-mirror to warm the mirror)")
	}
	return pool, nil
}

// Run fills pool from store, which it closes, reporting on out and its
// progress on progress.
func (w *WarmCommand) Run(ctx context.Context, pool Pool, store interface {
	weave.Store
	UserIDs(context.Context) ([]int64, error)
}, out, progress io.Writer) error {
	mc, err := w.Config.Open(w.PublicURL, store)
	if err != nil {
		store.Close()
		return err
	}
	defer mc.Close()
	var uids []int64
	if w.Users != "" {
		for _, u := range cli.List(w.Users) {
			uid, err := strconv.ParseInt(u, 10, 64)
			if err != nil || uid < 0 {
				return fmt.Errorf("--users: %q is not a uid", u)
			}
			uids = append(uids, uid)
		}
	} else if uids, err = store.UserIDs(ctx); err != nil {
		return err
	}
	return mc.WarmAndReport(ctx, pool, uids, out, progress)
}
