package legacy_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
)

// tooLargeShard refuses every write as a database does a record over its
// packet limit (MariaDB's max_allowed_packet): weave.ErrTooLarge, nothing
// written.
type tooLargeShard struct{ fleet.Shard }

func (tooLargeShard) PutBSO(context.Context, int64, string, weave.Update, weave.Precondition) (weave.Timestamp, error) {
	return 0, fmt.Errorf("mysql: %w", weave.ErrTooLarge)
}

func (tooLargeShard) PostBSOs(context.Context, int64, string, []weave.Update, weave.Precondition) (weave.Timestamp, error) {
	return 0, fmt.Errorf("mysql: %w", weave.ErrTooLarge)
}

// TestWriteTooLargeForDatabase: a write the database refuses for its size
// gets 413, as a body over the payload limit does, never a 500 (and no
// Retry-After: the same request cannot succeed later).
func TestWriteTooLargeForDatabase(t *testing.T) {
	srv := newServer(t, backends[0], serverOpts{wrap: func(s fleet.Shard) fleet.Shard { return tooLargeShard{s} }})
	c := newUser(t, srv, "toolarge@example.com")
	for _, req := range []struct{ method, path, body string }{
		{"PUT", "storage/bookmarks/abc", `{"payload":"x"}`},
		{"POST", "storage/bookmarks", `[{"id":"a","payload":"x"},{"id":"b","payload":"y"}]`},
	} {
		r := c.storage(req.method, req.path, req.body, nil)
		if r.status != 413 {
			t.Errorf("%s %s refused for its size = %d %q, want 413", req.method, req.path, r.status, r.body)
		}
		if ra := r.header.Get("Retry-After"); ra != "" {
			t.Errorf("%s %s: Retry-After %q on a write no retry fixes", req.method, req.path, ra)
		}
	}
}
