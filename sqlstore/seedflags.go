package sqlstore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// SeedFlags are the flags of `weave db seed`.
type SeedFlags struct {
	SeedOptions
	collections string
}

// RegisterFlags registers the --seed-* flags.
func (f *SeedFlags) RegisterFlags(c *cli.Command) {
	c.Int(&f.Users, "seed-users", 1000, "`weave db seed`: users to create (uids from --seed-first-uid)").Min(1)
	c.Int64(&f.FirstUID, "seed-first-uid", 1, "`weave db seed`: first uid").Min(1)
	c.Int(&f.RecordsPerUser, "seed-records-per-user", 1000, "`weave db seed`: records per user, spread over --seed-collections").Min(0)
	c.String(&f.collections, "seed-collections", "history", "`weave db seed`: comma-separated collections")
	c.Bool(&f.Append, "seed-append", false, "`weave db seed`: allow a database that already holds records (the uids must be new)")
}

// SeedAndReport is `weave db seed`: Seed with the flags' options, a
// progress line on progress and the result on out.
func (s *Store) SeedAndReport(ctx context.Context, f *SeedFlags, out, progress io.Writer) error {
	o := f.SeedOptions
	o.Collections = strings.Split(f.collections, ",")
	start := time.Now()
	o.Progress = func(n int64) {
		fmt.Fprintf(progress, "\rseeded %d records (%.0f/s)", n, float64(n)/time.Since(start).Seconds())
	}
	n, err := s.Seed(ctx, o)
	fmt.Fprintf(progress, "\n")
	if err != nil {
		return fmt.Errorf("seed stopped after %d records: %w", n, err)
	}
	fmt.Fprintf(out, "seeded %d records for %d users in %.1fs\n", n, o.Users, time.Since(start).Seconds())
	return nil
}
