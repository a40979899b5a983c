package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fxa/issuer"
	"github.com/weave-sync/weave/internal/testkit"
)

// TestServeResumesKilledMove kills `weave user migrate` with SIGKILL in the
// middle of a move, again and again, while two `weave serve` processes
// (--resume-moves-after 1s) share the token database and a client keeps
// writing as the moving user. Nobody reruns the move: each time one of the
// two processes, and only one, finishes it within seconds; the user ends
// whole on exactly the node the token server hands out, the old copy gone,
// and every acknowledged write there.
func TestServeResumesKilledMove(t *testing.T) {
	for _, bc := range backendCases()[:3] {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			testServeResumesKilledMove(t, bc)
		})
	}
}

func testServeResumesKilledMove(t *testing.T, bc backendCase) {
	w := newKillWorld(t, bc)
	args := []string{"--database-url", w.db1, "--nodes", "all", "--state-refresh", "100ms", "--resume-moves-after", "1s", "--log-level", "info"}
	w.env = newProcEnv(t, args...)
	w.node1 = "http://" + w.env.addr
	w.node2 = w.node1 + "/n2"
	// A second process serving the same nodes, as behind a load balancer.
	env2 := newProcEnv(t, append(args, "--public-url", w.node1)...)
	w.weave("node", "add", w.node2, "--database-url", w.db2, "--capacity", "50", "--token-database-url", w.db1)
	w.weave("node", "set-state", w.node2, "draining", "--token-database-url", w.db1)
	srvs := []*proc{w.env.serve(), env2.serve()}
	api := w.env.server()
	mover := api.client(t, "00000000000000000000000000000c0c")
	for _, coll := range []string{"bookmarks", "history", "tabs"} {
		var recs []map[string]any
		for i := range 30 {
			recs = append(recs, map[string]any{"id": fmt.Sprintf("%s%02d", coll, i), "payload": strings.Repeat("m", 300), "sortindex": i})
		}
		mover.must(200, "POST", "/storage/"+coll, recs)
	}
	w.weave("node", "set-state", w.node2, "up", "--token-database-url", w.db1)
	w.openDatabases()
	uid := mover.token.UID

	var acked []string
	var mu sync.Mutex
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() { // POSTs as the moving user, following their node
		defer close(writerDone)
		client := &http.Client{Timeout: 10 * time.Second}
		tok := mover.token
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("w%05d", n)
			r, err := testkit.HawkDo(client, tok.Key, tok.ID, "POST", tok.APIEndpoint+"/storage/posts", []map[string]any{{"id": id, "payload": id}})
			switch {
			case err != nil:
				t.Errorf("POST: %v", err)
				return
			case r.Status == 200:
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			case r.Status == 503: // locked: retry a little later
				time.Sleep(20 * time.Millisecond)
			case r.Status == 401: // moved: a new token names the new node
				if tok, err = freshToken(api, mover.fxaUID); err != nil {
					t.Errorf("token: %v", err)
					return
				}
			default:
				t.Errorf("POST: %d %s", r.Status, r.Body)
				return
			}
		}
	}()

	// Where each move is killed: as soon as it is journaled; while it waits
	// out --settle in the copy (the target marked the user moved before:
	// step locked, the target's copy written); while it waits out --settle
	// after marking the user moved (step repointed).
	kills := []struct {
		settle string
		at     weave.MoveStep
	}{{"200ms", ""}, {"3s", weave.MoveStepLocked}, {"3s", weave.MoveStepRepointed}, {"200ms", ""}}
	resumes := func() int {
		n := 0
		for _, s := range srvs {
			n += strings.Count(s.out.String(), "resumed user move finished")
		}
		return n
	}
	for cycle, k := range kills {
		from := w.nodeOf(uid)
		to := w.node1
		if from == w.node1 {
			to = w.node2
		}
		move := startWeave(t, "user", "migrate", fmt.Sprint(uid), "--to", to, "--token-database-url", w.db1, "--settle", k.settle, "--heartbeat", "100ms")
		var step weave.MoveStep
		testkit.Eventually(t, 30*time.Second, "the move journaled at the step to kill it at", func() bool {
			j, err := w.tokens.Migration(context.Background(), uid)
			step = j.Step
			return err == nil && (k.at == "" || j.Step == k.at)
		})
		if k.at != "" {
			time.Sleep(300 * time.Millisecond) // into the settle
		}
		move.kill()
		if move.state.ExitCode() == 0 {
			t.Fatalf("cycle %d: the move finished before the kill:\n%s", cycle, move.out)
		}
		if n := resumes(); n != cycle {
			t.Fatalf("cycle %d: a serve process resumed a live move (%d resumes logged in all)", cycle, n)
		}
		killed := time.Now()
		testkit.Eventually(t, 30*time.Second, "the killed move finished by a serve process", func() bool {
			_, err := w.tokens.Migration(context.Background(), uid)
			return errors.Is(err, weave.ErrNotFound) && resumes() > cycle
		})
		t.Logf("cycle %d: move to %s killed after step %q, finished by a serve process %s later", cycle, to, step, time.Since(killed).Round(time.Millisecond))
		if got := w.nodeOf(uid); got != to {
			t.Fatalf("cycle %d: user on %s after the resume, want %s", cycle, got, to)
		}
		w.checkHome(cycle, uid)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	<-writerDone
	if t.Failed() {
		return
	}
	if n := resumes(); n != len(kills) {
		t.Errorf("%d resumes logged in all for %d killed moves", n, len(kills))
	}
	// Every acknowledged write, and the original data, from the node the
	// token server hands out.
	fresh := api.client(t, mover.fxaUID)
	var counts map[string]int
	fresh.must(200, "GET", "/info/collection_counts", nil).json(t, &counts)
	for _, coll := range []string{"bookmarks", "history", "tabs"} {
		if counts[coll] != 30 {
			t.Errorf("%s: %d records, want 30 (%v)", coll, counts[coll], counts)
		}
	}
	got := collectionAll(t, fresh, "posts")
	for _, id := range acked {
		if !got[id] {
			t.Errorf("acknowledged write %s lost", id)
		}
	}
	t.Logf("%s: %d moves killed and resumed, %d writes acknowledged", bc.name, len(kills), len(acked))
	for _, s := range srvs {
		for _, l := range strings.Split(s.out.String(), "\n") {
			if strings.Contains(l, "msg=\"fleet: ") {
				t.Log(l)
			}
		}
	}
}

// checkHome checks that uid has no move pending, data only on the node the
// token database names, and no mark there.
func (w *killWorld) checkHome(cycle int, uid int64) {
	t := w.t
	t.Helper()
	ctx := context.Background()
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
			if st, _, err := s.MoveState(ctx, uid); err != nil || st != weave.MoveMoved {
				t.Fatalf("cycle %d: the old node %s marks the user %q (%v)", cycle, node, st, err)
			}
			continue
		}
		want := map[string]int{"bookmarks": 30, "history": 30, "tabs": 30}
		if got := seededCounts(d); !d.Exists || !maps.Equal(want, got) {
			t.Fatalf("cycle %d: the user's data on %s is not whole: records %v, want %v", cycle, node, got, want)
		}
		if st, _, err := s.MoveState(ctx, uid); err != nil || st != weave.MoveNone {
			t.Fatalf("cycle %d: the user's home %s marks them %q (%v)", cycle, node, st, err)
		}
	}
}

// seededCounts counts the records of the collections seeded before the
// moves (the writer's "posts" grows meanwhile and is checked at the end).
func seededCounts(d weave.UserData) map[string]int {
	out := map[string]int{}
	for _, c := range d.Collections {
		switch c.Name {
		case "bookmarks", "history", "tabs":
			out[c.Name] = len(c.BSOs)
		}
	}
	return out
}

// freshToken fetches a token for fxaUID, as Firefox does after a 401.
func freshToken(s *server, fxaUID string) (tokenResponse, error) {
	var tok tokenResponse
	req, _ := http.NewRequest("GET", s.base+"/1.0/sync/1.5", nil)
	req.Header.Set("Authorization", "Bearer "+s.issuer.Mint(issuer.Token{Sub: fxaUID, Generation: 1}))
	req.Header.Set("X-KeyID", "1700000000000-ASNFZ4mrze8BI0VniavN7w")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tok, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return tok, fmt.Errorf("token server: %d %s", resp.StatusCode, body)
	}
	return tok, json.Unmarshal(body, &tok)
}
