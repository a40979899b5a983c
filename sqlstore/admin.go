package sqlstore

import (
	"context"
	"fmt"
	"io"

	"github.com/weave-sync/weave/internal/cli"
)

// Admin runs `weave db`: migrate, status, purge and seed on the databases
// of Config, and backup and restore of the storage database through Backup.
type Admin struct {
	Config     Config
	PurgeBatch int
	Seed       SeedFlags
	// Backup runs `weave db backup|restore FILE` (verb "backup" or
	// "restore") on the database of url (sqlite.BackupCommand).
	Backup        func(ctx context.Context, w io.Writer, verb, url, file string) error
	Out, Progress io.Writer
}

// RegisterFlags registers the database flags, --purge-batch and --seed-*.
func (a *Admin) RegisterFlags(c *cli.Command) {
	a.Config.RegisterFlags(c)
	c.Int(&a.PurgeBatch, "purge-batch", 1000, "rows purged per transaction by `weave db purge`").Min(1)
	a.Seed.RegisterFlags(c)
}

// Run runs `weave db` with its positional arguments.
func (a *Admin) Run(ctx context.Context, args []string) error {
	if len(args) == 2 && (args[0] == "backup" || args[0] == "restore") {
		// The storage database, which holds the token and accounts tables
		// too unless --token-database-url names another.
		url, err := a.Config.StorageURL()
		if err != nil {
			return err
		}
		return a.Backup(ctx, a.Out, args[0], url, args[1])
	}
	if len(args) != 1 {
		return fmt.Errorf("want one of migrate, status, purge, seed, backup FILE, restore FILE (see `weave db --help`)")
	}
	dbs, err := a.Config.Open(ctx)
	if err != nil {
		return err
	}
	defer dbs.Close()
	switch args[0] {
	case "migrate":
		err := dbs.Prepare(ctx, true, func(set string, m Migration) {
			fmt.Fprintf(a.Out, "applying %s migration %s\n", set, m.Name)
		})
		if err != nil {
			return err
		}
		return dbs.WriteStatus(ctx, a.Out)
	case "status":
		return dbs.WriteStatus(ctx, a.Out)
	case "seed":
		if err := dbs.Prepare(ctx, true, nil); err != nil {
			return err
		}
		return NewStore(dbs.Storage, StoreOptions{}).SeedAndReport(ctx, &a.Seed, a.Out, a.Progress)
	case "purge":
		if err := dbs.Prepare(ctx, false, nil); err != nil {
			return err
		}
		total, err := NewStore(dbs.Storage, StoreOptions{}).PurgeAllExpired(ctx, a.PurgeBatch, a.Progress)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.Out, "purged %d expired records and batch rows\n", total)
		return nil
	}
	return fmt.Errorf("unknown db command %q: want migrate, status, purge, seed, backup FILE or restore FILE", args[0])
}
