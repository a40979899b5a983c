package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/weave-sync/weave"
)

// AddNode adds the node at rawURL with its shard database dsn (`weave node
// add`). checkShard opens the shard, bringing its schema up to date, and
// describes it for the report (its kind and redacted URL).
func (a *Admin) AddNode(ctx context.Context, rawURL, dsn string, capacity int64, checkShard func(ctx context.Context, dsn string) (string, error)) error {
	nodeURL := weave.CleanNodeURL(rawURL)
	if u, err := url.Parse(nodeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("node URL %q: want http(s)://HOST[:PORT][/PREFIX]", rawURL)
	}
	if dsn == "" {
		return errors.New("--database-url is required: the node's shard database")
	}
	shard, err := checkShard(ctx, dsn)
	if err != nil {
		return err
	}
	n, err := a.Migrator.Dir.AddNode(ctx, weave.Node{URL: nodeURL, Capacity: capacity, DatabaseURL: dsn})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Out, "added node %d %s (capacity %d, %s, state %s)\n", n.ID, n.URL, n.Capacity, shard, n.State)
	return nil
}

// ListNodes writes the node table (`weave node list`); redact hides a
// database URL's secrets and health reports whether a shard answers.
func (a *Admin) ListNodes(ctx context.Context, redact func(dsn string) string, health func(ctx context.Context, dsn string) string) error {
	nodes, err := a.Migrator.Dir.Nodes(ctx)
	if err != nil {
		return err
	}
	return WriteNodes(a.Out, nodes, func(n weave.Node) (string, string) {
		dsn, err := ShardURL(n)
		if err != nil {
			return "-", "no database URL recorded"
		}
		return redact(dsn), health(ctx, dsn)
	})
}
