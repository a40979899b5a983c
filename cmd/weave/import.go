package main

import (
	"errors"
	"fmt"

	"github.com/weave-sync/weave/importer"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) importCommand() *cli.Command {
	f := &fleetDB{}
	cmd := &importer.Command{Stdout: a.stdout, Stderr: a.stderr}
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
	cmd.RegisterFlags(c.Flags)
	c.Run = func(args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("unexpected arguments %q", args)
		}
		if cmd.FromStorage == "" || cmd.ToNode == "" {
			return errors.New("--from-storage-url and --to-node are required")
		}
		cmd.Timeout = f.db.Timeout
		cmd.OpenDestination = cmd.OpenDestinationIn(&f.db)
		return cmd.Run(a.ctx)
	}
	return c
}
