package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/internal/cli"
	"github.com/weave-sync/weave/sqlstore"
)

type nodeFlags struct {
	fleetDB
	nodeDSN    string
	capacity   int64
	retryAfter string
	backoff    string
	to         string
	parallel   int
}

func (a *app) nodeCommand() *cli.Command {
	f := &nodeFlags{}
	c := cli.New("node", "add|list|set-state|drain ... [flags]", `Manage the storage nodes of the fleet (in the token database).
  weave node add URL --database-url DSN [--capacity N]
  weave node list
  weave node set-state URL up|backoff|draining|down [--retry-after S] [--backoff S]
  weave node drain URL [--to URL,...] [--parallel N]`)
	f.register(c)
	// Not read from WEAVE_DATABASE_URL: that names the storage database
	// of `weave serve`, not a new node's.
	c.SecretNoEnv(&f.nodeDSN, "database-url", "", "node add: the node's shard database (sqlite:///abs/path.db, mysql://… or postgres://…)")
	c.Int64(&f.capacity, "capacity", 100000, "node add: users the node takes").Min(0)
	c.String(&f.retryAfter, "retry-after", "", "node set-state: Retry-After sent to the users of a down node, in seconds (default: keep the node's; 0 means 300)")
	c.String(&f.backoff, "backoff", "", "node set-state: X-Weave-Backoff sent to the users of a backoff node, in seconds (default: keep the node's; 0 means 300)")
	c.String(&f.to, "to", "", "node drain: comma-separated URLs of the nodes that take the users (default: every other node that is up)")
	c.Int(&f.parallel, "parallel", 4, "node drain: users moved at once").Min(1)
	c.Run = func(args []string) error {
		if len(args) == 0 {
			return errors.New("want add, list, set-state or drain (see `weave node --help`)")
		}
		return f.withAdmin(a, func(ctx context.Context, tokens *sqlstore.TokenDB, adm *fleet.Admin) error {
			switch args[0] {
			case "add":
				if len(args) != 2 {
					return errors.New("usage: weave node add URL --database-url DSN [--capacity N]")
				}
				nodeURL := weave.CleanNodeURL(args[1])
				if u, err := url.Parse(nodeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("node URL %q: want http(s)://HOST[:PORT][/PREFIX]", args[1])
				}
				if f.nodeDSN == "" {
					return errors.New("--database-url is required: the node's shard database")
				}
				db, be, err := openShardDB(ctx, f.nodeDSN, &f.db, true)
				if err != nil {
					return err
				}
				db.Close()
				n, err := tokens.AddNode(ctx, weave.Node{URL: nodeURL, Capacity: f.capacity, DatabaseURL: f.nodeDSN})
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "added node %d %s (capacity %d, %s shard %s, state %s)\n", n.ID, n.URL, n.Capacity, be.Name, sqlstore.RedactURL(f.nodeDSN), n.State)
				return nil
			case "list":
				return a.nodeList(ctx, f, tokens)
			case "set-state":
				if len(args) != 3 {
					return errors.New("usage: weave node set-state URL up|backoff|draining|down [--retry-after S] [--backoff S]")
				}
				return adm.SetState(ctx, args[1], args[2], f.retryAfter, f.backoff)
			case "drain":
				if len(args) != 2 {
					return errors.New("usage: weave node drain URL [--to URL,...] [--parallel N]")
				}
				return adm.Drain(ctx, args[1], cli.List(f.to), f.parallel)
			}
			return fmt.Errorf("unknown node command %q: want add, list, set-state or drain", args[0])
		})
	}
	return c
}

func (a *app) nodeList(ctx context.Context, f *nodeFlags, tokens interface {
	Nodes(context.Context) ([]weave.Node, error)
}) error {
	nodes, err := tokens.Nodes(ctx)
	if err != nil {
		return err
	}
	return fleet.WriteNodes(a.stdout, nodes, func(n weave.Node) (string, string) {
		dsn, err := f.shardURL(n)
		if err != nil {
			return "-", "no database URL recorded"
		}
		return sqlstore.RedactURL(dsn), shardHealth(ctx, dsn, f)
	})
}

// shardHealth pings a shard and checks its schema.
func shardHealth(ctx context.Context, dsn string, f *nodeFlags) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	db, _, err := openShardDB(ctx, dsn, &f.db, false)
	if err != nil {
		return "FAIL: " + err.Error()
	}
	defer db.Close()
	if err := db.Read.PingContext(ctx); err != nil {
		return "FAIL: " + err.Error()
	}
	return fmt.Sprintf("ok (%s)", time.Since(start).Round(time.Millisecond))
}
