package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/internal/faultproxy"
)

// The database dies under `weave serve` (all connections cut, new ones
// refused) and comes back: Sync requests meanwhile get 503 with
// Retry-After, never a 500; a batch commit cut in flight is applied whole
// or not at all; afterwards the same process serves again without restart.
func TestServeDatabaseOutage(t *testing.T) {
	for _, bc := range backendCases()[1:3] { // mysql, postgres
		t.Run(bc.name, func(t *testing.T) {
			url := bc.url(t)
			addr, err := dbtest.Addr(url)
			if err != nil {
				t.Fatal(err)
			}
			proxy, err := faultproxy.New(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			viaProxy, err := dbtest.WithHost(url, proxy.Addr())
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, viaProxy, "--db-timeout", "3s")
			c := srv.client(t, "deaddeaddeaddeaddeaddeaddeaddead")
			c.must(200, "POST", "/storage/history", []map[string]any{{"id": "before", "payload": "x"}})

			// A batch whose commit is cut mid-flight.
			var open struct{ Batch string }
			recs := []map[string]any{}
			for i := 0; i < 50; i++ {
				recs = append(recs, map[string]any{"id": fmt.Sprintf("b%02d", i), "payload": "staged"})
			}
			c.must(202, "POST", "/storage/forms?batch=true", recs).json(t, &open)
			// Cut where the staged records are applied to the collection.
			cut := proxy.CutOn("INTO bsos")
			r := c.do("POST", "/storage/forms?commit=true&batch="+open.Batch, []map[string]any{{"id": "last", "payload": "y"}})
			proxy.Disarm()
			select {
			case <-cut: // closes once every connection has been cut
			case <-time.After(5 * time.Second):
				t.Fatalf("the proxy never saw the batch being applied (commit answered %d %s)", r.status, r.body)
			}
			if r.status != 503 || r.header.Get("Retry-After") == "" {
				t.Fatalf("batch commit cut: %d %s, want 503 with Retry-After", r.status, r.body)
			}

			// The database goes away entirely.
			proxy.Refuse()
			proxy.DropAll()
			for _, path := range []string{"/info/collections", "/storage/history?full=1"} {
				r := c.do("GET", path, nil)
				if r.status != 503 || r.header.Get("Retry-After") == "" {
					t.Fatalf("GET %s with the database down: %d (Retry-After %q), want 503 with Retry-After", path, r.status, r.header.Get("Retry-After"))
				}
			}
			r = c.do("POST", "/storage/history", []map[string]any{{"id": "during", "payload": "z"}})
			if r.status != 503 || r.header.Get("Retry-After") == "" {
				t.Fatalf("POST with the database down: %d, want 503 with Retry-After", r.status)
			}
			if code, _ := get(t, srv.base+"/__heartbeat__", ""); code != 503 {
				t.Errorf("heartbeat with the database down: %d, want 503", code)
			}

			// It comes back: the same process reconnects by itself.
			if err := proxy.Resume(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				r := c.do("GET", "/info/collections", nil)
				if r.status == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not serving 15 s after the database came back: %d %s", r.status, r.body)
				}
				time.Sleep(100 * time.Millisecond)
			}
			c.must(200, "POST", "/storage/history", []map[string]any{{"id": "after", "payload": "w"}})
			var ids []string
			c.must(200, "GET", "/storage/forms", nil).json(t, &ids)
			if len(ids) != 0 {
				t.Fatalf("a batch cut while being applied left %d of 51 records", len(ids))
			}
			c.must(200, "GET", "/storage/history", nil).json(t, &ids)
			if len(ids) != 2 {
				t.Fatalf("history after the outage: %v, want before and after", ids)
			}
		})
	}
}
