package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// Command is the `weave import` command: it recognises the old server from
// its tables, imports its users with Run or RunLegacy and prints their
// progress and a summary. cmd/weave only fills it from its flags.
type Command struct {
	FromStorage, FromTokens, FromUsers string // old server's databases
	FromSchema                         string // "auto" or one of Schemas, LegacySchemas
	FromNode                           string // Sync 1.5: only the users of this node
	Service                            string
	Users                              int // at most this many accounts (0: all)
	Reimport                           bool
	Timeout                            time.Duration // per query on the old server's databases
	ToNode                             string        // URL of the weave node that takes the users

	// OpenDestination opens weave's token database, the node that takes
	// the users and that node's shard; Run closes the databases.
	OpenDestination func(ctx context.Context) (*sqlstore.TokenDB, weave.Node, *sqlstore.Store, error)

	Stdout, Stderr io.Writer
}

// SchemaNames lists the schemas --from-schema accepts besides auto.
func SchemaNames() string {
	var names []string
	for _, s := range append(slices.Clone(Schemas), LegacySchemas...) {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// Run imports the users of the old server.
func (c *Command) Run(ctx context.Context) error {
	schema := Schema(c.FromSchema)
	switch {
	case c.FromSchema == "auto":
		schema = ""
	case !slices.Contains(Schemas, schema) && !slices.Contains(LegacySchemas, schema):
		return fmt.Errorf("--from-schema %q: want auto, %s", c.FromSchema, SchemaNames())
	}
	src, err := c.openSource(ctx, c.FromStorage)
	if err != nil {
		return fmt.Errorf("source storage database: %w", err)
	}
	defer src.Close()
	legacy := slices.Contains(LegacySchemas, schema)
	if schema == "" {
		found, err := DetectLegacySchema(ctx, src)
		if err != nil {
			return err
		}
		legacy = found != "" || src.Dialect.Name() == "sqlite"
	}
	if legacy {
		return c.runLegacy(ctx, src, schema)
	}
	if src.Dialect.Name() == "sqlite" {
		return fmt.Errorf("%s: SQLite sources are FSyncMS's and server-storage's; for a SQLite syncstorage, dump it into MySQL/MariaDB or PostgreSQL first", sqlstore.RedactURL(c.FromStorage))
	}
	if c.FromUsers != "" {
		return errors.New("--from-users-url is for server-storage (Sync 1.1) sources; Sync 1.5 sources take --from-token-url")
	}
	fromTokens := c.FromTokens
	if fromTokens == "" {
		fromTokens = c.FromStorage
	}
	srcTokens := src
	if fromTokens != c.FromStorage {
		if srcTokens, err = c.openSource(ctx, fromTokens); err != nil {
			return fmt.Errorf("source token database: %w", err)
		}
		defer srcTokens.Close()
	}
	return c.intoDestination(ctx, func(tokens *sqlstore.TokenDB, node weave.Node, store *sqlstore.Store) (Report, error) {
		return Run(ctx, Options{
			Storage: src, Schema: schema, Tokens: srcTokens, Service: c.Service, SourceNode: c.FromNode,
			Dest: tokens, Node: node, Shard: store, Users: c.Users, Reimport: c.Reimport,
			Progress: c.progress(false),
		})
	}, func(rep Report) string {
		return fmt.Sprintf("%d accounts: %d imported, %d already imported; %d token records, %d collections, %d records, %d open batches (%d bytes)",
			rep.Accounts, rep.Imported, rep.Skipped, rep.Records, rep.Collections, rep.BSOs, rep.Batches, rep.Bytes)
	})
}

// runLegacy imports the 1.1 accounts of an FSyncMS or server-storage
// database src.
func (c *Command) runLegacy(ctx context.Context, src *sqlstore.DB, schema Schema) error {
	switch {
	case c.FromTokens != "":
		return errors.New("--from-token-url is for Sync 1.5 sources; a Sync 1.1 server keeps its users in its own database (server-storage: --from-users-url)")
	case c.FromNode != "":
		return errors.New("--from-node is for Sync 1.5 sources")
	}
	var users *sqlstore.DB
	if c.FromUsers != "" && c.FromUsers != c.FromStorage {
		var err error
		if users, err = c.openSource(ctx, c.FromUsers); err != nil {
			return fmt.Errorf("source user database: %w", err)
		}
		defer users.Close()
	}
	return c.intoDestination(ctx, func(tokens *sqlstore.TokenDB, node weave.Node, store *sqlstore.Store) (Report, error) {
		return RunLegacy(ctx, LegacyOptions{
			Storage: src, Schema: schema, Users: users,
			Dest: tokens, Accounts: sqlstore.NewLegacyUserStore(tokens.DB()), Node: node, Shard: store,
			Limit: c.Users, Reimport: c.Reimport,
			Progress: c.progress(true),
		})
	}, func(rep Report) string {
		s := fmt.Sprintf("%d Sync 1.1 accounts: %d imported, %d already imported, %d disabled at the source (not imported); %d storage records, %d collections, %d records (%d bytes)",
			rep.Accounts, rep.Imported, rep.Skipped, rep.Disabled, rep.Records, rep.Collections, rep.BSOs, rep.Bytes)
		if rep.Passwords > 0 {
			s = fmt.Sprintf("%d passwords changed at the source were updated (accounts that had not signed in to weave)\n", rep.Passwords) + s
		}
		return s
	})
}

// intoDestination opens the destination, runs the import into it and
// prints what it did: the summary, then totals(rep) with the node and the
// time taken. An import that stopped part way says how to continue.
func (c *Command) intoDestination(ctx context.Context, run func(*sqlstore.TokenDB, weave.Node, *sqlstore.Store) (Report, error), totals func(Report) string) error {
	tokens, node, store, err := c.OpenDestination(ctx)
	if err != nil {
		return err
	}
	defer tokens.Close()
	defer store.Close()
	start := time.Now()
	rep, err := run(tokens, node, store)
	c.summary(rep)
	fmt.Fprintf(c.Stdout, "%s into %s in %s\n", totals(rep), node.URL, time.Since(start).Round(time.Millisecond))
	return continueHint(rep, err)
}

// progress prints one line per account, rewritten in place on Stderr.
// Sync 1.1 imports have no batches but say why an account failed.
func (c *Command) progress(legacy bool) func(Progress) {
	return func(p Progress) {
		state := fmt.Sprintf("%d records", p.BSOs)
		if !legacy {
			state += fmt.Sprintf(", %d open batches", p.Batches)
		}
		switch {
		case p.Err != nil && legacy:
			state = "FAILED: " + p.Err.Error()
		case p.Err != nil:
			state = "FAILED"
		case p.Reimported:
			state = "changed at the source (" + p.Changed + "), imported again: " + state
		case legacy && p.Changed != "" && p.Skipped:
			state = p.Changed
		case p.Changed != "":
			state = "CHANGED at the source since imported (" + p.Changed + "), left as it is"
		case p.Skipped:
			state = "already imported"
		}
		if legacy && p.Password {
			state += "; password changed at the source, updated"
		}
		fmt.Fprintf(c.Stderr, "\r[%d/%d] %s %v: %s\033[K", p.Done, p.Total, p.Email, p.UIDs, state)
	}
}

// summary ends the progress line and prints what both kinds of import
// report first.
func (c *Command) summary(rep Report) {
	fmt.Fprintf(c.Stderr, "\n")
	if rep.Source != "" {
		fmt.Fprintf(c.Stdout, "source: %s\n", rep.Source)
	}
	if rep.Reimported > 0 {
		fmt.Fprintf(c.Stdout, "%d accounts changed at the source were imported again\n", rep.Reimported)
	}
}

// continueHint tells the operator that an import that stopped part way is
// finished by running it again; a ChangedError is final as it is.
func continueHint(rep Report, err error) error {
	if err != nil && rep.Accounts > 0 && !errors.As(err, new(*ChangedError)) {
		return fmt.Errorf("%w (run the same command again to continue)", err)
	}
	return err
}

// openSource opens a database of the old server, with a small pool: the
// import reads one user at a time. A SQLite file (FSyncMS's,
// server-storage's) is opened read-only and left as it is.
func (c *Command) openSource(ctx context.Context, url string) (*sqlstore.DB, error) {
	if _, err := sqlstore.Lookup(url); err != nil {
		return nil, fmt.Errorf("%s: the old server's databases are MySQL/MariaDB (mysql://USER:PASS@HOST:PORT/DB), PostgreSQL (postgres://USER:PASS@HOST:PORT/DB) or, for FSyncMS and server-storage, SQLite (sqlite:///path/to/file)", sqlstore.RedactURL(url))
	}
	return sqlstore.OpenForeign(ctx, url, sqlstore.PoolOptions{MaxOpenConns: 4, Timeout: c.Timeout})
}
