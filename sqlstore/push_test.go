package sqlstore_test

import (
	"testing"

	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/push/pushtest"
	"github.com/weave-sync/weave/sqlstore"
)

// TestPushStore runs the push.Store conformance suite on every backend,
// each subtest on a fresh database migrated to the "push" set.
func TestPushStore(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			pushtest.Run(t, func(t *testing.T) push.Store {
				return pushStore(t, kind)
			})
		})
	}
}

// pushStore is a PushStore on a fresh database of kind.
func pushStore(t *testing.T, kind string) *sqlstore.PushStore {
	return sqlstore.NewPushStore(migratedDB(t, kind, sqlstore.SetPush, 2))
}
