package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	c.Flags.StringVar(&f.fromSchema, "from-schema", "auto", "schema of the storage database: auto (recognise it), "+schemaNames())
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
		schema := importer.Schema(f.fromSchema)
		switch {
		case f.fromSchema == "auto":
			schema = ""
		case !slices.Contains(importer.Schemas, schema) && !slices.Contains(importer.LegacySchemas, schema):
			return fmt.Errorf("--from-schema %q: want auto, %s", f.fromSchema, schemaNames())
		}
		ctx := a.ctx
		src, err := openImportSource(ctx, f.fromStorage, f.db.timeout)
		if err != nil {
			return fmt.Errorf("source storage database: %w", err)
		}
		defer src.Close()
		legacy := slices.Contains(importer.LegacySchemas, schema)
		if schema == "" {
			found, err := importer.DetectLegacySchema(ctx, src)
			if err != nil {
				return err
			}
			legacy = found != "" || src.Dialect.Name() == "sqlite"
		}
		if legacy {
			return a.importLegacy(f, src, schema)
		}
		if src.Dialect.Name() == "sqlite" {
			return fmt.Errorf("%s: SQLite sources are FSyncMS's and server-storage's; for a SQLite syncstorage, dump it into MySQL/MariaDB or PostgreSQL first", sqlstore.RedactURL(f.fromStorage))
		}
		if f.fromUsers != "" {
			return errors.New("--from-users-url is for server-storage (Sync 1.1) sources; Sync 1.5 sources take --from-token-url")
		}
		if f.fromTokens == "" {
			f.fromTokens = f.fromStorage
		}
		srcTokens := src
		if f.fromTokens != f.fromStorage {
			if srcTokens, err = openImportSource(ctx, f.fromTokens, f.db.timeout); err != nil {
				return fmt.Errorf("source token database: %w", err)
			}
			defer srcTokens.Close()
		}
		tokens, node, store, err := f.openDestination(ctx)
		if err != nil {
			return err
		}
		defer tokens.Close()
		defer store.Close()
		start := time.Now()
		rep, err := importer.Run(ctx, importer.Options{
			Storage: src, Schema: schema, Tokens: srcTokens, Service: f.service, SourceNode: f.fromNode,
			Dest: tokens, Node: node, Shard: store, Users: f.users, Reimport: f.reimport,
			Progress: func(p importer.Progress) {
				state := fmt.Sprintf("%d records, %d open batches", p.BSOs, p.Batches)
				switch {
				case p.Err != nil:
					state = "FAILED"
				case p.Reimported:
					state = "changed at the source (" + p.Changed + "), imported again: " + state
				case p.Changed != "":
					state = "CHANGED at the source since imported (" + p.Changed + "), left as it is"
				case p.Skipped:
					state = "already imported"
				}
				fmt.Fprintf(a.stderr, "\r[%d/%d] %s %v: %s\033[K", p.Done, p.Total, p.Email, p.UIDs, state)
			},
		})
		fmt.Fprintf(a.stderr, "\n")
		if rep.Source != "" {
			fmt.Fprintf(a.stdout, "source: %s\n", rep.Source)
		}
		if rep.Reimported > 0 {
			fmt.Fprintf(a.stdout, "%d accounts changed at the source were imported again\n", rep.Reimported)
		}
		fmt.Fprintf(a.stdout, "%d accounts: %d imported, %d already imported; %d token records, %d collections, %d records, %d open batches (%d bytes) into %s in %s\n",
			rep.Accounts, rep.Imported, rep.Skipped, rep.Records, rep.Collections, rep.BSOs, rep.Batches, rep.Bytes, node.URL, time.Since(start).Round(time.Millisecond))
		if errors.As(err, new(*importer.ChangedError)) {
			return err
		}
		if err != nil {
			if rep.Accounts > 0 {
				return fmt.Errorf("%w (run the same command again to continue)", err)
			}
			return err
		}
		return nil
	}
	return c
}

func schemaNames() string {
	var names []string
	for _, s := range append(slices.Clone(importer.Schemas), importer.LegacySchemas...) {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// importLegacy imports the 1.1 accounts of an FSyncMS or server-storage
// database src.
func (a *app) importLegacy(f *importFlags, src *sqlstore.DB, schema importer.Schema) error {
	ctx := a.ctx
	switch {
	case f.fromTokens != "":
		return errors.New("--from-token-url is for Sync 1.5 sources; a Sync 1.1 server keeps its users in its own database (server-storage: --from-users-url)")
	case f.fromNode != "":
		return errors.New("--from-node is for Sync 1.5 sources")
	}
	var users *sqlstore.DB
	if f.fromUsers != "" && f.fromUsers != f.fromStorage {
		var err error
		if users, err = openImportSource(ctx, f.fromUsers, f.db.timeout); err != nil {
			return fmt.Errorf("source user database: %w", err)
		}
		defer users.Close()
	}
	tokens, node, store, err := f.openDestination(ctx)
	if err != nil {
		return err
	}
	defer tokens.Close()
	defer store.Close()
	start := time.Now()
	rep, err := importer.RunLegacy(ctx, importer.LegacyOptions{
		Storage: src, Schema: schema, Users: users,
		Dest: tokens, Accounts: sqlstore.NewLegacyUserStore(tokens.DB()), Node: node, Shard: store,
		Limit: f.users, Reimport: f.reimport,
		Progress: func(p importer.Progress) {
			state := fmt.Sprintf("%d records", p.BSOs)
			switch {
			case p.Err != nil:
				state = "FAILED: " + p.Err.Error()
			case p.Reimported:
				state = "changed at the source (" + p.Changed + "), imported again: " + state
			case p.Changed != "" && p.Skipped:
				state = p.Changed
			case p.Changed != "":
				state = "CHANGED at the source since imported (" + p.Changed + "), left as it is"
			case p.Skipped:
				state = "already imported"
			}
			if p.Password {
				state += "; password changed at the source, updated"
			}
			fmt.Fprintf(a.stderr, "\r[%d/%d] %s %v: %s\033[K", p.Done, p.Total, p.Email, p.UIDs, state)
		},
	})
	fmt.Fprintf(a.stderr, "\n")
	if rep.Source != "" {
		fmt.Fprintf(a.stdout, "source: %s\n", rep.Source)
	}
	if rep.Reimported > 0 {
		fmt.Fprintf(a.stdout, "%d accounts changed at the source were imported again\n", rep.Reimported)
	}
	if rep.Passwords > 0 {
		fmt.Fprintf(a.stdout, "%d passwords changed at the source were updated (accounts that had not signed in to weave)\n", rep.Passwords)
	}
	fmt.Fprintf(a.stdout, "%d Sync 1.1 accounts: %d imported, %d already imported, %d disabled at the source (not imported); %d storage records, %d collections, %d records (%d bytes) into %s in %s\n",
		rep.Accounts, rep.Imported, rep.Skipped, rep.Disabled, rep.Records, rep.Collections, rep.BSOs, rep.Bytes, node.URL, time.Since(start).Round(time.Millisecond))
	if err != nil && rep.Accounts > 0 && !errors.As(err, new(*importer.ChangedError)) {
		return fmt.Errorf("%w (run the same command again to continue)", err)
	}
	return err
}

// openImportSource opens a database of the old server, with a small pool:
// the import reads one user at a time. A SQLite file (FSyncMS's,
// server-storage's) is opened read-only and left as it is.
func openImportSource(ctx context.Context, url string, timeout time.Duration) (*sqlstore.DB, error) {
	if _, err := sqlstore.Lookup(url); err != nil {
		return nil, fmt.Errorf("%s: the old server's databases are MySQL/MariaDB (mysql://USER:PASS@HOST:PORT/DB), PostgreSQL (postgres://USER:PASS@HOST:PORT/DB) or, for FSyncMS and server-storage, SQLite (sqlite:///path/to/file)", sqlstore.RedactURL(url))
	}
	return sqlstore.OpenForeign(ctx, url, sqlstore.PoolOptions{MaxOpenConns: 4, Timeout: timeout})
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
