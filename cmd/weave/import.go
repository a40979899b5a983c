package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weave-sync/weave/importer"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
)

type importFlags struct {
	fleetDB
	fromStorage, fromTokens string
	fromNode, toNode        string
	service                 string
	users                   int
}

func (a *app) importCommand() *command {
	f := &importFlags{}
	c := newCommand("import", "--from-storage-url mysql://… [--from-token-url mysql://…] --to-node URL [--users N]", `Import the users of a Mozilla syncstorage-rs server (MySQL) into a weave node.
  Reads the syncstorage database (bso, collections, user_collections) and the
  tokenserver database (users, services, nodes), copies each user's data into
  the node's shard, verifies it, then creates the user's token records with
  the same uid, generation, client state and key-change time: clients keep
  syncing without uploading again. Users already imported are skipped, so an
  interrupted import is finished by running it again. Stop the old server
  first.`)
	f.register(c)
	c.flags.StringVar(&f.fromStorage, "from-storage-url", "", "the syncstorage-rs storage database: mysql://USER:PASS@HOST:PORT/DB")
	c.flags.StringVar(&f.fromTokens, "from-token-url", "", "the tokenserver database: mysql://USER:PASS@HOST:PORT/DB (default: --from-storage-url)")
	c.flags.StringVar(&f.fromNode, "from-node", "", "import only the users the tokenserver assigned to this node URL (default: all)")
	c.flags.StringVar(&f.toNode, "to-node", "", "URL of the weave node that takes the users (as listed by weave node list)")
	c.flags.StringVar(&f.service, "service", "sync-1.5", "tokenserver service whose users are imported")
	c.flags.IntVar(&f.users, "users", 0, "import at most this many accounts (0: all)")
	c.run = func(args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("unexpected arguments %q", args)
		}
		if f.fromStorage == "" || f.toNode == "" {
			return errors.New("--from-storage-url and --to-node are required")
		}
		if f.fromTokens == "" {
			f.fromTokens = f.fromStorage
		}
		for _, u := range []string{f.fromStorage, f.fromTokens} {
			if !strings.HasPrefix(u, "mysql://") {
				return fmt.Errorf("source %s: only MySQL/MariaDB syncstorage-rs databases (mysql://…) can be imported", redactAny(u))
			}
		}
		ctx := a.ctx
		opts := mysql.Options{MaxOpenConns: 4, Timeout: f.db.timeout}
		src, err := mysql.Open(ctx, f.fromStorage, opts)
		if err != nil {
			return fmt.Errorf("source storage database: %w", err)
		}
		defer src.Close()
		srcTokens := src
		if f.fromTokens != f.fromStorage {
			if srcTokens, err = mysql.Open(ctx, f.fromTokens, opts); err != nil {
				return fmt.Errorf("source token database: %w", err)
			}
			defer srcTokens.Close()
		}
		tokens, err := f.openTokenDB(ctx)
		if err != nil {
			return err
		}
		defer tokens.Close()
		node, err := tokens.NodeByURL(ctx, strings.TrimRight(f.toNode, "/"))
		if err != nil {
			return fmt.Errorf("node %s: %w (add it with `weave node add`)", f.toNode, err)
		}
		dsn, err := f.shardURL(node)
		if err != nil {
			return err
		}
		shardDB, _, err := openShardDB(ctx, dsn, &f.db, true)
		if err != nil {
			return err
		}
		store := sqlstore.NewStore(shardDB, sqlstore.StoreOptions{})
		defer store.Close()
		start := time.Now()
		rep, err := importer.Run(ctx, importer.Options{
			Storage: src.Read, Tokens: srcTokens.Read, Service: f.service, SourceNode: f.fromNode,
			Dest: tokens, Node: node, Shard: store, Users: f.users,
			Progress: func(p importer.Progress) {
				state := fmt.Sprintf("%d records", p.BSOs)
				switch {
				case p.Err != nil:
					state = "FAILED"
				case p.Skipped:
					state = "already imported"
				}
				fmt.Fprintf(a.stderr, "\r[%d/%d] %s %v: %s\033[K", p.Done, p.Total, p.Email, p.UIDs, state)
			},
		})
		fmt.Fprintf(a.stderr, "\n")
		fmt.Fprintf(a.stdout, "%d accounts: %d imported, %d already imported; %d token records, %d collections, %d records (%d bytes) into %s in %s\n",
			rep.Accounts, rep.Imported, rep.Skipped, rep.Records, rep.Collections, rep.BSOs, rep.Bytes, node.URL, time.Since(start).Round(time.Millisecond))
		if err != nil {
			return fmt.Errorf("%w (run the same command again to continue)", err)
		}
		return nil
	}
	return c
}
