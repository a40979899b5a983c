package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/sqlite"
)

// try is syncClient.do for requests that may fail at the transport (the
// server being killed): it returns the error instead of failing the test.
func (c *syncClient) try(client *http.Client, method, path string, body any) (response, error) {
	r, err := testkit.HawkDo(client, c.token.Key, c.token.ID, method, c.token.APIEndpoint+path, body)
	return response{r.Status, r.Header, r.Body}, err
}

// collectionIDs reads every id of a collection.
func collectionIDs(t *testing.T, c *syncClient, coll string) map[string]bool {
	t.Helper()
	var ids []string
	c.must(200, "GET", "/storage/"+coll, nil).json(t, &ids)
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// TestBackupRestoreUnderLoad takes `weave db backup` of a SQLite database
// while clients write to `weave serve` through the HTTP API, restores it
// (refused while the server runs), and probes the restored server: every
// write acknowledged before the backup started is there, no write is there
// in part, and nothing acknowledged after the backup finished is.
func TestBackupRestoreUnderLoad(t *testing.T) {
	e := newProcEnv(t)
	srv := e.serve()
	c := e.server().client(t, "bac0bac0bac0bac0bac0bac0bac0bac0")

	type ack struct {
		ids []string
		at  time.Time // when the answer arrived
	}
	var mu sync.Mutex
	var acks []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopWriters := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	defer stopWriters() // on a t.Fatal before the writers are stopped
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// Three records per POST: all or none may be restored.
				var recs []map[string]any
				var ids []string
				for i := range 3 {
					id := fmt.Sprintf("w%d-%05d-%d", w, n, i)
					ids = append(ids, id)
					recs = append(recs, map[string]any{"id": id, "payload": strings.Repeat("x", 200)})
				}
				r, err := c.try(client, "POST", "/storage/history", recs)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if r.status != 200 {
					if r.status == 503 && r.header.Get("Retry-After") != "" {
						continue
					}
					t.Errorf("writer %d: %d %s", w, r.status, r.body)
					return
				}
				mu.Lock()
				acks = append(acks, ack{ids, time.Now()})
				mu.Unlock()
			}
		}()
	}
	// acked reports whether a POST was acknowledged after t (the writers
	// stop on their first error, so give up on them failing too).
	acked := func(after time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acks) > 0 && acks[len(acks)-1].at.After(after)
	}
	waitAcked := func(after time.Time) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !acked(after); time.Sleep(10 * time.Millisecond) {
			if t.Failed() || time.Now().After(deadline) {
				t.Fatalf("no POST acknowledged after %s", after.Format(time.StampMilli))
			}
		}
	}
	// The load must span the backup: some POSTs before it, some after.
	waitAcked(time.Time{})

	backup := filepath.Join(e.dir, "backups", "weave-backup.db")
	if err := os.Mkdir(filepath.Dir(backup), 0o700); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	code, out := runWeave(t, "db", "backup", backup, "--data-dir", e.dataDir())
	finished := time.Now()
	if code != 0 || !strings.Contains(out, "integrity ok") {
		t.Fatalf("weave db backup: exit %d\n%s", code, out)
	}
	t.Logf("backup under load took %s: %s", finished.Sub(started).Round(time.Millisecond), strings.TrimSpace(out))
	waitAcked(finished)
	stopWriters()
	if t.Failed() {
		return
	}

	st, err := os.Stat(backup)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if code, out := runWeave(t, "db", "backup", backup, "--data-dir", e.dataDir()); code == 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("a second backup onto the same file: exit %d\n%s", code, out)
	}
	if code, out := runWeave(t, "db", "restore", backup, "--data-dir", e.dataDir()); code == 0 || !strings.Contains(out, "stop `weave serve`") {
		t.Fatalf("restore while the server runs: exit %d, want a refusal\n%s", code, out)
	} else {
		t.Logf("restore while serving: %s", strings.TrimSpace(out))
	}
	srv.stop(t)

	// A damaged backup is refused before anything is touched.
	bad := filepath.Join(e.dir, "backups", "damaged.db")
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the b-tree page header and cell pointers of every page
	// after the first (the schema): damage in a page's free space would go
	// unseen, and how full the pages are depends on how many POSTs the load
	// got in.
	for i := 4096; i+100 < len(raw); i += 4096 {
		copy(raw[i:i+100], bytes.Repeat([]byte{0xA5}, 100))
	}
	if err := os.WriteFile(bad, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runWeave(t, "db", "restore", bad, "--data-dir", e.dataDir()); code == 0 || !strings.Contains(out, "integrity_check") {
		t.Fatalf("restore of a damaged backup: exit %d, want a refusal naming integrity_check\n%s", code, out)
	} else {
		t.Logf("damaged backup: %s", strings.TrimSpace(out))
	}

	code, out = runWeave(t, "db", "restore", backup, "--data-dir", e.dataDir())
	if code != 0 || !strings.Contains(out, "restored") || !strings.Contains(out, ".before-restore-") {
		t.Fatalf("weave db restore: exit %d\n%s", code, out)
	}
	if err := sqlite.IntegrityCheck(t.Context(), filepath.Join(e.dataDir(), "weave.db")); err != nil {
		t.Fatalf("restored database: %v", err)
	}
	e.serve()
	have := collectionIDs(t, c, "history")
	var before, after, partial int
	for _, a := range acks {
		n := 0
		for _, id := range a.ids {
			if have[id] {
				n++
			}
		}
		switch {
		case n != 0 && n != len(a.ids):
			partial++
			t.Errorf("POST of %v restored in part (%d of %d)", a.ids, n, len(a.ids))
		case a.at.Before(started):
			before++
			if n == 0 {
				t.Errorf("records %v acknowledged before the backup started are missing", a.ids)
			}
		case a.at.After(finished):
			after++
			if n != 0 {
				t.Errorf("records %v acknowledged after the backup finished were restored", a.ids)
			}
		}
	}
	t.Logf("%d POSTs acknowledged, %d before the backup, %d after it, %d records restored", len(acks), before, after, len(have))
	if before == 0 || after == 0 {
		t.Fatalf("the load did not span the backup: %d POSTs before it, %d after", before, after)
	}
}
