package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	"github.com/weave-sync/weave/internal/dbtest"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// The SQL token database is the fleet's Directory.
var _ fleet.Directory = (*sqlstore.TokenDB)(nil)

// backend gives a test fresh shard databases of one kind.
type backend struct {
	name  string
	fresh func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string {
			return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "shard.db"))
		}},
		{"mysql", func(t *testing.T) string { return dbtest.MySQL(t) }},
		{"postgres", func(t *testing.T) string { return dbtest.Postgres(t) }},
	}
}

func openShard(ctx context.Context, dsn string) (fleet.Shard, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlstore.OpenStore(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	case strings.HasPrefix(dsn, "mysql:"):
		return sqlstore.OpenStore(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	case strings.HasPrefix(dsn, "postgres"):
		return sqlstore.OpenStore(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
	}
	return nil, fmt.Errorf("unknown DSN %q", dsn)
}

// world is a token database with nodes, each on its own shard.
type world struct {
	t      *testing.T
	ctx    context.Context
	tokens *sqlstore.TokenDB
	nodes  []weave.Node
	shards map[int64]fleet.Shard // test's own handles
}

func newWorld(t *testing.T, b backend, n int) *world {
	t.Helper()
	ctx := context.Background()
	tdb, err := sqlstore.OpenTokenDB(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "tokens.db")), sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tdb.Close() })
	w := &world{t: t, ctx: ctx, tokens: tdb, shards: map[int64]fleet.Shard{}}
	for i := range n {
		dsn := b.fresh(t)
		node, err := tdb.AddNode(ctx, weave.Node{URL: fmt.Sprintf("http://127.0.0.1:1/node%d", i+1), Capacity: 100, DatabaseURL: dsn})
		if err != nil {
			t.Fatal(err)
		}
		s, err := openShard(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		w.nodes = append(w.nodes, node)
		w.shards[node.ID] = s
	}
	return w
}

// afterStep is a Migrator.AfterStep that runs f after step, and returns
// what f returns; nil after any other step.
func afterStep(step weave.MoveStep, f func() error) func(int64, weave.MoveStep) error {
	return func(_ int64, s weave.MoveStep) error {
		if s == step {
			return f()
		}
		return nil
	}
}

// crashAfter has m move uid to node 1 and die after step.
func (w *world) crashAfter(m *fleet.Migrator, uid int64, step weave.MoveStep) {
	w.t.Helper()
	crash := errors.New("crash")
	m.AfterStep = afterStep(step, func() error { return crash })
	if _, err := m.MigrateUser(w.ctx, uid, w.nodes[1].URL); !errors.Is(err, crash) {
		w.t.Fatalf("step %s: %v", step, err)
	}
	m.Close()
}

func (w *world) migrator() *fleet.Migrator {
	m := &fleet.Migrator{
		Dir:    w.tokens,
		Settle: 10 * time.Millisecond,
		Open: func(ctx context.Context, n weave.Node) (fleet.Shard, error) {
			return openShard(ctx, n.DatabaseURL)
		},
	}
	w.t.Cleanup(func() { m.Close() })
	return m
}

// user allocates a user on the first node and fills their storage.
func (w *world) user(email string) int64 {
	t := w.t
	// Only node 1 takes new users.
	for _, n := range w.nodes[1:] {
		if err := w.tokens.SetNodeState(w.ctx, n.ID, weave.NodeDraining, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	u, err := w.tokens.AllocateUser(w.ctx, email, weave.NewTokenUser{Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range w.nodes[1:] {
		if err := w.tokens.SetNodeState(w.ctx, n.ID, weave.NodeUp, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	s := w.shards[u.NodeID]
	uid := u.UID
	for _, coll := range []string{"bookmarks", "history", "my-custom.coll"} {
		var us []weave.Update
		for i := range 30 {
			up := weave.Update{ID: fmt.Sprintf("%s-%03d", coll, i), Payload: weave.Some(fmt.Sprintf(`{"n":%d,"c":"%s"}`, i, coll))}
			if i%3 == 0 {
				up.SortIndex = weave.Some(int64(i * 7))
			}
			if i%5 == 0 {
				up.TTL = weave.Some(int64(3600 + i))
			}
			if i%4 == 0 {
				// The Sync 1.1 fields move with the records.
				up.ParentID = weave.Some(fmt.Sprintf("parent-%d", i))
			}
			if i%6 == 0 {
				up.PredecessorID = weave.Some(fmt.Sprintf("pred-%d", i))
			}
			us = append(us, up)
		}
		if _, err := s.PostBSOs(w.ctx, uid, coll, us, weave.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutBSO(w.ctx, uid, "tabs", weave.Update{ID: "t1", Payload: weave.Some("tabs!")}, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	return uid
}

func (w *world) openBatch(uid int64) string {
	s := w.shards[w.nodeOf(uid)]
	id, _, err := s.CreateBatch(w.ctx, uid, "forms", []weave.Update{{ID: "f1", Payload: weave.Some("one")}}, weave.Precondition{})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := s.AppendBatch(w.ctx, uid, "forms", id, []weave.Update{{ID: "f2", SortIndex: weave.Some(int64(5)), TTL: weave.Some(int64(60))}}, weave.Precondition{}); err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *world) nodeOf(uid int64) int64 {
	u, err := w.tokens.UserByUID(w.ctx, uid)
	if err != nil {
		w.t.Fatal(err)
	}
	return u.NodeID
}

func (w *world) digest(nodeID, uid int64) map[string]weave.CollectionDigest {
	d, err := w.shards[nodeID].DigestUser(w.ctx, uid)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// checkWhole asserts that uid is whole on the node its record names.
func (w *world) checkWhole(uid int64, want map[string]weave.CollectionDigest) {
	w.t.Helper()
	if got := w.digest(w.nodeOf(uid), uid); !maps.Equal(got, want) {
		w.t.Fatalf("uid %d on node %d is not whole:\n got %v\nwant %v", uid, w.nodeOf(uid), got, want)
	}
}

func TestMigrateUser(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b, 2)
			uid := w.user("a@example.com")
			batch := w.openBatch(uid)
			other := w.user("b@example.com")
			want := w.digest(w.nodes[0].ID, uid)
			wantOther := w.digest(w.nodes[0].ID, other)
			res, err := w.migrator().MigrateUser(w.ctx, uid, w.nodes[1].URL)
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != 91 || res.To != w.nodes[1].URL {
				t.Errorf("result %+v", res)
			}
			if w.nodeOf(uid) != w.nodes[1].ID {
				t.Fatalf("user not re-pointed")
			}
			w.checkWhole(uid, want)
			moved, err := w.shards[w.nodes[1].ID].GetBSO(w.ctx, uid, "bookmarks", "bookmarks-012")
			if err != nil || moved.ParentID != "parent-12" || moved.PredecessorID != "pred-12" {
				t.Errorf("moved record's parentid/predecessorid: %q %q %v", moved.ParentID, moved.PredecessorID, err)
			}
			old := w.shards[w.nodes[0].ID]
			if d, _ := old.ExportUser(w.ctx, uid); d.Exists || len(d.Collections) > 0 {
				t.Errorf("old shard still has data: %+v", d)
			}
			if st, target, _ := old.MoveState(w.ctx, uid); st != weave.MoveMoved || target != w.nodes[1].URL {
				t.Errorf("old shard move state %q %q", st, target)
			}
			var ue *weave.UnavailableError
			if _, err := old.PutBSO(w.ctx, uid, "tabs", weave.Update{ID: "x", Payload: weave.Some("late")}, weave.Precondition{}); !errors.As(err, &ue) {
				t.Errorf("write on the old shard: %v, want UnavailableError", err)
			}
			// The other user is untouched.
			w.checkWhole(other, wantOther)
			if _, err := old.PutBSO(w.ctx, other, "tabs", weave.Update{ID: "x", Payload: weave.Some("fine")}, weave.Precondition{}); err != nil {
				t.Errorf("other user's write: %v", err)
			}
			// The open batch continues on the new shard, timestamps go on.
			nw := w.shards[w.nodes[1].ID]
			before, _ := nw.LastModified(w.ctx, uid)
			ts, err := nw.CommitBatch(w.ctx, uid, "forms", batch, nil, weave.Precondition{})
			if err != nil {
				t.Fatalf("commit moved batch: %v", err)
			}
			if ts <= before {
				t.Errorf("timestamp went back: %v <= %v", ts, before)
			}
			f2, err := nw.GetBSO(w.ctx, uid, "forms", "f2")
			if err != nil || f2.SortIndex == nil || *f2.SortIndex != 5 {
				t.Errorf("staged f2: %+v %v", f2, err)
			}
			// And back again: the marker on node 1 is cleared by the import.
			if _, err := w.migrator().MigrateUser(w.ctx, uid, w.nodes[0].URL); err != nil {
				t.Fatal(err)
			}
			if st, _, _ := old.MoveState(w.ctx, uid); st != weave.MoveNone {
				t.Errorf("node 1 still marks the user %q", st)
			}
			if _, err := old.PutBSO(w.ctx, uid, "tabs", weave.Update{ID: "back", Payload: weave.Some("home")}, weave.Precondition{}); err != nil {
				t.Errorf("write after moving back: %v", err)
			}
		})
	}
}

func TestMigrateCrashAndResume(t *testing.T) {
	steps := []weave.MoveStep{weave.MoveStepLocked, weave.MoveStepCopied, weave.MoveStepRepointed, "marked"}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b, 2)
			for _, step := range steps {
				uid := w.user(fmt.Sprintf("crash-%s@example.com", step))
				w.openBatch(uid)
				want := w.digest(w.nodes[0].ID, uid)
				w.crashAfter(w.migrator(), uid, step)
				// Whole on exactly the node the token server hands out.
				w.checkWhole(uid, want)
				j, err := w.tokens.Migration(w.ctx, uid)
				if err != nil {
					t.Fatalf("journal after crash at %s: %v", step, err)
				}
				t.Logf("crash after %s: journal step %s, user on node %d", step, j.Step, w.nodeOf(uid))
				// Re-running finishes the job.
				res, err := w.migrator().MigrateUser(w.ctx, uid, "")
				if err != nil {
					t.Fatalf("resume after %s: %v", step, err)
				}
				if !res.Resumed {
					t.Errorf("not resumed")
				}
				if w.nodeOf(uid) != w.nodes[1].ID {
					t.Fatalf("after resume the user is on node %d", w.nodeOf(uid))
				}
				w.checkWhole(uid, want)
				if d, _ := w.shards[w.nodes[0].ID].ExportUser(w.ctx, uid); d.Exists {
					t.Errorf("old data left after resume from %s", step)
				}
				if _, err := w.tokens.Migration(w.ctx, uid); !errors.Is(err, weave.ErrNotFound) {
					t.Errorf("journal not cleared: %v", err)
				}
			}
		})
	}
}

// TestMigrateUnderWrites moves a user while a client keeps writing and
// following the token database: every acknowledged write must be on the
// new node.
func TestMigrateUnderWrites(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b, 2)
			uid := w.user("busy@example.com")
			var acked sync.Map
			var refused atomic.Int64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					s := w.shards[w.nodeOf(uid)]
					id := fmt.Sprintf("w%05d", i)
					_, err := s.PutBSO(w.ctx, uid, "history", weave.Update{ID: id, Payload: weave.Some(id)}, weave.Precondition{})
					if err == nil {
						acked.Store(id, true)
					} else if errors.Is(err, weave.ErrUnavailable) {
						refused.Add(1)
						time.Sleep(2 * time.Millisecond)
					} else {
						t.Errorf("write: %v", err)
						return
					}
				}
			}()
			time.Sleep(50 * time.Millisecond)
			if _, err := w.migrator().MigrateUser(w.ctx, uid, w.nodes[1].URL); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			close(stop)
			<-done
			nw := w.shards[w.nodes[1].ID]
			n := 0
			acked.Range(func(k, _ any) bool {
				n++
				if _, err := nw.GetBSO(w.ctx, uid, "history", k.(string)); err != nil {
					t.Errorf("acknowledged write %s lost: %v", k, err)
				}
				return true
			})
			t.Logf("%d writes acknowledged, %d refused during the move", n, refused.Load())
		})
	}
}

func TestDrain(t *testing.T) {
	w := newWorld(t, backends()[0], 3)
	want := map[int64]map[string]weave.CollectionDigest{}
	for i := range 6 {
		uid := w.user(fmt.Sprintf("d%d@example.com", i))
		want[uid] = w.digest(w.nodes[0].ID, uid)
	}
	var calls int
	p, err := w.migrator().Drain(w.ctx, w.nodes[0].URL, fleet.DrainOptions{Parallel: 3, Progress: func(fleet.DrainProgress) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 6 || p.Done != 6 || p.Failed != 0 || calls != 6 {
		t.Errorf("progress %+v, %d calls", p, calls)
	}
	per := map[int64]int{}
	for uid, d := range want {
		w.checkWhole(uid, d)
		per[w.nodeOf(uid)]++
	}
	if per[w.nodes[1].ID] != 3 || per[w.nodes[2].ID] != 3 {
		t.Errorf("spread %v", per)
	}
	n, _ := w.tokens.NodeByID(w.ctx, w.nodes[0].ID)
	if n.State != weave.NodeDraining {
		t.Errorf("state %s", n.State)
	}
}

func TestMigrateRefusals(t *testing.T) {
	w := newWorld(t, backends()[0], 3)
	uid := w.user("r@example.com")
	m := w.migrator()
	if res, err := m.MigrateUser(w.ctx, uid, w.nodes[0].URL); err != nil || res.From != res.To {
		t.Errorf("move to its own node: %+v %v", res, err)
	}
	if err := w.tokens.SetNodeState(w.ctx, w.nodes[2].ID, weave.NodeDown, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.MigrateUser(w.ctx, uid, w.nodes[2].URL); err == nil {
		t.Error("move to a down node accepted")
	}
	if _, err := m.MigrateUser(w.ctx, uid, "http://127.0.0.1:1/nowhere"); !errors.Is(err, weave.ErrNotFound) {
		t.Errorf("move to an unknown node: %v", err)
	}
	if _, err := m.MigrateUser(w.ctx, uid, ""); err == nil {
		t.Error("move without target nor journal accepted")
	}
	// An unfinished move must be finished before another starts.
	m.AfterStep = func(int64, weave.MoveStep) error { return errors.New("crash") }
	if _, err := m.MigrateUser(w.ctx, uid, w.nodes[1].URL); err == nil {
		t.Fatal("no crash")
	}
	m.AfterStep = nil
	if err := w.tokens.SetNodeState(w.ctx, w.nodes[2].ID, weave.NodeUp, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.MigrateUser(w.ctx, uid, w.nodes[2].URL); err == nil || !strings.Contains(err.Error(), "unfinished move") {
		t.Errorf("second move during an unfinished one: %v", err)
	}
	if _, err := m.MigrateUser(w.ctx, uid, w.nodes[1].URL); err != nil {
		t.Errorf("finishing with the same target: %v", err)
	}
	// The token database refuses to re-point a user from the wrong node,
	// and a mover that no longer holds the move.
	if _, err := w.tokens.StartMigration(w.ctx, uid, w.nodes[0].ID, w.nodes[2].ID); err != nil {
		t.Fatal(err)
	}
	j, err := w.tokens.ClaimMigration(w.ctx, uid, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.tokens.RepointUser(w.ctx, uid, w.nodes[0].ID, w.nodes[2].ID, j.UpdatedAt); err == nil || errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("re-point from a node the user is not on: %v", err)
	}
	if _, err := w.tokens.ClaimMigration(w.ctx, uid, j.UpdatedAt); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("claim of a freshly held move: %v", err)
	}
	if _, err := w.tokens.ClaimMigration(w.ctx, uid, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if _, err := w.tokens.RepointUser(w.ctx, uid, w.nodes[1].ID, w.nodes[2].ID, j.UpdatedAt); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("re-point with a hold taken over: %v", err)
	}
	if _, err := w.tokens.SetMigrationStep(w.ctx, uid, j.UpdatedAt, ""); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("renewal of a hold taken over: %v", err)
	}
	if err := w.tokens.FinishMigration(w.ctx, uid, j.UpdatedAt); !errors.Is(err, weave.ErrMoveTaken) {
		t.Errorf("finish with a hold taken over: %v", err)
	}
	if w.nodeOf(uid) != w.nodes[1].ID {
		t.Errorf("user re-pointed to node %d", w.nodeOf(uid))
	}
}
