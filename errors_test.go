package weave

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestErrorKindOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want ErrorKind
	}{
		{nil, KindNone},
		{errors.New("disk on fire"), KindInternal},
		{ErrNotFound, KindNotFound},
		{fmt.Errorf("get: %w", ErrNotFound), KindNotFound},
		{ErrBatchNotFound, KindInvalid},
		{ErrInvalidOffset, KindInvalid},
		{ErrBadTimestamp, KindInvalid},
		{&PreconditionFailedError{Modified: 10}, KindPrecondition},
		{fmt.Errorf("put: %w", &PreconditionFailedError{Modified: 10}), KindPrecondition},
		{ErrOverQuota, KindOverQuota},
		{&OverQuotaError{Left: -5}, KindOverQuota},
		{fmt.Errorf("lock timeout: %w", ErrConflict), KindConflict},
		{ErrStorageFull, KindStorageFull},
		{fmt.Errorf("%w: disk full", ErrStorageFull), KindStorageFull},
		{ErrUnavailable, KindUnavailable},
		{&UnavailableError{Reason: "moving"}, KindUnavailable},
		{ErrNoNode, KindUnavailable},
		{ErrSchemaTooNew, KindUnavailable},
		{context.DeadlineExceeded, KindUnavailable},
		{fmt.Errorf("query: %w", context.Canceled), KindCanceled},
		{ErrUserMoved, KindUserMoved},
		{ErrNodeExists, KindExists},
		{ErrLegacyUserExists, KindExists},
		{fmt.Errorf("%w: packet too large", ErrTooLarge), KindTooLarge},
		// An error of several kinds takes the first in ErrorKindOf's order.
		{errors.Join(ErrConflict, ErrNotFound), KindNotFound},
		{errors.Join(context.Canceled, ErrUnavailable), KindUnavailable},
		{errors.Join(ErrUnavailable, ErrTooLarge), KindTooLarge},
	} {
		if got := ErrorKindOf(c.err); got != c.want {
			t.Errorf("ErrorKindOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
