package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/testkit"
	"github.com/weave-sync/weave/sqlite"
)

// TestServeDiskFull runs `weave serve` with its SQLite database on a small
// tmpfs and fills the disk: writes get 503 with Retry-After and the log says
// why in one line, reads are still served, the database stays intact, and
// writes succeed again by themselves once the space is freed.
func TestServeDiskFull(t *testing.T) {
	disk := dbtest.SmallDisk(t, "8m")
	db := filepath.Join(disk, "weave.db")
	e := newProcEnv(t, "--database-url", sqliteURL(db))
	srv := e.serve()
	c := e.server().client(t, "d15cf011d15cf011d15cf011d15cf011")
	c.must(200, "POST", "/storage/history", []map[string]any{{"id": "before", "payload": "x"}})
	filler := dbtest.FillDisk(t, disk)

	client := &http.Client{Timeout: 10 * time.Second}
	var refused response
	acked := []string{"before"}
	for i := 0; ; i++ {
		if i == 500 {
			t.Fatal("500 POSTs of 100 kB were accepted on a full disk")
		}
		var recs []map[string]any
		for j := range 50 {
			recs = append(recs, map[string]any{"id": fmt.Sprintf("w%03d-%02d", i, j), "payload": strings.Repeat("f", 2000)})
		}
		r, err := c.try(client, "POST", "/storage/history", recs)
		if err != nil {
			t.Fatal(err)
		}
		if r.status == 200 {
			for _, rec := range recs {
				acked = append(acked, rec["id"].(string))
			}
			continue
		}
		refused = r
		break
	}
	if refused.status != 503 || refused.header.Get("Retry-After") == "" || string(refused.body) != "0" {
		t.Fatalf("write on a full disk: %d %q (Retry-After %q), want 503 0 with Retry-After", refused.status, refused.body, refused.header.Get("Retry-After"))
	}
	// The 503 reaches the client before the server's log line has come
	// through its stdout pipe to srv.out: wait for it, as long as a loaded
	// machine needs.
	testkit.Eventually(t, 30*time.Second, "the disk-full log line", func() bool { return strings.Contains(srv.out.String(), "database storage full") })
	t.Logf("log: %s", strings.TrimSpace(srv.out.String()))

	// Reads go on, with every acknowledged record.
	have := collectionAll(t, c, "history")
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged record %s missing on a full disk", id)
		}
	}
	c.must(200, "GET", "/info/collections", nil)
	if err := sqlite.IntegrityCheck(t.Context(), db); err != nil {
		t.Fatalf("on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.must(200, "POST", "/storage/history", []map[string]any{{"id": "after", "payload": "y"}})
	if !collectionAll(t, c, "history")["after"] {
		t.Fatal("the write after space returned is not visible")
	}
	srv.stop(t)
	if err := sqlite.IntegrityCheck(t.Context(), db); err != nil {
		t.Fatalf("after the disk was full: %v", err)
	}
}
