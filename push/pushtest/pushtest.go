// Package pushtest is the conformance suite every push.Store passes: run it
// from the adapter's tests against a fresh, migrated database.
package pushtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"testing"

	"github.com/weave-sync/weave/push"
)

// Run runs the suite; open returns an empty store (a new one per call).
func Run(t *testing.T, open func(t *testing.T) push.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s push.Store)
	}{
		{"Users", testUsers},
		{"ChannelCap", testChannelCap},
		{"ConcurrentChannelCap", testConcurrentChannelCap},
		{"Messages", testMessages},
		{"Topic", testTopic},
		{"ConcurrentTopic", testConcurrentTopic},
		{"RemoveChannel", testRemoveChannel},
		{"Wakeups", testWakeups},
		{"Purge", testPurge},
		{"DeleteUser", testDeleteUser},
		{"Broadcasts", testBroadcasts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

const (
	uaidA = "0123456789abcdef0123456789abcdef"
	uaidB = "fedcba9876543210fedcba9876543210"
	chid1 = "87ca7290-4cdd-434e-8f9c-b76514cd3977"
	chid2 = "11111111-2222-4333-8444-555555555555"
)

func chid(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testUsers(t *testing.T, s push.Store) {
	ctx := context.Background()
	if _, err := s.User(ctx, uaidA); !errors.Is(err, push.ErrUnknownUser) {
		t.Fatalf("User of unknown UAID: %v, want ErrUnknownUser", err)
	}
	if err := s.Connect(ctx, uaidA, "n1", 5); !errors.Is(err, push.ErrUnknownUser) {
		t.Fatalf("Connect of unknown UAID: %v, want ErrUnknownUser (no record before the first channel)", err)
	}
	if _, err := s.Route(ctx, uaidA, chid1); !errors.Is(err, push.ErrUnknownUser) {
		t.Fatalf("Route to unknown UAID: %v", err)
	}
	must(t, s.AddChannel(ctx, uaidA, chid1, "n1", 10, 0))
	u, err := s.User(ctx, uaidA)
	must(t, err)
	if u != (push.User{UAID: uaidA, Node: "n1", Connected: 10, Created: 10}) {
		t.Fatalf("user after first channel: %+v", u)
	}
	if u, err = s.Route(ctx, uaidA, chid1); err != nil || u.Node != "n1" {
		t.Fatalf("Route: %+v, %v", u, err)
	}
	if _, err := s.Route(ctx, uaidA, chid2); !errors.Is(err, push.ErrUnknownChannel) {
		t.Fatalf("Route to unregistered channel: %v, want ErrUnknownChannel", err)
	}
	// Registering again is harmless.
	must(t, s.AddChannel(ctx, uaidA, chid1, "n1", 11, 1))

	// The connection moves to n2; n1's late disconnect must not undo it.
	must(t, s.Connect(ctx, uaidA, "n2", 20))
	must(t, s.Connect(ctx, uaidA, "n2", 20)) // unchanged row: still no error
	must(t, s.Disconnect(ctx, uaidA, "n1"))
	if u, _ := s.User(ctx, uaidA); u.Node != "n2" || u.Connected != 20 || u.Created != 10 {
		t.Fatalf("after n1's stale disconnect: %+v", u)
	}
	must(t, s.Disconnect(ctx, uaidA, "n2"))
	if u, _ := s.User(ctx, uaidA); u.Node != "" {
		t.Fatalf("after disconnect: %+v", u)
	}
	// A UAID's registration through another node takes the connection.
	must(t, s.AddChannel(ctx, uaidA, chid2, "n3", 30, 0))
	if u, _ := s.Route(ctx, uaidA, chid2); u.Node != "n3" {
		t.Fatalf("after register via n3: %+v", u)
	}
	if _, err := s.User(ctx, uaidB); !errors.Is(err, push.ErrUnknownUser) {
		t.Fatalf("other UAID: %v", err)
	}
}

func testChannelCap(t *testing.T, s push.Store) {
	ctx := context.Background()
	for i := range 3 {
		must(t, s.AddChannel(ctx, uaidA, chid(i), "n", 1, 3))
	}
	if err := s.AddChannel(ctx, uaidA, chid(3), "n", 1, 3); !errors.Is(err, push.ErrTooManyChannels) {
		t.Fatalf("4th channel with a cap of 3: %v", err)
	}
	if _, err := s.Route(ctx, uaidA, chid(3)); !errors.Is(err, push.ErrUnknownChannel) {
		t.Fatalf("refused channel was registered: %v", err)
	}
	// Re-registering an existing channel at the cap is fine; other UAIDs
	// have their own cap; removing one makes room.
	must(t, s.AddChannel(ctx, uaidA, chid(2), "n", 1, 3))
	must(t, s.AddChannel(ctx, uaidB, chid(3), "n", 1, 3))
	must(t, s.RemoveChannel(ctx, uaidA, chid(0)))
	must(t, s.AddChannel(ctx, uaidA, chid(3), "n", 1, 3))
}

func testConcurrentChannelCap(t *testing.T, s push.Store) {
	ctx := context.Background()
	must(t, s.AddChannel(ctx, uaidA, chid(100), "n", 1, 5))
	var wg sync.WaitGroup
	errs := make([]error, 12)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.AddChannel(ctx, uaidA, chid(i), "n", 1, 5)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, push.ErrTooManyChannels):
		default:
			t.Fatalf("concurrent AddChannel: %v", err)
		}
	}
	if ok != 4 {
		t.Fatalf("%d concurrent registrations succeeded under a cap of 5 with 1 channel, want 4", ok)
	}
}

func msg(id, uaid, ch, topic string, created, expires int64) push.Message {
	return push.Message{ID: id, UAID: uaid, ChannelID: ch, Topic: topic, Data: "ZGF0YQ-_" + id,
		Headers: map[string]string{"encoding": "aes128gcm"}, Created: created, Expires: expires}
}

func ids(ms []push.Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func testMessages(t *testing.T, s push.Store) {
	ctx := context.Background()
	must(t, s.AddChannel(ctx, uaidA, chid1, "n", 1, 0))
	must(t, s.AddChannel(ctx, uaidA, chid2, "n", 1, 0))
	must(t, s.AddChannel(ctx, uaidB, chid1, "n", 1, 0))
	must(t, s.Save(ctx, msg("m3", uaidA, chid1, "", 300, 5000), ""))
	must(t, s.Save(ctx, msg("m1", uaidA, chid2, "", 100, 5000), ""))
	must(t, s.Save(ctx, msg("t2", uaidA, chid1, "tp", 200, 5000), ""))
	must(t, s.Save(ctx, msg("old", uaidA, chid1, "", 50, 1000), ""))
	noData := push.Message{ID: "m4", UAID: uaidA, ChannelID: chid2, Created: 400, Expires: 5000}
	must(t, s.Save(ctx, noData, ""))
	must(t, s.Save(ctx, msg("b1", uaidB, chid1, "", 100, 5000), ""))

	if n, err := s.Stored(ctx, uaidA); err != nil || n != 5 {
		t.Fatalf("Stored: %d, %v; want 5 (expired ones count until purged)", n, err)
	}
	if n, err := s.Stored(ctx, "ffffffffffffffffffffffffffffffff"); err != nil || n != 0 {
		t.Fatalf("Stored of an unknown UAID: %d, %v", n, err)
	}
	got, err := s.Pending(ctx, uaidA, 1000, 10)
	must(t, err)
	// Topic first, then oldest first; "old" expired at 1000.
	if want := []string{"t2", "m1", "m3", "m4"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("Pending: %v, want %v", ids(got), want)
	}
	if want := msg("t2", uaidA, chid1, "tp", 200, 5000); !reflect.DeepEqual(got[0], want) {
		t.Fatalf("topic message read back as %+v, want %+v", got[0], want)
	}
	if !reflect.DeepEqual(got[3], noData) {
		t.Fatalf("message without data read back as %+v, want %+v", got[3], noData)
	}
	if got, _ := s.Pending(ctx, uaidA, 999, 2); !reflect.DeepEqual(ids(got), []string{"t2", "old"}) {
		t.Fatalf("Pending limit 2 at 999: %v", ids(got))
	}
	if got, _ := s.Pending(ctx, uaidA, 5000, 10); len(got) != 0 {
		t.Fatalf("Pending after every expiry: %v", ids(got))
	}

	// Acks are scoped to the UAID.
	if found, err := s.Delete(ctx, uaidB, "m1"); err != nil || found {
		t.Fatalf("Delete of another UAID's message: %v, %v", found, err)
	}
	if found, err := s.Delete(ctx, uaidA, "m1"); err != nil || !found {
		t.Fatalf("Delete: %v, %v", found, err)
	}
	if found, _ := s.Delete(ctx, uaidA, "m1"); found {
		t.Fatal("second Delete found the message")
	}
	if found, err := s.Cancel(ctx, "m3"); err != nil || !found {
		t.Fatalf("Cancel: %v, %v", found, err)
	}
	if found, _ := s.Cancel(ctx, "nope"); found {
		t.Fatal("Cancel of unknown id found something")
	}
	if got, _ := s.Pending(ctx, uaidA, 1000, 10); !reflect.DeepEqual(ids(got), []string{"t2", "m4"}) {
		t.Fatalf("Pending after deletes: %v", ids(got))
	}
	if got, _ := s.Pending(ctx, uaidB, 1000, 10); !reflect.DeepEqual(ids(got), []string{"b1"}) {
		t.Fatalf("other UAID's Pending: %v", ids(got))
	}
}

func testTopic(t *testing.T, s push.Store) {
	ctx := context.Background()
	must(t, s.AddChannel(ctx, uaidA, chid1, "n", 1, 0))
	must(t, s.AddChannel(ctx, uaidA, chid2, "n", 1, 0))
	must(t, s.Save(ctx, msg("a", uaidA, chid1, "news", 100, 5000), ""))
	must(t, s.Save(ctx, msg("b", uaidA, chid2, "news", 110, 5000), "")) // other channel: kept
	must(t, s.Save(ctx, msg("c", uaidA, chid1, "other", 120, 5000), ""))
	must(t, s.Save(ctx, msg("d", uaidA, chid1, "news", 130, 6000), "")) // replaces a
	must(t, s.Save(ctx, msg("e", uaidA, chid1, "", 90, 5000), ""))
	got, err := s.Pending(ctx, uaidA, 1000, 10)
	must(t, err)
	if want := []string{"b", "c", "d", "e"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("Pending after topic replacement: %v, want %v", ids(got), want)
	}
	if got[2].Data != "ZGF0YQ-_d" || got[2].Expires != 6000 || got[2].Created != 130 {
		t.Fatalf("replacement kept old contents: %+v", got[2])
	}
	if found, _ := s.Delete(ctx, uaidA, "a"); found {
		t.Fatal("replaced message could still be acked")
	}
}

func testConcurrentTopic(t *testing.T, s push.Store) {
	ctx := context.Background()
	must(t, s.AddChannel(ctx, uaidA, chid1, "n", 1, 0))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Save(ctx, msg(fmt.Sprint("m", i), uaidA, chid1, "t", int64(100+i), 5000), "")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	got, err := s.Pending(ctx, uaidA, 1000, 10)
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("%d messages with one topic after concurrent saves: %v", len(got), ids(got))
	}
}

func testRemoveChannel(t *testing.T, s push.Store) {
	ctx := context.Background()
	must(t, s.AddChannel(ctx, uaidA, chid1, "n", 1, 0))
	must(t, s.AddChannel(ctx, uaidA, chid2, "n", 1, 0))
	must(t, s.Save(ctx, msg("x", uaidA, chid1, "", 100, 5000), ""))
	must(t, s.Save(ctx, msg("y", uaidA, chid2, "", 100, 5000), ""))
	must(t, s.RemoveChannel(ctx, uaidA, chid1))
	must(t, s.RemoveChannel(ctx, uaidA, chid1)) // unknown: fine
	if _, err := s.Route(ctx, uaidA, chid1); !errors.Is(err, push.ErrUnknownChannel) {
		t.Fatalf("Route after RemoveChannel: %v", err)
	}
	if got, _ := s.Pending(ctx, uaidA, 1000, 10); !reflect.DeepEqual(ids(got), []string{"y"}) {
		t.Fatalf("Pending after RemoveChannel: %v", ids(got))
	}
	if _, err := s.User(ctx, uaidA); err != nil {
		t.Fatalf("user gone with a channel: %v", err)
	}
}

func testWakeups(t *testing.T, s push.Store) {
	ctx := context.Background()
	if got, err := s.Wakeups(ctx, "n1", 10); err != nil || len(got) != 0 {
		t.Fatalf("Wakeups of an empty store: %v, %v", got, err)
	}
	must(t, s.AddChannel(ctx, uaidA, chid1, "n1", 1, 0))
	must(t, s.AddChannel(ctx, uaidB, chid1, "n2", 1, 0))
	must(t, s.Save(ctx, msg("1", uaidA, chid1, "", 100, 5000), "n1"))
	must(t, s.Save(ctx, msg("2", uaidA, chid1, "", 101, 5000), "n1"))
	must(t, s.Save(ctx, msg("3", uaidB, chid1, "", 102, 5000), "n2"))
	must(t, s.Save(ctx, msg("4", uaidB, chid1, "", 103, 5000), ""))
	got, err := s.Wakeups(ctx, "n1", 1)
	must(t, err)
	if !reflect.DeepEqual(got, []string{uaidA}) {
		t.Fatalf("Wakeups(n1, 1): %v", got)
	}
	got, _ = s.Wakeups(ctx, "n1", 10)
	if !reflect.DeepEqual(got, []string{uaidA}) {
		t.Fatalf("second Wakeups(n1): %v", got)
	}
	if got, _ := s.Wakeups(ctx, "n1", 10); len(got) != 0 {
		t.Fatalf("Wakeups were not taken: %v", got)
	}
	if got, _ := s.Wakeups(ctx, "n2", 10); !reflect.DeepEqual(got, []string{uaidB}) {
		t.Fatalf("Wakeups(n2): %v", got)
	}
}

func testPurge(t *testing.T, s push.Store) {
	ctx := context.Background()
	must(t, s.AddChannel(ctx, uaidA, chid1, "n", 1, 0))
	for i := range 5 {
		must(t, s.Save(ctx, msg(fmt.Sprint("e", i), uaidA, chid1, "", 100, int64(1000+i)), "dead"))
	}
	must(t, s.Save(ctx, msg("live", uaidA, chid1, "", 2000, 9000), "n"))
	n, err := s.PurgeExpired(ctx, 1003, 0, 2)
	must(t, err)
	if n != 2 {
		t.Fatalf("PurgeExpired limit 2: %d", n)
	}
	n, err = s.PurgeExpired(ctx, 1003, 1500, 100)
	must(t, err)
	if n != 2 { // e2, e3 (e4 expires at 1004)
		t.Fatalf("PurgeExpired: %d, want 2", n)
	}
	if got, _ := s.Pending(ctx, uaidA, 0, 10); !reflect.DeepEqual(ids(got), []string{"e4", "live"}) {
		t.Fatalf("left after purge: %v", ids(got))
	}
	// Wake-ups created before 1500 went (the dead node's); n's stays.
	if got, _ := s.Wakeups(ctx, "dead", 10); len(got) != 0 {
		t.Fatalf("stale wake-ups kept: %v", got)
	}
	if got, _ := s.Wakeups(ctx, "n", 10); len(got) != 1 {
		t.Fatalf("fresh wake-up purged: %v", got)
	}
}

func testDeleteUser(t *testing.T, s push.Store) {
	ctx := context.Background()
	must(t, s.AddChannel(ctx, uaidA, chid1, "n", 1, 0))
	must(t, s.AddChannel(ctx, uaidB, chid1, "n", 1, 0))
	must(t, s.Save(ctx, msg("a", uaidA, chid1, "", 100, 5000), "n"))
	must(t, s.Save(ctx, msg("b", uaidB, chid1, "", 100, 5000), ""))
	must(t, s.DeleteUser(ctx, uaidA))
	if _, err := s.Route(ctx, uaidA, chid1); !errors.Is(err, push.ErrUnknownUser) {
		t.Fatalf("Route after DeleteUser: %v", err)
	}
	if got, _ := s.Pending(ctx, uaidA, 0, 10); len(got) != 0 {
		t.Fatalf("messages survived DeleteUser: %v", ids(got))
	}
	if got, _ := s.Wakeups(ctx, "n", 10); len(got) != 0 {
		t.Fatalf("wake-ups survived DeleteUser: %v", got)
	}
	if got, _ := s.Pending(ctx, uaidB, 0, 10); len(got) != 1 {
		t.Fatalf("other user's messages: %v", ids(got))
	}
	// The UAID can start over.
	must(t, s.AddChannel(ctx, uaidA, chid2, "n", 2, 0))
	if _, err := s.Route(ctx, uaidA, chid1); !errors.Is(err, push.ErrUnknownChannel) {
		t.Fatalf("old channel back after DeleteUser: %v", err)
	}
}

func testBroadcasts(t *testing.T, s push.Store) {
	ctx := context.Background()
	get := func() map[string]string {
		t.Helper()
		b, err := s.Broadcasts(ctx)
		must(t, err)
		return b
	}
	if b := get(); len(b) != 0 {
		t.Fatalf("fresh store has broadcasts %v", b)
	}
	must(t, s.SetBroadcast(ctx, "remote-settings/monitor_changes", `"1700000000000"`, 1))
	must(t, s.SetBroadcast(ctx, "other", "v1", 1))
	must(t, s.SetBroadcast(ctx, "other", "v2", 2)) // replaces
	want := map[string]string{"remote-settings/monitor_changes": `"1700000000000"`, "other": "v2"}
	if b := get(); !maps.Equal(b, want) {
		t.Fatalf("broadcasts %v, want %v", b, want)
	}
	must(t, s.SetBroadcast(ctx, "other", "", 3)) // withdraws
	must(t, s.SetBroadcast(ctx, "never-set", "", 3))
	delete(want, "other")
	if b := get(); !maps.Equal(b, want) {
		t.Fatalf("after withdrawing: %v, want %v", b, want)
	}
}
