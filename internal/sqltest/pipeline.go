package sqltest

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// CheckPipelinedPools checks that s's write pool sends through a driver's
// write pipeline exactly when want, and its read pool never; pipelined
// reports it of a driver connection (from sql.Conn.Raw).
func CheckPipelinedPools(t testing.TB, s *sqlstore.Store, pipelined func(driverConn any) bool, want bool) {
	t.Helper()
	for pool, p := range map[string]*sql.DB{"write": s.DB().Write, "read": s.DB().Read} {
		conn, err := p.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var piped bool
		_ = conn.Raw(func(dc any) error { piped = pipelined(dc); return nil })
		conn.Close()
		if want := want && pool == "write"; piped != want {
			t.Errorf("%s pool pipelined: %v, want %v", pool, piped, want)
		}
	}
}

// WriteEveryWay writes one record of uid's "history" per payload, through
// every write path (POST, a batch's create, append and commit), and a
// record put and deleted, then checks that a read gives back exactly the
// payloads. It returns the updates (ids r0, r1, ...).
func WriteEveryWay(t testing.TB, s *sqlstore.Store, uid int64, payloads []string) []weave.Update {
	t.Helper()
	if len(payloads) < 5 {
		t.Fatalf("WriteEveryWay wants 5 payloads or more, got %d", len(payloads))
	}
	ctx := t.Context()
	var us []weave.Update
	for j, p := range payloads {
		us = append(us, weave.Update{ID: fmt.Sprintf("r%d", j), Payload: weave.Some(p)})
	}
	if _, err := s.PostBSOs(ctx, uid, "history", us[:2], weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	batch, _, err := s.CreateBatch(ctx, uid, "history", us[2:3], weave.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, uid, "history", batch, us[3:4], weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitBatch(ctx, uid, "history", batch, us[4:], weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBSO(ctx, uid, "history", weave.Update{ID: "gone", Payload: weave.Some("x")}, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteBSO(ctx, uid, "history", "gone", weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	page, err := s.GetBSOs(ctx, uid, "history", weave.Query{Sort: weave.SortOldest})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range page.BSOs {
		got[b.ID] = b.Payload
	}
	if len(got) != len(payloads) {
		t.Errorf("%d records read back, want %d", len(got), len(payloads))
	}
	for j, p := range payloads {
		if g, ok := got[fmt.Sprintf("r%d", j)]; !ok || g != p {
			t.Errorf("record r%d: %.40q (present %v), want %.40q", j, g, ok, p)
		}
	}
	return us
}
