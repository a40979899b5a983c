package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weave-sync/weave/internal/dbtest"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/sqlstore"
)

// TestCrossNode runs two push services on one database, as two weave
// processes behind one load balancer: a message posted to one reaches the
// browser connected to the other, live and after a reconnect elsewhere.
func TestCrossNode(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"sqlite", "mysql", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			// Two processes open the same database: two DBs here.
			url := dbtest.Fresh(t, kind)
			var dbs [2]*sqlstore.DB
			for i := range dbs {
				db, err := sqlstore.OpenSet(ctx, url, sqlstore.PoolOptions{}, sqlstore.SetPush, i == 0)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dbs[i] = db
			}
			dbA, dbB := dbs[0], dbs[1]
			a := newServer(t, dbA, nil)
			bs := newServer(t, dbB, nil)
			if a.svc.Node() == bs.svc.Node() {
				t.Fatal("two services share a node name")
			}
			// The browser is on B; its endpoint names B's URL, but a load
			// balancer may send the POST to A: use A's URL for the path.
			c := bs.dial(t)
			uaid := c.hello("")
			ep := c.mustRegister(chidA)
			viaA := a.srv.URL + ep[len(bs.srv.URL):]

			// Live: the browser stays connected, and only B's poll of
			// the wake-ups can bring the message (without it, it would
			// wait for a reconnect). How soon is a matter of load, not
			// of correctness: a 2 s bound failed CI on a loaded machine.
			mustPush(t, viaA, payload("through the database"))
			v := expectNotification(t, c, chidA, "through the database")
			c.ack(chidA, v, push.AckDelivered)
			c.quiet()

			// TTL 0 reaches it too while it is connected.
			p := payload("now or never")
			p.ttl = "0"
			mustPush(t, viaA, p)
			v = expectNotification(t, c, chidA, "now or never")
			c.ack(chidA, v, push.AckDelivered)
			c.quiet()

			// The browser moves to A; a message posted to B (now the
			// other node) follows it, and B's stale state does no harm.
			c.ws.Close(websocket.StatusNormalClosure, "")
			waitDisconnected(t, bs)
			mustPush(t, ep, payload("while away"))
			c = a.dial(t)
			if got := c.hello(uaid); got != uaid {
				t.Fatalf("UAID %s not known to the other node (got %s)", uaid, got)
			}
			v = expectNotification(t, c, chidA, "while away")
			c.ack(chidA, v, push.AckDelivered)
			mustPush(t, ep, payload("to A via B"))
			v = expectNotification(t, c, chidA, "to A via B")
			c.ack(chidA, v, push.AckDelivered)
			c.quiet()
			if left, _ := a.store.Pending(ctx, uaid, time.Now().UnixMilli(), 10); len(left) != 0 {
				t.Fatalf("%d messages left", len(left))
			}
		})
	}
}
