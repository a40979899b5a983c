package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/sqlstore"
)

// killCycles is how often TestKill9 kills `weave serve` per backend:
// WEAVE_KILL9_CYCLES, or 20 in the default run (docs/operations.md).
func killCycles(t *testing.T) int {
	if v := os.Getenv("WEAVE_KILL9_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WEAVE_KILL9_CYCLES=%q: want a positive number", v)
		}
		return n
	}
	return 20
}

// attempt is one write a client sent: a POST's records or a whole batch.
type attempt struct {
	ids   []string
	acked bool
	cut   bool // the server died while it was in flight
	batch bool
}

// killWorld is the fleet of TestKill9: one `weave serve` process serving
// node 1 (its own database, which is also the token database) and node 2
// (a shard of its own, under /n2).
type killWorld struct {
	t            *testing.T
	env          *procEnv
	db1, db2     string // database URLs
	node1, node2 string
	tokens       *sqlstore.TokenDB
	shards       map[string]*sqlstore.Store // by node URL
}

func (w *killWorld) weave(args ...string) string {
	w.t.Helper()
	code, out := runWeave(w.t, args...)
	if code != 0 {
		w.t.Fatalf("weave %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (w *killWorld) open(url string) *sqlstore.Store {
	w.t.Helper()
	db, _, err := (&sqlstore.Config{Timeout: 10 * time.Second}).OpenShard(context.Background(), url, false)
	if err != nil {
		w.t.Fatal(err)
	}
	s := sqlstore.NewStore(db, sqlstore.StoreOptions{})
	w.t.Cleanup(func() { s.Close() })
	return s
}

// nodeOf is the node the token database hands out for uid.
func (w *killWorld) nodeOf(uid int64) string {
	w.t.Helper()
	u, err := w.tokens.UserByUID(context.Background(), uid)
	if err != nil || u.Node == nil {
		w.t.Fatalf("uid %d in the token database: %+v, %v", uid, u, err)
	}
	return u.Node.URL
}

// TestKill9 kills `weave serve` with SIGKILL again and again (see
// killCycles) on each backend while
// clients POST and commit batch uploads and `weave user migrate` moves a
// user between its two nodes (killed too, as in a machine crash). After each
// restart: every acknowledged write is there, every write and every batch
// is there whole or not at all, and re-running the migration finishes or
// undoes the move, leaving the user's data whole on exactly the node the
// token server hands out.
//
// The kills take turns: while a batch commit is in flight, while the move
// is under way (journaled), and after a random delay.
func TestKill9(t *testing.T) {
	for _, bc := range backendCases()[:3] {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			testKill9(t, bc)
		})
	}
}

// newKillWorld is a killWorld with two fresh node databases of bc.
func newKillWorld(t *testing.T, bc backendCase) *killWorld {
	w := &killWorld{t: t}
	if bc.name == "sqlite" {
		dir := t.TempDir()
		w.db1, w.db2 = sqliteURL(filepath.Join(dir, "node1.db")), sqliteURL(filepath.Join(dir, "node2.db"))
	} else {
		w.db1, w.db2 = bc.url(t), bc.url(t)
	}
	return w
}

// openDatabases opens the token database and both shards for the test's
// own checks, closed when the test ends.
func (w *killWorld) openDatabases() {
	tokenDB, _, err := (&sqlstore.Config{Timeout: 10 * time.Second}).OpenShard(context.Background(), w.db1, false)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { tokenDB.Close() })
	w.tokens = sqlstore.NewTokenDB(tokenDB, sqlstore.TokenDBOptions{})
	w.shards = map[string]*sqlstore.Store{w.node1: w.open(w.db1), w.node2: w.open(w.db2)}
}

func testKill9(t *testing.T, bc backendCase) {
	w := newKillWorld(t, bc)
	w.env = newProcEnv(t, "--database-url", w.db1, "--nodes", "all", "--state-refresh", "100ms")
	w.node1 = "http://" + w.env.addr
	w.node2 = w.node1 + "/n2"
	w.weave("node", "add", w.node2, "--database-url", w.db2, "--capacity", "50", "--token-database-url", w.db1)
	// Users are created on node 1; node 2 opens for the moves.
	w.weave("node", "set-state", w.node2, "draining", "--token-database-url", w.db1)
	srv := w.env.serve()
	api := w.env.server()
	poster := api.client(t, "00000000000000000000000000000b0a")
	batcher := api.client(t, "00000000000000000000000000000b0b")
	mover := api.client(t, "00000000000000000000000000000b0c")
	for _, coll := range []string{"bookmarks", "history", "tabs"} {
		var recs []map[string]any
		for i := range 30 {
			recs = append(recs, map[string]any{"id": fmt.Sprintf("%s%02d", coll, i), "payload": strings.Repeat("m", 300), "sortindex": i})
		}
		mover.must(200, "POST", "/storage/"+coll, recs)
	}
	mover.must(202, "POST", "/storage/forms?batch=true", []map[string]any{{"id": "open", "payload": "staged"}})
	w.weave("node", "set-state", w.node2, "up", "--token-database-url", w.db1)

	w.openDatabases()
	uid := mover.token.UID
	data, err := w.shards[w.node1].ExportUser(t.Context(), uid)
	if err != nil || !data.Exists {
		t.Fatalf("mover's data on node 1: %v", err)
	}
	want := weave.DigestUserData(data)

	var attempts []*attempt
	var cutPosts, cutCommits, cutMoves, resumed int
	start := time.Now()
	cycles := killCycles(t)
	for cycle := range cycles {
		cycleStart := time.Now()
		from := w.nodeOf(uid)
		to := w.node1
		if from == w.node1 {
			to = w.node2
		}
		move := startWeave(t, "user", "migrate", fmt.Sprint(uid), "--to", to, "--token-database-url", w.db1, "--settle", "200ms")

		var mu sync.Mutex
		var wg sync.WaitGroup
		var committing atomic.Bool
		record := func(a *attempt) {
			mu.Lock()
			attempts = append(attempts, a)
			mu.Unlock()
		}
		wg.Add(2)
		go func() { // POSTs of five records
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for n := 0; ; n++ {
				a := &attempt{}
				var recs []map[string]any
				for i := range 5 {
					id := fmt.Sprintf("c%02d-p%03d-%d", cycle, n, i)
					a.ids = append(a.ids, id)
					recs = append(recs, map[string]any{"id": id, "payload": strings.Repeat("p", 500)})
				}
				record(a)
				r, err := poster.try(client, "POST", "/storage/posts", recs)
				if err != nil {
					a.cut = true
					return
				}
				a.acked = r.status == 200
				if !a.acked && r.status != 503 {
					t.Errorf("POST: %d %s", r.status, r.body)
					return
				}
			}
		}()
		go func() { // batch uploads: 20 records in a create and a commit
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for n := 0; ; n++ {
				a := &attempt{batch: true}
				var recs []map[string]any
				for i := range 20 {
					id := fmt.Sprintf("c%02d-b%03d-%02d", cycle, n, i)
					a.ids = append(a.ids, id)
					recs = append(recs, map[string]any{"id": id, "payload": strings.Repeat("b", 300)})
				}
				record(a)
				r, err := batcher.try(client, "POST", "/storage/batched?batch=true", recs[:10])
				if err != nil {
					return
				}
				if r.status != 202 {
					if r.status != 503 {
						t.Errorf("batch create: %d %s", r.status, r.body)
						return
					}
					continue
				}
				var open struct{ Batch string }
				r.json(t, &open)
				committing.Store(true)
				r, err = batcher.try(client, "POST", "/storage/batched?commit=true&batch="+url.QueryEscape(open.Batch), recs[10:])
				committing.Store(false)
				if err != nil {
					a.cut = true
					return
				}
				a.acked = r.status == 200
				if !a.acked && r.status != 503 {
					t.Errorf("batch commit: %d %s", r.status, r.body)
					return
				}
			}
		}()

		switch cycle % 3 {
		case 0: // mid batch commit
			testkit.Eventually(t, 15*time.Second, "a batch commit in flight", committing.Load)
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		case 1: // mid move: journaled, somewhere between lock and purge
			exited := false
			testkit.Eventually(t, 15*time.Second, "the move journaled (or its process gone)", func() bool {
				select {
				case <-move.exited:
					exited = true
					return true
				default:
				}
				_, err := w.tokens.Migration(context.Background(), uid)
				return err == nil
			})
			if exited && move.state.ExitCode() != 0 {
				t.Fatalf("cycle %d: weave user migrate failed:\n%s", cycle, move.out)
			}
			time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
		default:
			time.Sleep(time.Duration(20+rand.IntN(400)) * time.Millisecond)
		}
		killedAt := time.Now()
		srv.kill()
		select {
		case <-move.exited:
		default:
			move.kill()
			cutMoves++
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for _, a := range attempts {
			if a.cut && !a.batch {
				cutPosts++
				a.cut = false
			} else if a.cut {
				cutCommits++
				a.cut = false
			}
		}

		restart := time.Now()
		srv = w.env.serve()
		rerun := time.Now()
		if move.state.ExitCode() != 0 {
			code, out := runWeave(t, "user", "migrate", fmt.Sprint(uid), "--token-database-url", w.db1, "--settle", "200ms")
			switch {
			case code == 0 && strings.Contains(out, "finished moving"):
				resumed++
			case code != 0 && strings.Contains(out, "no target node given"):
				// Killed before the move was journaled: nothing to finish.
			default:
				t.Fatalf("cycle %d: finishing the move: exit %d\n%s", cycle, code, out)
			}
		}
		check := time.Now()
		w.checkMover(cycle, uid, want)
		checkAttempts(t, cycle, attempts, collectionAll(t, poster, "posts"), collectionAll(t, batcher, "batched"))
		t.Logf("cycle %d: killed after %s, writers stopped in %s, restarted in %s, move finished in %s, checked in %s",
			cycle, killedAt.Sub(cycleStart).Round(time.Millisecond), restart.Sub(killedAt).Round(time.Millisecond),
			rerun.Sub(restart).Round(time.Millisecond), check.Sub(rerun).Round(time.Millisecond), time.Since(check).Round(time.Millisecond))
	}
	var acked int
	for _, a := range attempts {
		if a.acked {
			acked++
		}
	}
	// The token server hands out the node that has the data.
	fresh := api.client(t, mover.fxaUID)
	var counts map[string]int
	fresh.must(200, "GET", "/info/collection_counts", nil).json(t, &counts)
	if want := map[string]int{"bookmarks": 30, "history": 30, "tabs": 30}; !maps.Equal(counts, want) {
		t.Errorf("mover's counts from %s: %v, want %v", fresh.token.APIEndpoint, counts, want)
	}
	t.Logf("%s: %d kills in %s: %d writes (%d acknowledged), cut in flight: %d POSTs, %d batch commits, %d moves (%d finished on re-run)",
		bc.name, cycles, time.Since(start).Round(time.Millisecond), len(attempts), acked, cutPosts, cutCommits, cutMoves, resumed)
	if cycles >= 3 && (cutPosts == 0 || cutCommits == 0 || cutMoves == 0 || resumed == 0) {
		t.Errorf("the kills missed a kind of work: %d POSTs, %d batch commits, %d moves cut, %d moves resumed", cutPosts, cutCommits, cutMoves, resumed)
	}
}

// checkMover checks that the moved user's data is whole on the node the
// token database names and absent from the other, with no move pending and
// no lock left on it.
func (w *killWorld) checkMover(cycle int, uid int64, want map[string]weave.CollectionDigest) {
	t := w.t
	t.Helper()
	ctx := context.Background()
	if j, err := w.tokens.Migration(ctx, uid); !errors.Is(err, weave.ErrNotFound) {
		t.Fatalf("cycle %d: a move is still journaled after re-running it: %+v, %v", cycle, j, err)
	}
	home := w.nodeOf(uid)
	for node, s := range w.shards {
		d, err := s.ExportUser(ctx, uid)
		if err != nil {
			t.Fatalf("cycle %d: export from %s: %v", cycle, node, err)
		}
		if node != home {
			if d.Exists {
				t.Fatalf("cycle %d: the user's data is on %s too (home %s)", cycle, node, home)
			}
			continue
		}
		if got := weave.DigestUserData(d); !maps.Equal(got, want) {
			t.Fatalf("cycle %d: the user's data on %s differs from before the moves", cycle, node)
		}
		if st, _, err := s.MoveState(ctx, uid); err != nil || st != weave.MoveNone {
			t.Fatalf("cycle %d: the user's home %s marks them %q (%v)", cycle, node, st, err)
		}
	}
}

// collectionAll reads every id of a collection, following
// X-Weave-Next-Offset.
func collectionAll(t *testing.T, c *syncClient, coll string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	offset := ""
	for {
		path := "/storage/" + coll
		if offset != "" {
			path += "?offset=" + url.QueryEscape(offset)
		}
		r := c.do("GET", path, nil)
		if r.status == 404 {
			return out
		}
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		var ids []string
		r.json(t, &ids)
		for _, id := range ids {
			out[id] = true
		}
		if offset = r.header.Get("X-Weave-Next-Offset"); offset == "" {
			return out
		}
	}
}

// checkAttempts checks every write so far: acknowledged ones are there
// whole, others whole or not at all.
func checkAttempts(t *testing.T, cycle int, attempts []*attempt, posts, batched map[string]bool) {
	t.Helper()
	for _, a := range attempts {
		have := posts
		if a.batch {
			have = batched
		}
		n := 0
		for _, id := range a.ids {
			if have[id] {
				n++
			}
		}
		switch {
		case a.acked && n != len(a.ids):
			t.Fatalf("cycle %d: acknowledged write %s… has %d of %d records after the restart", cycle, a.ids[0], n, len(a.ids))
		case n != 0 && n != len(a.ids):
			t.Fatalf("cycle %d: write %s… is there in part: %d of %d records", cycle, a.ids[0], n, len(a.ids))
		}
	}
}
