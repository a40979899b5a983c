package metrics

// The push service (package push) reports into weave_push_*: open
// WebSocket sessions, channel registrations, messages by what became of
// them, and the time from a message's acceptance to the browser's ack.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type pushMetrics struct {
	connections   prometheus.Gauge
	registrations *prometheus.CounterVec // op
	messages      *prometheus.CounterVec // event
	latency       prometheus.Histogram
}

var pushEvents = []string{"stored", "direct", "dropped", "delivered", "expired"}

func newPushMetrics(f factory) *pushMetrics {
	p := &pushMetrics{
		connections: f.gauge("weave_push_connections", "Open push WebSocket sessions (after their hello) on this process."),
		registrations: f.counterVec("weave_push_registrations_total",
			"Push channels registered and unregistered by browsers, by op: register, unregister.", "op"),
		messages: f.counterVec("weave_push_messages_total",
			"Push messages by event: stored (kept until acked or expired), direct (handed straight to a browser connected to this process), "+
				"dropped (TTL 0 with no browser connected), delivered (acked by the browser), expired (purged unacked).", "event"),
		latency: f.histogram("weave_push_delivery_seconds",
			"Time from a push message's acceptance to the browser's ack (stored messages include the time the browser was away).",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60, 600, 3600, 86400}),
	}
	for _, op := range []string{"register", "unregister"} {
		p.registrations.WithLabelValues(op)
	}
	for _, e := range pushEvents {
		p.messages.WithLabelValues(e)
	}
	return p
}

// PushObserver is what the push service reports into (push.Observer).
type PushObserver struct{ m *Metrics }

// PushObserver returns the observer of the push service.
func (m *Metrics) PushObserver() PushObserver { return PushObserver{m} }

// Connections moves the open-sessions gauge.
func (o PushObserver) Connections(delta int) {
	if o.m == nil {
		return
	}
	o.m.push.connections.Add(float64(delta))
}

// Registration counts a register or unregister.
func (o PushObserver) Registration(op string) {
	if o.m == nil {
		return
	}
	o.m.push.registrations.WithLabelValues(pick(op, "register", "unregister")).Inc()
}

// Message counts n messages that met event.
func (o PushObserver) Message(event string, n int) {
	if o.m == nil || n <= 0 {
		return
	}
	o.m.push.messages.WithLabelValues(pick(event, pushEvents...)).Add(float64(n))
}

// Delivered records one message's acceptance-to-ack time.
func (o PushObserver) Delivered(latency time.Duration) {
	if o.m == nil {
		return
	}
	o.m.push.latency.Observe(latency.Seconds())
}
