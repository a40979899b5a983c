package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

type importFlags struct {
	fleetDB
	fromStorage, fromTokens string
	fromUsers               string
	fromSchema              string
	fromNode, toNode        string
	service                 string
	users                   int
	reimport                bool
}

func (a *app) importCommand() *cli.Command {
	f := &importFlags{}
	c := cli.New("import", "--from-storage-url mysql://…|postgres://…|sqlite:///… [--from-token-url …|--from-users-url …] --to-node URL [--users N]", `Import the users of a Mozilla Sync server into a weave node.
  Sync 1.5 sources: syncstorage-rs (MySQL or PostgreSQL) and the older Python
  server-syncstorage (MySQL or PostgreSQL, sharded bso tables or not),
  recognised from the tables of --from-storage-url, with the tokenserver
  database of either (users, services, nodes). Copies each user's
  collections, records, timestamps, expiries and open batches into the
  node's shard, verifies them, then creates the user's token records with
  the same uid, generation, client state and key-change time: clients keep
  syncing without uploading again, even in the middle of a batch upload.
  Users already imported are skipped, so an interrupted import is finished
  by running it again. Stop the old server first: a run names the users
  imported before whose data changed at the old server since, and fails;
  --reimport-changed imports them again.
  Sync 1.1 sources (Pale Moon, Basilisk): FSyncMS (SQLite or MySQL) and
  Mozilla's 2011 server-storage (MySQL or SQLite; its users in the same
  database or in server-reg's, --from-users-url). Accounts keep their
  username, e-mail and password (the old hash is checked at the first login
  and replaced), records and timestamps; disabled accounts stay out.`)
	f.register(c)
	c.Flags.StringVar(&f.fromStorage, "from-storage-url", "", "the old storage database: mysql://USER:PASS@HOST:PORT/DB or postgres://USER:PASS@HOST:PORT/DB?sslmode=disable")
	c.Flags.StringVar(&f.fromTokens, "from-token-url", "", "the old tokenserver database, same forms (default: --from-storage-url; Sync 1.5 sources)")
	c.Flags.StringVar(&f.fromUsers, "from-users-url", "", "server-storage: the database of its users (server-core's users or user table) when not --from-storage-url")
	c.Flags.StringVar(&f.fromSchema, "from-schema", "auto", "schema of the storage database: auto (recognise it), "+importer.SchemaNames())
	c.Flags.StringVar(&f.fromNode, "from-node", "", "import only the users the tokenserver assigned to this node URL (default: all)")
	c.Flags.StringVar(&f.toNode, "to-node", "", "URL of the weave node that takes the users (as listed by weave node list)")
	c.Flags.StringVar(&f.service, "service", "sync-1.5", "tokenserver service whose users are imported")
	c.Flags.IntVar(&f.users, "users", 0, "import at most this many accounts (0: all)")
	c.Flags.BoolVar(&f.reimport, "reimport-changed", false, "import again the users imported before whose data changed at the old server since, replacing their data in weave (and what their clients wrote to weave since)")
	c.Run = func(args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("unexpected arguments %q", args)
		}
		if f.fromStorage == "" || f.toNode == "" {
			return errors.New("--from-storage-url and --to-node are required")
		}
		cmd := &importer.Command{
			FromStorage: f.fromStorage, FromTokens: f.fromTokens, FromUsers: f.fromUsers,
			FromSchema: f.fromSchema, FromNode: f.fromNode, Service: f.service,
			Users: f.users, Reimport: f.reimport, Timeout: f.db.timeout,
			OpenDestination: f.openDestination, Stdout: a.stdout, Stderr: a.stderr,
		}
		return cmd.Run(a.ctx)
	}
	return c
}

// openDestination opens weave's token database and the shard of --to-node,
// where an import writes.
func (f *importFlags) openDestination(ctx context.Context) (*sqlstore.TokenDB, weave.Node, *sqlstore.Store, error) {
	tokens, err := f.openTokenDB(ctx)
	if err != nil {
		return nil, weave.Node{}, nil, err
	}
	node, err := tokens.NodeByURL(ctx, weave.CleanNodeURL(f.toNode))
	if err != nil {
		tokens.Close()
		return nil, weave.Node{}, nil, fmt.Errorf("node %s: %w (add it with `weave node add`)", f.toNode, err)
	}
	dsn, err := f.shardURL(node)
	if err != nil {
		tokens.Close()
		return nil, weave.Node{}, nil, err
	}
	shardDB, _, err := openShardDB(ctx, dsn, &f.db, true)
	if err != nil {
		tokens.Close()
		return nil, weave.Node{}, nil, err
	}
	return tokens, node, sqlstore.NewStore(shardDB, sqlstore.StoreOptions{}), nil
}
