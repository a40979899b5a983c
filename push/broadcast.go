package push

// Megaphone broadcasts: named versions the operator publishes (Firefox's
// remote-settings follows "remote-settings/monitor_changes" this way) that
// every browser subscribed to the name hears of when the version changes.
// The set lives in the database (Store.SetBroadcast; operators write the
// push_broadcasts table, docs/operations.md), so every process of a fleet
// serves the same one; each reads it every BroadcastInterval and tells its
// subscribed sessions of changes. Changes go out at once rather than with
// autopush's next ping (up to 5 min later).
//
// As in autopush, a client subscribes in its hello or with
// broadcast_subscribe (id → the version it has), is answered with the
// newer versions of known ids and "Broadcast not found" for unknown ones,
// and later hears of changes in a "broadcast" message. Unlike autopush,
// an unknown id stays subscribed, so publishing it later reaches browsers
// already connected rather than only those that reconnect.

import (
	"context"
	"maps"
	"sync"
)

// maxBroadcastSubs bounds one session's subscriptions (Firefox has a
// handful); ids beyond it are answered as unknown and not followed.
const maxBroadcastSubs = 64

// notFound is autopush's error for an id it does not publish.
const notFound = "Broadcast not found"

// currentBroadcasts is the set last read from the store (never modified:
// a refresh replaces it whole).
func (s *Service) currentBroadcasts() map[string]string {
	if p := s.bcast.Load(); p != nil {
		return *p
	}
	return nil
}

// refreshBroadcasts reads the published set and, when it changed, tells
// every subscribed session of the new versions.
func (s *Service) refreshBroadcasts(ctx context.Context) {
	b, err := s.store.Broadcasts(ctx)
	if err != nil {
		s.log.Warn("push: reading broadcasts failed; will retry", "err", err)
		return
	}
	if maps.Equal(s.currentBroadcasts(), b) {
		return
	}
	s.bcast.Store(&b)
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// Bounded: a change can concern every connection at once.
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range conns {
		d := c.broadcastDelta()
		if len(d) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.send(Broadcast{Broadcasts: d})
		})
	}
	wg.Wait()
}

// subscribe follows the ids of req (id → the version the client has) and
// returns what to answer: the newer versions of published ids, and the
// others as errors.
func (c *conn) subscribe(req map[string]string) Broadcast {
	var out Broadcast
	if len(req) == 0 {
		return out
	}
	cur := c.s.currentBroadcasts()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, v := range req {
		_, known := c.bsubs[id]
		if !known && len(c.bsubs) >= maxBroadcastSubs {
			setKey(&out.Errors, id, notFound)
			continue
		}
		if c.bsubs == nil {
			c.bsubs = make(map[string]string)
		}
		sv, ok := cur[id]
		switch {
		case !ok:
			setKey(&out.Errors, id, notFound)
			c.bsubs[id] = v
			continue
		case sv != v:
			setKey(&out.Broadcasts, id, sv)
		}
		c.bsubs[id] = sv
	}
	return out
}

// broadcastDelta returns the followed broadcasts published in a version
// the client has not been told, and records them as told; nothing before
// the hello reply is sent.
func (c *conn) broadcastDelta() map[string]string {
	cur := c.s.currentBroadcasts()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready || c.closed {
		return nil
	}
	var d map[string]string
	for id, v := range c.bsubs {
		if sv, ok := cur[id]; ok && sv != v {
			setKey(&d, id, sv)
			c.bsubs[id] = sv
		}
	}
	return d
}

func setKey(m *map[string]string, k, v string) {
	if *m == nil {
		*m = make(map[string]string)
	}
	(*m)[k] = v
}
