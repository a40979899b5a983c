package sqlstore

import (
	"context"
	"fmt"
	"io"
	"time"
)

// WriteStatus writes the schema version of the storage and tokens sets,
// one line each, as `weave db status` prints them.
func (d *Databases) WriteStatus(ctx context.Context, w io.Writer) error {
	return d.EachSet(func(set string, db *DB, ms []Migration) error {
		st, err := db.Status(ctx, set, ms)
		if err != nil {
			return err
		}
		state := "up to date"
		switch {
		case st.Current > st.Latest:
			state = "NEWER than this weave: upgrade weave"
		case st.Pending():
			state = fmt.Sprintf("%d pending: run `weave db migrate`", st.Latest-st.Current)
		}
		fmt.Fprintf(w, "%-8s schema version %d of %d (%s)\n", set, st.Current, st.Latest, state)
		return nil
	})
}

// PurgeAllExpired purges expired records and batch rows, batch rows per
// transaction, until none is left, writing a progress line to progress.
// It returns how many rows went.
func (s *Store) PurgeAllExpired(ctx context.Context, batch int, progress io.Writer) (int64, error) {
	start := time.Now()
	var total int64
	for {
		n, err := s.PurgeExpired(ctx, batch)
		total += n
		if err != nil {
			return total, fmt.Errorf("purge stopped after %d rows: %w (run it again to continue)", total, err)
		}
		fmt.Fprintf(progress, "\rpurged %d rows (%.1fs)", total, time.Since(start).Seconds())
		if n < int64(batch) {
			break
		}
	}
	fmt.Fprintf(progress, "\n")
	return total, nil
}
