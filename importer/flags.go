package importer

import (
	"context"
	"flag"
	"fmt"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/sqlstore"
)

// RegisterFlags registers the flags of `weave import` that say what to
// import and where. They have no environment variables: an import names
// another server's databases, which a server's WEAVE_* settings must not
// stand in for.
func (c *Command) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.FromStorage, "from-storage-url", "", "the old storage database: mysql://USER:PASS@HOST:PORT/DB or postgres://USER:PASS@HOST:PORT/DB?sslmode=disable")
	fs.StringVar(&c.FromTokens, "from-token-url", "", "the old tokenserver database, same forms (default: --from-storage-url; Sync 1.5 sources)")
	fs.StringVar(&c.FromUsers, "from-users-url", "", "server-storage: the database of its users (server-core's users or user table) when not --from-storage-url")
	fs.StringVar(&c.FromSchema, "from-schema", "auto", "schema of the storage database: auto (recognise it), "+SchemaNames())
	fs.StringVar(&c.FromNode, "from-node", "", "import only the users the tokenserver assigned to this node URL (default: all)")
	fs.StringVar(&c.ToNode, "to-node", "", "URL of the weave node that takes the users (as listed by weave node list)")
	fs.StringVar(&c.Service, "service", "sync-1.5", "tokenserver service whose users are imported")
	fs.IntVar(&c.Users, "users", 0, "import at most this many accounts (0: all)")
	fs.BoolVar(&c.Reimport, "reimport-changed", false, "import again the users imported before whose data changed at the old server since, replacing their data in weave (and what their clients wrote to weave since)")
}

// OpenDestinationIn is an OpenDestination that opens weave's token
// database as db finds it and the shard of the node at ToNode.
func (c *Command) OpenDestinationIn(db *sqlstore.Config) func(ctx context.Context) (*sqlstore.TokenDB, weave.Node, *sqlstore.Store, error) {
	return func(ctx context.Context) (*sqlstore.TokenDB, weave.Node, *sqlstore.Store, error) {
		tokens, err := db.OpenTokenDB(ctx)
		if err != nil {
			return nil, weave.Node{}, nil, err
		}
		node, shard, err := openNode(ctx, db, tokens, c.ToNode)
		if err != nil {
			tokens.Close()
			return nil, weave.Node{}, nil, err
		}
		return tokens, node, sqlstore.NewStore(shard, sqlstore.StoreOptions{}), nil
	}
}

func openNode(ctx context.Context, db *sqlstore.Config, tokens *sqlstore.TokenDB, nodeURL string) (weave.Node, *sqlstore.DB, error) {
	node, err := tokens.NodeByURL(ctx, weave.CleanNodeURL(nodeURL))
	if err != nil {
		return node, nil, fmt.Errorf("node %s: %w (add it with `weave node add`)", nodeURL, err)
	}
	dsn, err := fleet.ShardURL(node)
	if err != nil {
		return node, nil, err
	}
	shard, _, err := db.OpenShard(ctx, dsn, true)
	return node, shard, err
}
