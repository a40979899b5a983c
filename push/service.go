package push

// The service: the WebSocket side Firefox connects to (conn.go), the Web
// Push endpoint application servers post to (webpush.go), and the routing
// between them and between processes (see the package comment).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave/push/endpoint"
	"github.com/weave-sync/weave/push/vapid"
)

// Observer receives the service's events, for metrics. Methods must be
// fast and safe for concurrent use.
type Observer interface {
	// Connections changes the number of open WebSocket sessions (after
	// their hello).
	Connections(delta int)
	// Registration counts a channel registered ("register") or dropped
	// ("unregister").
	Registration(op string)
	// Message counts push messages by event: "stored" (kept until
	// acknowledged or expired), "direct" (handed straight to a browser
	// connected here), "dropped" (TTL 0 with no browser connected, or an
	// unacked direct message that could not be stored),
	// "delivered" (acknowledged by the browser), "expired" (purged
	// unacknowledged).
	Message(event string, n int)
	// Delivered records the time from a message's acceptance to its
	// acknowledgement.
	Delivered(latency time.Duration)
}

type nopObserver struct{}

func (nopObserver) Connections(int)         {}
func (nopObserver) Registration(string)     {}
func (nopObserver) Message(string, int)     {}
func (nopObserver) Delivered(time.Duration) {}

// Config configures a Service. Zero durations and limits take the defaults
// given per field.
type Config struct {
	Store Store
	// PublicURL is weave's public URL (http or https, maybe with a path
	// prefix): push endpoints are PublicURL/wpush/…, message locations
	// PublicURL/m/…, and VAPID tokens must name its origin as aud.
	PublicURL string
	// EndpointKeys are the endpoint.Codec keys (32 bytes each): the first
	// mints endpoints, all are accepted.
	EndpointKeys [][]byte
	// Node names this instance in the database; a fresh random one when
	// empty (the usual case: a restarted process is a new node).
	Node string

	// MaxChannels caps the channels of one UAID (default 500; Firefox has
	// one for FxA plus one per site allowed to push).
	MaxChannels int
	// MaxStored caps the messages stored for one UAID while its browser
	// is away (default 1000): beyond it the endpoint answers 429, so a
	// sender cannot fill the database. autopush has no such cap, but
	// drops a UAID that had 150 messages waiting.
	MaxStored int
	// HelloTimeout is how long a new connection may take to say hello
	// (default 5 s, autopush's).
	HelloTimeout time.Duration
	// PingInterval is how often a WebSocket Ping checks an idle
	// connection (default 5 min, autopush's); PongTimeout how long the
	// answer may take (default 10 s) before the connection is dropped.
	PingInterval, PongTimeout time.Duration
	// WriteTimeout bounds each frame written to a browser (default 10 s).
	WriteTimeout time.Duration
	// PollInterval is how often the wake-up queue is read (default 100 ms).
	PollInterval time.Duration
	// RouteGrace is how long a TTL-0 message for a browser connected to
	// another process waits in the database for that process (default 5 s).
	RouteGrace time.Duration
	// BroadcastInterval is how often the Megaphone broadcasts are read
	// from the store (default 30 s, as autopush polls Megaphone): the
	// longest a published version takes to reach connected browsers.
	BroadcastInterval time.Duration
	// PurgeInterval is how often expired messages are removed (default
	// 1 min); StaleWakeups how old an unread wake-up gets before it is
	// dropped as belonging to a dead process (default 10 min).
	PurgeInterval, StaleWakeups time.Duration

	Observer Observer
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Protocol limits.
const (
	// MaxFrame bounds a client frame. Firefox's largest is a hello with its
	// broadcast subscriptions, a few hundred bytes.
	MaxFrame = 32 << 10
	// batchSize is how many stored messages are sent before waiting for
	// their acks, as autopush does.
	batchSize = 10
	// maxInflight bounds the unacknowledged messages of one connection,
	// and so its memory: more stay in the database until acks come.
	maxInflight = 100
	// clientRate and clientBurst bound a browser's frames per second;
	// Firefox sends a burst of registers and acks at start-up and then
	// next to nothing.
	clientRate  = 20
	clientBurst = 200
)

// Service is the push service.
type Service struct {
	cfg      Config
	store    Store
	codec    *endpoint.Codec
	verifier *vapid.Verifier
	base     string // PublicURL without trailing slash
	node     string
	obs      Observer
	log      *slog.Logger

	lastStamp atomic.Int64                      // see stamp
	bcast     atomic.Pointer[map[string]string] // published broadcasts (broadcast.go)

	mu       sync.Mutex
	conns    map[string]*conn   // identified sessions, by UAID
	all      map[*conn]struct{} // every session, before its hello too
	done     bool
	sessions sync.WaitGroup // running serveWebSocket calls
}

// New returns a Service; call Run for its background work and Close at
// shutdown.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("push: no store")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("push: public URL %q is not an http(s) URL", cfg.PublicURL)
	}
	origin, err := vapid.Origin(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	codec, err := endpoint.NewCodec(cfg.EndpointKeys...)
	if err != nil {
		return nil, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HelloTimeout, 5*time.Second)
	def(&cfg.PingInterval, 5*time.Minute)
	def(&cfg.PongTimeout, 10*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.PollInterval, 100*time.Millisecond)
	def(&cfg.RouteGrace, 5*time.Second)
	def(&cfg.PurgeInterval, time.Minute)
	def(&cfg.BroadcastInterval, 30*time.Second)
	def(&cfg.StaleWakeups, 10*time.Minute)
	if cfg.MaxChannels <= 0 {
		cfg.MaxChannels = 500
	}
	if cfg.MaxStored <= 0 {
		cfg.MaxStored = 1000
	}
	if cfg.Node == "" {
		cfg.Node = randomHex(8)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{
		cfg: cfg, store: cfg.Store, codec: codec,
		verifier: &vapid.Verifier{Origin: origin, Now: cfg.Now},
		base:     strings.TrimRight(cfg.PublicURL, "/"),
		node:     cfg.Node,
		obs:      cfg.Observer,
		log:      cfg.Logger,
		conns:    make(map[string]*conn),
		all:      make(map[*conn]struct{}),
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Node is the name this instance goes by in the database.
func (s *Service) Node() string { return s.node }

// ServerURL is the WebSocket URL for Firefox's dom.push.serverURL: the
// public URL with ws:// or wss://, ending in "/".
func (s *Service) ServerURL() string {
	u, _ := url.Parse(s.base) // checked in New
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	u.RawPath = ""
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go ≥1.24)
	return hex.EncodeToString(b)
}

func (s *Service) now() int64 { return s.cfg.Now().UnixMilli() }

// enter records a new session; false once the service is closing.
func (s *Service) enter(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	s.all[c] = struct{}{}
	s.sessions.Add(1)
	return true
}

func (s *Service) leave(c *conn) {
	s.mu.Lock()
	delete(s.all, c)
	s.mu.Unlock()
	s.sessions.Done()
}

// attach makes c the connection of its UAID on this node, replacing (and
// closing) an older one: a second connection with the same UAID "ghosts"
// the first, as in autopush.
func (s *Service) attach(c *conn) bool {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return false
	}
	old := s.conns[c.uaid]
	s.conns[c.uaid] = c
	s.mu.Unlock()
	if old != nil {
		// Not waited for: the close handshake with the old browser may
		// take seconds, and the new one is waiting for its hello reply.
		go old.close(closeReplaced, "replaced by a newer connection")
	}
	return true
}

func (s *Service) detach(c *conn) {
	s.mu.Lock()
	mine := s.conns[c.uaid] == c
	if mine {
		delete(s.conns, c.uaid)
	}
	s.mu.Unlock()
	if mine {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		defer cancel()
		if err := s.store.Disconnect(ctx, c.uaid, s.node); err != nil {
			s.log.Warn("push: recording a disconnect failed", "err", err)
		}
	}
}

func (s *Service) local(uaid string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[uaid]
}

// Connections is the number of browsers connected to this instance.
func (s *Service) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Run polls this node's wake-ups and purges expired messages until ctx
// ends.
func (s *Service) Run(ctx context.Context) {
	// Pings wait for answers, and broadcasts for slow browsers to take
	// them; they must not hold up the wake-ups.
	done := make(chan struct{})
	go func() {
		defer close(done)
		ping := time.NewTicker(s.cfg.PingInterval / 4)
		defer ping.Stop()
		bcast := time.NewTicker(s.cfg.BroadcastInterval)
		defer bcast.Stop()
		s.refreshBroadcasts(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ping.C:
				s.pingIdle()
			case <-bcast.C:
				s.refreshBroadcasts(ctx)
			}
		}
	}()
	defer func() { <-done }()
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	purge := time.NewTicker(s.cfg.PurgeInterval)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			s.pollWakeups(ctx)
		case <-purge.C:
			s.purge(ctx)
		}
	}
}

func (s *Service) pollWakeups(ctx context.Context) {
	if s.Connections() == 0 {
		return // nothing queued here can be delivered here
	}
	const limit = 1000
	for ctx.Err() == nil {
		uaids, err := s.store.Wakeups(ctx, s.node, limit)
		if err != nil {
			s.log.Warn("push: reading wake-ups failed; will retry", "err", err)
			return
		}
		seen := make(map[string]bool, len(uaids))
		for _, u := range uaids {
			if seen[u] {
				continue
			}
			seen[u] = true
			if c := s.local(u); c != nil {
				go c.checkStorage()
			}
		}
		if len(uaids) < limit {
			return
		}
	}
}

func (s *Service) purge(ctx context.Context) {
	const limit = 1000
	now := s.cfg.Now()
	var total int64
	for ctx.Err() == nil {
		n, err := s.store.PurgeExpired(ctx, now.UnixMilli(), now.Add(-s.cfg.StaleWakeups).UnixMilli(), limit)
		total += n
		if err != nil {
			s.log.Warn("push: purging expired messages failed; will retry", "err", err)
			break
		}
		if n < limit {
			break
		}
	}
	if total > 0 {
		s.obs.Message("expired", int(total))
	}
}

// pingIdle sends a WebSocket Ping to every connection silent for a
// PingInterval; one not answering within PongTimeout is dropped.
func (s *Service) pingIdle() {
	s.mu.Lock()
	idle := make([]*conn, 0, len(s.conns))
	cutoff := s.cfg.Now().Add(-s.cfg.PingInterval).UnixNano()
	for _, c := range s.conns {
		if c.lastSeen.Load() < cutoff {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	// Bounded concurrency: each ping waits up to PongTimeout.
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range idle {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.ping()
		}()
	}
	wg.Wait()
}

// Close ends every connection (Firefox reconnects, to another process
// behind the load balancer if this one is going away), refuses new ones,
// and returns once their handlers are done with the database.
func (s *Service) Close() {
	s.mu.Lock()
	s.done = true
	all := make([]*conn, 0, len(s.all))
	for c := range s.all {
		all = append(all, c)
	}
	s.mu.Unlock()
	defer s.sessions.Wait()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.close(closeGoingAway, "server shutting down")
		}()
	}
	wg.Wait()
}
