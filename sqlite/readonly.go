package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/weave-sync/weave/sqlstore"
)

// OpenReadOnly opens an existing SQLite database of another program (an old
// server's, to import from) for reading only: the file must exist, and
// nothing about it is changed — not its journal mode, not its files'
// modes. Both pools of the returned DB read; writes fail.
func OpenReadOnly(ctx context.Context, dsn string, timeout time.Duration) (*sqlstore.DB, error) {
	path, err := PathFromURL(dsn)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sqlite: %s is not a file", path)
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	q := url.Values{"mode": {"ro"}}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath(), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &sqlstore.DB{Read: db, Write: db, Dialect: Dialect{}, MaxRetries: 3, Timeout: timeout}, nil
}
