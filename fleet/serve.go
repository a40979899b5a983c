package fleet

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/weave-sync/weave"
)

// Serve serves the process's own node at ownURL over shard (see ServeOwn)
// and the other nodes spec names (see AddNodes), keeps the Watcher's node
// states and move marks current until ctx ends, and returns the handler of
// every request to a node: the Router, or the own node's front end when it
// is the only one.
func (s *NodeSet) Serve(ctx context.Context, dir weave.TokenDB, ownURL string, shard Shard, spec string, refresh time.Duration) (http.Handler, error) {
	own, err := s.ServeOwn(ctx, ownURL, shard)
	if err != nil {
		return nil, err
	}
	follow, err := s.AddNodes(ctx, dir, spec)
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.cfg.Watcher.Refresh(ctx); err != nil {
		s.cfg.Log.Warn("fleet: first read of node states failed", "err", err)
	}
	go s.cfg.Watcher.Run(ctx)
	if follow {
		// Nodes added later (weave node add) are served as they appear,
		// not only after a restart: the token server may hand them new
		// users at once.
		go s.Follow(ctx, refresh)
		return s.cfg.Router, nil
	}
	if strings.TrimSpace(spec) == "" {
		return own.Handler(), nil
	}
	return s.cfg.Router, nil
}

// ShardURL is the database of node n, as recorded in the token database by
// `weave node add` or by the `weave serve` that serves the node.
func ShardURL(n weave.Node) (string, error) {
	if n.DatabaseURL == "" {
		return "", fmt.Errorf("node %s has no database URL recorded: start its `weave serve` once (it records its database) or re-add it with `weave node add URL --database-url DSN`", n.URL)
	}
	return n.DatabaseURL, nil
}
