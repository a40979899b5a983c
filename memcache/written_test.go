package memcache

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/weave-sync/weave"
)

// TestNothingWritten: the errors after which the inner store guarantees
// the write changed nothing leave the cache as it was; every error that
// may follow a commit (a lost connection, a deadline during COMMIT, an
// unclassified failure) counts as a write.
func TestNothingWritten(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&weave.PreconditionFailedError{}, true},
		{weave.ErrNotFound, true},
		{weave.ErrBatchNotFound, true},
		{weave.ErrOverQuota, true},
		{weave.ErrConflict, true},
		{fmt.Errorf("mysql: %w", weave.ErrTooLarge), true}, // refused whole for its size
		{weave.ErrUnavailable, false},
		{weave.ErrStorageFull, false},
		{context.DeadlineExceeded, false},
		{errors.New("driver: bad connection"), false},
	} {
		if got := nothingWritten(c.err); got != c.want {
			t.Errorf("nothingWritten(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
