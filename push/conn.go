package push

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/weave-sync/weave/push/endpoint"
	"github.com/weave-sync/weave/push/vapid"
)

// Subprotocol is the WebSocket subprotocol Firefox asks for.
const Subprotocol = "push-notification"

// WebSocket close codes the service uses. Firefox reconnects after any of
// them (with back-off); only CloseNoReconnect would stop it.
const (
	closeProtocol   = websocket.StatusProtocolError   // malformed frame, no hello first, second hello
	closeBinary     = websocket.StatusUnsupportedData // a binary frame
	closeTooMuch    = websocket.StatusPolicyViolation // too many frames
	closeReplaced   = websocket.StatusNormalClosure   // another connection took the UAID
	closeGoingAway  = websocket.StatusGoingAway       // shutdown
	closeServerFail = websocket.StatusInternalError   // the database failed during the hello
)

// IsWebSocket reports whether r asks to upgrade to a WebSocket: how the
// route for the public URL's root tells Firefox's push connection from a
// page request.
func IsWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Handler serves Firefox's WebSocket (the autopush protocol). Mount it
// where dom.push.serverURL points (ServerURL); requests that are not
// WebSocket upgrades get 400.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(s.serveWebSocket)
}

// inflight is a notification sent and not yet acknowledged.
type inflight struct {
	chid    string
	created int64 // ms, for the delivery latency
	stored  bool  // in the database: delete on ack
	// keep is a message handed over directly, unstored, with a TTL: it is
	// stored if the session ends before the ack.
	keep *Message
}

type conn struct {
	s        *Service
	ws       *websocket.Conn
	uaid     string
	ctx      context.Context // ends when the connection does
	cancel   context.CancelFunc
	lastSeen atomic.Int64 // UnixNano of the last frame or pong received
	limiter  *rate.Limiter

	mu       sync.Mutex
	ready    bool // hello answered: notifications may be sent
	closed   bool
	attached bool                // the session's UAID is attached here (start's goroutine sets it, before finish reads it)
	inflight map[string]inflight // by version
	bsubs    map[string]string   // followed broadcasts: id → the version the client has (broadcast.go)
	checking bool                // a storage check is running
	more     bool                // storage may hold messages not sent yet
}

func (s *Service) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	c := &conn{s: s, limiter: rate.NewLimiter(clientRate, clientBurst), inflight: make(map[string]inflight)}
	if !s.enter(c) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
		Subprotocols: []string{Subprotocol},
		// Per-message deflate would cost tens of KB per idle connection
		// to shrink frames that are encrypted, so incompressible, anyway.
		CompressionMode: websocket.CompressionDisabled,
		// Push sessions carry no ambient credentials (no cookies, the UAID
		// is in the hello), so a page of any origin opening one gains
		// nothing; Firefox's own connection sends no Origin anyway.
		InsecureSkipVerify: true,
	})
	if err != nil {
		s.leave(c)
		return // Accept has answered
	}
	// The hello and its database work run here; then the session waits
	// for frames on a goroutine of its own and the HTTP handler returns,
	// so the server's goroutine (with its deep stack), the request and the
	// response are freed rather than held for the hours a browser stays
	// connected.
	if !c.start(ws) {
		c.finish()
		s.leave(c)
		return
	}
	go func() {
		defer s.leave(c)
		defer c.finish()
		c.close(c.readLoop())
	}()
}

// smallBuffers hands websocket.Accept small read and write buffers instead
// of the server's 4 KB pair: the library keeps whatever it gets for the
// connection's life, and at 10,000 idle connections that pair alone was
// 80 MB. Push frames are a few hundred bytes; larger ones bypass a bufio
// buffer anyway.
type smallBuffers struct{ http.ResponseWriter }

const (
	readBuffer  = 256
	writeBuffer = 256
)

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the server read past the upgrade request (the first frame of a
	// client that did not wait for the 101, caught by the server's
	// background read) must stay buffered: Accept takes what the reader
	// has buffered and reads the rest from the connection itself.
	n := brw.Reader.Buffered()
	br := bufio.NewReaderSize(nc, readBuffer)
	if n > 0 {
		b, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), nc), max(n, readBuffer))
		if _, err := br.Peek(n); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	return nc, bufio.NewReadWriter(br, bufio.NewWriterSize(nc, writeBuffer)), nil
}

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// start runs the session up to its hello reply and the first storage
// check; false when the session is over.
func (c *conn) start(ws *websocket.Conn) bool {
	s := c.s
	ws.SetReadLimit(MaxFrame)
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.ws, c.ctx, c.cancel = ws, ctx, cancel
	closed := c.closed
	c.mu.Unlock()
	if closed { // Close came first
		return false
	}
	c.touch()

	hello, code, reason := c.readHello()
	if hello == nil {
		c.close(code, reason)
		return false
	}
	if code, reason := c.identify(hello); reason != "" {
		c.close(code, reason)
		return false
	}
	if !s.attach(c) {
		c.close(closeGoingAway, "server shutting down")
		return false
	}
	c.attached = true
	s.obs.Connections(1)
	b := c.subscribe(hello.Broadcasts)
	if !c.send(HelloReply{UAID: c.uaid, Broadcasts: b.Broadcasts, Errors: b.Errors}) {
		return false
	}
	c.mu.Lock()
	c.ready = true
	c.mu.Unlock()
	// A version published between the subscription and ready.
	if d := c.broadcastDelta(); len(d) > 0 && !c.send(Broadcast{Broadcasts: d}) {
		return false
	}
	c.checkStorage()
	return true
}

// finish releases what start and the session acquired.
func (c *conn) finish() {
	s := c.s
	if c.attached {
		s.obs.Connections(-1) // before detach: Connections() then agrees
		c.saveUnacked()
		s.detach(c)
	}
	if c.ws != nil {
		c.ws.CloseNow()
		c.cancel()
	}
}

// readHello waits HelloTimeout for the first frame, which must be a hello.
func (c *conn) readHello() (*Hello, websocket.StatusCode, string) {
	// A timer rather than a read deadline: an expired read context makes
	// the library drop the connection without a close frame.
	timer := time.AfterFunc(c.s.cfg.HelloTimeout, func() { c.close(closeProtocol, "no hello in time") })
	typ, frame, err := c.ws.Read(c.ctx)
	if !timer.Stop() {
		return nil, 0, ""
	}
	if err != nil {
		return nil, websocket.CloseStatus(err), ""
	}
	c.touch()
	if typ != websocket.MessageText {
		return nil, closeBinary, "text frames only"
	}
	m, err := ParseClientMessage(frame)
	if err != nil {
		return nil, closeProtocol, "malformed message"
	}
	h, ok := m.(*Hello)
	if !ok {
		return nil, closeProtocol, "expected hello"
	}
	return h, 0, ""
}

// identify settles the session's UAID: the one the browser sent if this
// service knows it (answered with exactly that string: a different UAID
// makes Firefox drop every subscription), else a new one, as autopush
// does. A database failure ends the session rather than mint a UAID: that
// would wipe the browser's subscriptions for a transient error.
func (c *conn) identify(h *Hello) (websocket.StatusCode, string) {
	s := c.s
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
	defer cancel()
	if IsUAID(h.UAID) {
		err := s.store.Connect(ctx, h.UAID, s.node, s.now())
		switch {
		case err == nil:
			c.uaid = h.UAID
			return 0, ""
		case !errors.Is(err, ErrUnknownUser):
			s.log.Warn("push: hello failed", "err", err)
			return closeServerFail, "storage unavailable"
		}
	}
	c.uaid = NewUAID()
	return 0, ""
}

func (c *conn) touch() { c.lastSeen.Store(c.s.cfg.Now().UnixNano()) }

// readLoop serves the session's frames until it ends, returning how to
// close it. It only reads: each frame is handled (parsed, and maybe
// answered from the database) on a goroutine of its own, so the goroutine
// that waits for the next frame, for hours, holds only the few KB of stack
// that reading takes rather than the tens of KB a database call grows it
// to (the runtime would shrink it back only over several collections).
func (c *conn) readLoop() (websocket.StatusCode, string) {
	for {
		typ, frame, err := c.ws.Read(c.ctx)
		if err != nil {
			return websocket.CloseStatus(err), ""
		}
		c.touch()
		if !c.limiter.Allow() {
			return closeTooMuch, "too many messages"
		}
		if typ != websocket.MessageText {
			return closeBinary, "text frames only"
		}
		var (
			code   websocket.StatusCode
			reason string
			stop   bool
			wg     sync.WaitGroup
		)
		wg.Go(func() { code, reason, stop = c.handle(frame) })
		wg.Wait()
		if stop {
			return code, reason
		}
	}
}

// handle serves one client frame; stop ends the session, closed with code
// and reason.
func (c *conn) handle(frame []byte) (code websocket.StatusCode, reason string, stop bool) {
	m, err := ParseClientMessage(frame)
	if err != nil {
		return closeProtocol, "malformed message", true
	}
	var reply any
	switch m := m.(type) {
	case *Hello:
		return closeProtocol, "second hello", true
	case *Register:
		reply = c.register(m)
	case *Unregister:
		reply = c.unregister(m)
	case *Ack:
		c.ack(m)
	case *Nack:
		// Informational (a web page's service worker failed); the ack
		// that Firefox also sends settles the message.
	case *BroadcastSubscribe:
		if b := c.subscribe(m.Broadcasts); len(b.Broadcasts)+len(b.Errors) > 0 {
			reply = b
		}
	case *Ping:
		reply = Pong{}
	}
	if reply != nil && !c.send(reply) {
		return 0, "", true
	}
	return 0, "", false
}

// canonicalChannelID parses a UUID in any case and returns it lower-case
// dashed, the form stored and put in endpoints; ok is false for anything
// else.
func canonicalChannelID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	l := strings.ToLower(s)
	return l, IsCanonicalChannelID(l)
}

func (c *conn) register(m *Register) RegisterReply {
	s := c.s
	reply := RegisterReply{ChannelID: m.ChannelID, Status: StatusBadRequest}
	chid, ok := canonicalChannelID(m.ChannelID)
	if !ok {
		return reply
	}
	sub := endpoint.Subscription{UAID: c.uaid, ChannelID: chid}
	if m.Key != "" {
		key, err := vapid.DecodeKey(m.Key)
		if err != nil {
			return reply
		}
		h := vapid.KeyHash(key)
		sub.KeyHash = h[:]
	}
	path, err := s.codec.Path(sub)
	if err != nil {
		return reply
	}
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
	defer cancel()
	switch err := s.store.AddChannel(ctx, c.uaid, chid, s.node, s.now(), s.cfg.MaxChannels); {
	case errors.Is(err, ErrTooManyChannels):
		return reply
	case err != nil:
		s.log.Warn("push: register failed", "err", err)
		reply.Status = StatusError
		return reply
	}
	s.obs.Registration("register")
	reply.Status = StatusOK
	reply.PushEndpoint = s.base + "/wpush/" + path
	return reply
}

func (c *conn) unregister(m *Unregister) UnregisterReply {
	s := c.s
	reply := UnregisterReply{ChannelID: m.ChannelID, Status: StatusBadRequest}
	chid, ok := canonicalChannelID(m.ChannelID)
	if !ok {
		return reply
	}
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
	defer cancel()
	if err := s.store.RemoveChannel(ctx, c.uaid, chid); err != nil {
		s.log.Warn("push: unregister failed", "err", err)
		reply.Status = StatusError
		return reply
	}
	s.obs.Registration("unregister")
	reply.Status = StatusOK
	return reply
}

// ack settles acknowledged notifications, whatever their code (Firefox
// acks duplicates and unknown channels with 102: resending would not
// help). Acks of versions this session did not send are ignored.
func (c *conn) ack(m *Ack) {
	s := c.s
	now := s.now()
	for _, u := range m.Updates {
		c.mu.Lock()
		f, ok := c.inflight[u.Version]
		ok = ok && strings.EqualFold(f.chid, u.ChannelID)
		c.mu.Unlock()
		if !ok {
			continue
		}
		if f.stored {
			// Still in flight while it is deleted, so that a storage
			// check running meanwhile does not send it again.
			ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
			_, err := s.store.Delete(ctx, c.uaid, u.Version)
			cancel()
			if err != nil && c.ctx.Err() == nil {
				// It is sent again on the next connection; Firefox drops
				// the duplicate.
				s.log.Warn("push: deleting an acknowledged message failed", "err", err)
			}
		}
		c.mu.Lock()
		delete(c.inflight, u.Version)
		c.mu.Unlock()
		s.obs.Message("delivered", 1)
		s.obs.Delivered(time.Duration(max(now-f.created, 0)) * time.Millisecond)
	}
	c.mu.Lock()
	resume := c.more && !c.hasStoredInflight()
	c.mu.Unlock()
	if resume {
		c.checkStorage()
	}
}

func (c *conn) hasStoredInflight() bool {
	for _, f := range c.inflight {
		if f.stored {
			return true
		}
	}
	return false
}

// checkStorage sends the stored messages, a batch at a time: the next
// batch is read once the browser acknowledged the previous one (ack calls
// back here), as autopush does, so one connection never holds more than a
// batch of stored messages in memory.
func (c *conn) checkStorage() {
	s := c.s
	for {
		c.mu.Lock()
		if !c.ready || c.closed || c.checking || c.hasStoredInflight() {
			c.more = true
			c.mu.Unlock()
			return
		}
		c.checking, c.more = true, false
		exclude := len(c.inflight)
		c.mu.Unlock()

		ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
		msgs, err := s.store.Pending(ctx, c.uaid, s.now(), batchSize+exclude)
		cancel()

		c.mu.Lock()
		c.checking = false
		if err != nil {
			c.mu.Unlock()
			if c.ctx.Err() == nil {
				s.log.Warn("push: reading stored messages failed", "err", err)
			}
			return
		}
		var batch []Message
		for _, m := range msgs {
			if len(batch) == batchSize || len(c.inflight) >= maxInflight {
				c.more = true
				break
			}
			if _, dup := c.inflight[m.ID]; dup {
				continue // sent directly a moment ago
			}
			c.inflight[m.ID] = inflight{chid: m.ChannelID, created: m.Created, stored: true}
			batch = append(batch, m)
		}
		if len(msgs) == batchSize+exclude {
			c.more = true
		}
		again := c.more && len(batch) == 0 && !c.hasStoredInflight()
		c.mu.Unlock()
		for _, m := range batch {
			if !c.send(notification(m)) {
				return
			}
		}
		if !again {
			return
		}
	}
}

func notification(m Message) Notification {
	return Notification{ChannelID: m.ChannelID, Version: m.ID, Data: m.Data, Headers: m.Headers}
}

// deliver hands m to the browser now. It reports false when the session
// cannot take it (not ready, closing, or too many unacknowledged
// messages); a stored message is then picked up by the next storage check.
// An unstored message with a TTL is stored if the session ends unacked.
func (c *conn) deliver(m Message, stored bool) bool {
	c.mu.Lock()
	if !c.ready || c.closed || len(c.inflight) >= maxInflight {
		if stored {
			c.more = true
		}
		c.mu.Unlock()
		return false
	}
	if _, dup := c.inflight[m.ID]; dup {
		c.mu.Unlock()
		return true
	}
	f := inflight{chid: m.ChannelID, created: m.Created, stored: stored}
	if !stored && m.Expires > m.Created {
		f.keep = &m
	}
	c.inflight[m.ID] = f
	c.mu.Unlock()
	// Written from its own goroutine so a browser that stopped reading
	// stalls neither the sender's POST nor anybody else; maxInflight
	// bounds how many such writes one connection can have pending.
	go c.send(notification(m))
	return true
}

// send writes one frame; on failure the session ends.
func (c *conn) send(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		c.close(closeServerFail, "internal error")
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.cancel()
		return false
	}
	return true
}

// ping checks an idle connection with a WebSocket Ping; Firefox's
// WebSocket stack answers it. No answer within PongTimeout ends the
// session.
func (c *conn) ping() {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.PongTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		c.cancel()
		return
	}
	c.touch()
}

// saveUnacked stores the messages handed over directly and never acked,
// for the browser's next connection (autopush does the same). A process
// that dies loses them, as autopush's would.
func (c *conn) saveUnacked() {
	c.mu.Lock()
	c.closed = true // deliver refuses from now on
	var keep []Message
	for _, f := range c.inflight {
		if f.keep != nil {
			keep = append(keep, *f.keep)
		}
	}
	c.inflight = map[string]inflight{}
	c.mu.Unlock()
	if len(keep) == 0 {
		return
	}
	s := c.s
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	for _, m := range keep {
		if m.Expires <= s.now() {
			continue
		}
		if err := s.store.Save(ctx, m, ""); err != nil {
			s.log.Warn("push: storing an unacknowledged message failed; it is lost", "err", err)
			s.obs.Message("dropped", 1)
			continue
		}
		s.obs.Message("stored", 1)
	}
}

// close ends the session with a close frame (once).
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		return // not upgraded yet: serveWebSocket sees closed
	}
	if code == 0 || code == -1 {
		c.cancel()
		ws.CloseNow()
		return
	}
	// Close waits for the browser's close frame at most a few seconds.
	_ = ws.Close(code, reason)
	c.cancel()
}
