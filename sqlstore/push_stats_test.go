package sqlstore_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/weave-sync/weave/push"
)

// TestPushStats checks `weave push stats`' numbers on every backend:
// users, channels, waiting messages by age, expired ones, wake-ups and
// connections per node.
func TestPushStats(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixMilli()
	const day = 24 * time.Hour
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s := pushStore(t, kind)
			empty, err := s.Stats(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			if empty.UAIDs != 0 || empty.WaitingTotal() != 0 || len(empty.Waiting) != len(push.AgeBuckets)+1 || empty.Nodes != nil || empty.Oldest != 0 {
				t.Fatalf("empty store: %+v", empty)
			}
			uaid := func(i int) string { return fmt.Sprintf("%032x", i) }
			chid := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", i) }
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			// Three browsers at node a (one of them with two channels),
			// one at node b, one disconnected.
			for i, node := range []string{"node-a", "node-a", "node-a", "node-b", "node-c"} {
				must(s.AddChannel(ctx, uaid(i), chid(i), node, now-int64(i)*1000, 0))
			}
			must(s.AddChannel(ctx, uaid(0), chid(99), "node-a", now, 0))
			must(s.Disconnect(ctx, uaid(4), "node-c"))
			msg := func(id string, age, ttl time.Duration, wake string) {
				t.Helper()
				created := now - age.Milliseconds()
				must(s.Save(ctx, push.Message{ID: id, UAID: uaid(0), ChannelID: chid(0), Created: created, Expires: created + ttl.Milliseconds()}, wake))
			}
			msg("m1", 10*time.Second, time.Hour, "node-a")
			msg("m2", -5*time.Second, time.Hour, "") // from a process whose clock is ahead
			msg("m3", 2*time.Hour, day, "")
			msg("m4", 8*day, 30*day, "")
			msg("m5", 2*day, time.Hour, "") // expired
			st, err := s.Stats(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			if st.UAIDs != 5 || st.Channels != 6 || st.Expired != 1 || st.Wakeups != 1 || st.At != now {
				t.Errorf("counts: %+v", st)
			}
			if want := []int64{2, 0, 1, 0, 1}; !reflect.DeepEqual(st.Waiting, want) {
				t.Errorf("waiting by age %v, want %v", st.Waiting, want)
			}
			if want := now - (8 * day).Milliseconds(); st.Oldest != want {
				t.Errorf("oldest %d, want %d", st.Oldest, want)
			}
			want := []push.NodeConns{{Node: "node-a", Connections: 3, LastConnect: now}, {Node: "node-b", Connections: 1, LastConnect: now - 3000}}
			if !reflect.DeepEqual(st.Nodes, want) {
				t.Errorf("nodes %+v, want %+v", st.Nodes, want)
			}
		})
	}
}
