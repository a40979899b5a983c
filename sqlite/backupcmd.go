package sqlite

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/weave-sync/weave/sqlstore"
)

// BackupCommand runs `weave db backup|restore FILE` (verb "backup" or
// "restore") on the database of url and reports to w. Databases of other
// backends are refused, naming the tool that backs them up.
func BackupCommand(ctx context.Context, w io.Writer, verb, url, file string) error {
	be, err := sqlstore.Lookup(url)
	if err != nil {
		return err
	}
	if be.BackupTool != "" {
		return fmt.Errorf("weave db %s works on SQLite; back up %s with %s (see docs/operations.md, \"Backups\")", verb, sqlstore.RedactURL(url), be.BackupTool)
	}
	if file == "" {
		return fmt.Errorf("weave db %s: want a file name", verb)
	}
	start := time.Now()
	switch verb {
	case "backup":
		if err := Backup(ctx, url, file); err != nil {
			return err
		}
		st, err := os.Stat(file)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "backed up %s to %s (%d bytes, integrity ok, %.1fs)\n", url, file, st.Size(), time.Since(start).Seconds())
	case "restore":
		saved, err := Restore(ctx, file, url)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "restored %s from %s (integrity ok, %.1fs)\n", url, file, time.Since(start).Seconds())
		if saved != "" {
			fmt.Fprintf(w, "the database it replaced is kept as %s: delete it once weave serves the restored data\n", saved)
		}
	}
	return nil
}
