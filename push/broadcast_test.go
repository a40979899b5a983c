package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/weave-sync/weave/push"
)

// TestBroadcasts: Megaphone on the wire. The hello's subscriptions are
// answered with newer versions and unknown ids under "errors"; a version
// published later reaches the subscribed session (also for an id unknown
// at subscription), not an unsubscribed one; broadcast_subscribe answers
// only when there is something to say.
func TestBroadcasts(t *testing.T) {
	s := newServer(t, openSQLite(t), func(c *push.Config) { c.BroadcastInterval = 20 * time.Millisecond })
	ctx := context.Background()
	publish := func(id, v string) {
		t.Helper()
		if err := s.store.SetBroadcast(ctx, id, v, 1); err != nil {
			t.Fatal(err)
		}
	}
	publish("remote-settings/monitor_changes", `"1700"`)
	time.Sleep(200 * time.Millisecond) // a few refreshes

	c := s.dial(t)
	c.sendRaw(`{"messageType":"hello","use_webpush":true,"broadcasts":{"remote-settings/monitor_changes":"\"1600\"","later":"v0"}}`)
	want := `{"messageType":"hello","uaid":"`
	got := c.recvRaw()
	if len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("hello reply %s", got)
	}
	if tail := got[len(want)+32:]; tail != `","status":200,"use_webpush":true,"broadcasts":{"errors":{"later":"Broadcast not found"},"remote-settings/monitor_changes":"\"1700\""}}` {
		t.Fatalf("hello reply %s", got)
	}
	idle := s.dial(t)
	idle.hello("")

	publish("remote-settings/monitor_changes", `"1800"`)
	if got := c.recvRaw(); got != `{"messageType":"broadcast","broadcasts":{"remote-settings/monitor_changes":"\"1800\""}}` {
		t.Fatalf("after publishing: %s", got)
	}
	publish("later", "v1")
	if got := c.recvRaw(); got != `{"messageType":"broadcast","broadcasts":{"later":"v1"}}` {
		t.Fatalf("after publishing an id unknown at subscription: %s", got)
	}

	// Up to date: no answer (the ping's pong comes first).
	c.sendRaw(`{"messageType":"broadcast_subscribe","broadcasts":{"later":"v1"}}`)
	c.sendRaw(`{}`)
	if got := c.recvRaw(); got != `{}` {
		t.Fatalf("subscribing up to date answered %s", got)
	}
	c.sendRaw(`{"messageType":"broadcast_subscribe","broadcasts":{"later":"v0","nope":"1"}}`)
	if got := c.recvRaw(); got != `{"messageType":"broadcast","broadcasts":{"errors":{"nope":"Broadcast not found"},"later":"v1"}}` {
		t.Fatalf("broadcast_subscribe answered %s", got)
	}

	// Withdrawn: nothing is sent; the unsubscribed session heard nothing.
	publish("later", "")
	time.Sleep(100 * time.Millisecond)
	c.quiet()
	idle.quiet()
}
