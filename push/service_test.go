package push_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/push/endpoint"
	"github.com/weave-sync/weave/push/vapid"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// clock is a test clock: real time plus an offset tests can advance.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

var testKey = bytes.Repeat([]byte{7}, 32)

func openSQLite(t *testing.T) *sqlstore.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "push.db"), sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	migrate(t, db, sqlite.Migrations)
	return db
}

func migrate(t *testing.T, db *sqlstore.DB, migrations func(string) ([]sqlstore.Migration, error)) {
	t.Helper()
	ms, err := migrations(sqlstore.SetPush)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background(), sqlstore.SetPush, ms, nil); err != nil {
		t.Fatal(err)
	}
}

type server struct {
	svc   *push.Service
	srv   *httptest.Server
	store push.Store
	clock *clock
}

// newServer serves a push service on db the way cmd/weave mounts it:
// WebSocket upgrades at the root, the Web Push endpoints beside.
func newServer(t *testing.T, db *sqlstore.DB, tweak func(*push.Config)) *server {
	return newServerWith(t, db, tweak, nil)
}

// newServerWith serves through the http.Server httpServer makes (nil:
// httptest's default).
func newServerWith(t *testing.T, db *sqlstore.DB, tweak func(*push.Config), httpServer func(http.Handler) *http.Server) *server {
	t.Helper()
	s := &server{store: sqlstore.NewPushStore(db), clock: &clock{}}
	var h http.Handler
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) })
	s.srv = httptest.NewUnstartedServer(root)
	if httpServer != nil {
		s.srv.Config = httpServer(root)
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	cfg := push.Config{
		Store:        s.store,
		PublicURL:    s.srv.URL,
		EndpointKeys: [][]byte{testKey},
		PollInterval: 20 * time.Millisecond,
		Now:          s.clock.now,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	svc, err := push.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.svc = svc
	ws, wp := svc.Handler(), svc.WebPushHandler()
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && push.IsWebSocket(r) {
			ws.ServeHTTP(w, r)
			return
		}
		wp.ServeHTTP(w, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { svc.Close(); cancel(); <-done })
	return s
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func (s *server) dial(t *testing.T) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.srv.URL, "http")+"/", &websocket.DialOptions{Subprotocols: []string{push.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != push.Subprotocol {
		t.Fatalf("subprotocol %q, want %q", got, push.Subprotocol)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) send(m push.ClientMessage) {
	c.t.Helper()
	b, err := push.MarshalClientMessage(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// recvRaw returns the next frame, or fails the test after 20 s: frames
// that need the database and a poll round can take seconds on a loaded
// machine under the race detector, and a frame that never comes still
// fails.
func (c *client) recvRaw() string {
	c.t.Helper()
	s, err := c.recvWithin(20 * time.Second)
	if err != nil {
		c.t.Fatalf("no frame: %v", err)
	}
	return s
}

func (c *client) recvWithin(d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return "", err
	}
	if typ != websocket.MessageText {
		return "", fmt.Errorf("binary frame from the server")
	}
	return string(b), nil
}

func (c *client) recv() map[string]any {
	c.t.Helper()
	raw := c.recvRaw()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		c.t.Fatalf("frame %q: %v", raw, err)
	}
	return m
}

// expectClose waits for the server to close with code.
func (c *client) expectClose(code websocket.StatusCode) {
	c.t.Helper()
	_, err := c.recvWithin(10 * time.Second)
	if got := websocket.CloseStatus(err); got != code {
		c.t.Fatalf("closed with %v (%v), want %v", got, err, code)
	}
}

// hello says hello (with uaid unless empty) and returns the server's UAID.
func (c *client) hello(uaid string) string {
	c.t.Helper()
	c.send(&push.Hello{UAID: uaid, UseWebPush: true, Broadcasts: map[string]string{}})
	raw := c.recvRaw()
	re := regexp.MustCompile(`^\{"messageType":"hello","uaid":"([0-9a-f]{32})","status":200,"use_webpush":true,"broadcasts":\{\}\}$`)
	m := re.FindStringSubmatch(raw)
	if m == nil {
		c.t.Fatalf("hello reply %s", raw)
	}
	return m[1]
}

func (c *client) register(chid, key string) map[string]any {
	c.t.Helper()
	c.send(&push.Register{ChannelID: chid, Key: key})
	m := c.recv()
	if m["messageType"] != "register" || m["channelID"] != chid {
		c.t.Fatalf("register reply %v", m)
	}
	return m
}

func (c *client) mustRegister(chid string) string {
	c.t.Helper()
	m := c.register(chid, "")
	if m["status"] != float64(200) {
		c.t.Fatalf("register status %v", m)
	}
	return m["pushEndpoint"].(string)
}

func (c *client) ack(chid, version string, code int) {
	c.t.Helper()
	c.send(&push.Ack{Updates: []push.AckUpdate{{ChannelID: chid, Version: version, Code: code}}})
}

// quiet checks that no frame arrives: a ping's pong must come first.
func (c *client) quiet() {
	c.t.Helper()
	c.sendRaw("{}")
	if raw := c.recvRaw(); raw != "{}" {
		c.t.Fatalf("got %s, want nothing but the pong", raw)
	}
}

type pushReq struct {
	ttl      string // "" = no TTL header
	body     []byte
	encoding string
	topic    string
	headers  map[string]string
	method   string
}

func doPush(t *testing.T, url string, p pushReq) (*http.Response, map[string]any) {
	t.Helper()
	if p.method == "" {
		p.method = http.MethodPost
	}
	req, err := http.NewRequest(p.method, url, bytes.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	if p.ttl != "" {
		req.Header.Set("TTL", p.ttl)
	}
	if p.encoding != "" {
		req.Header.Set("Content-Encoding", p.encoding)
	}
	if p.topic != "" {
		req.Header.Set("Topic", p.topic)
	}
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("response body %q: %v", b, err)
		}
	}
	return resp, m
}

func mustPush(t *testing.T, url string, p pushReq) *http.Response {
	t.Helper()
	resp, body := doPush(t, url, p)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d %v", resp.StatusCode, body)
	}
	return resp
}

func payload(s string) pushReq {
	return pushReq{ttl: "60", body: []byte(s), encoding: "aes128gcm"}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

const chidA = "87ca7290-4cdd-434e-8f9c-b76514cd3977"
const chidB = "0f0e0d0c-0b0a-4908-8706-050403020100"

func expectNotification(t *testing.T, c *client, chid, data string) string {
	t.Helper()
	m := c.recv()
	if m["messageType"] != "notification" || m["channelID"] != chid {
		t.Fatalf("got %v, want a notification on %s", m, chid)
	}
	if data == "" {
		if _, ok := m["data"]; ok {
			t.Fatalf("notification without payload carries data: %v", m)
		}
	} else if m["data"] != b64(data) {
		t.Fatalf("data %v, want %s", m["data"], b64(data))
	}
	if _, ok := m["ttl"]; ok {
		t.Fatalf("notification carries a ttl: %v", m)
	}
	v, _ := m["version"].(string)
	if v == "" {
		t.Fatalf("no version: %v", m)
	}
	return v
}

// recorder is a push.Observer keeping counts.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
}

func (r *recorder) add(k string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[k] += n
}
func (r *recorder) Connections(d int)           { r.add("connections", d) }
func (r *recorder) Registration(op string)      { r.add(op, 1) }
func (r *recorder) Message(event string, n int) { r.add(event, n) }
func (r *recorder) Delivered(d time.Duration) {
	if d < 0 || d > time.Minute {
		panic(d)
	}
	r.add("latencies", 1)
}
func (r *recorder) get(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[k]
}

func TestHelloRegisterNotifyAck(t *testing.T) {
	obs := &recorder{}
	s := newServer(t, openSQLite(t), func(c *push.Config) { c.Observer = obs })
	c := s.dial(t)
	uaid := c.hello("")
	ep := c.mustRegister(chidA)
	if !strings.HasPrefix(ep, s.srv.URL+"/wpush/v1/") || len(ep) > 255 {
		t.Fatalf("endpoint %q", ep)
	}
	resp := mustPush(t, ep, pushReq{ttl: "60", body: []byte("hello, browser"), encoding: "aes128gcm"})
	loc := resp.Header.Get("Location")
	if !regexp.MustCompile(`^`+regexp.QuoteMeta(s.srv.URL)+`/m/[0-9a-f]{32}$`).MatchString(loc) || resp.Header.Get("TTL") != "60" {
		t.Fatalf("201 headers: Location %q TTL %q", loc, resp.Header.Get("TTL"))
	}
	raw := c.recvRaw()
	var n struct {
		MessageType, ChannelID, Version, Data string
		Headers                               map[string]string
	}
	if err := json.Unmarshal([]byte(raw), &n); err != nil {
		t.Fatal(err)
	}
	if n.MessageType != "notification" || n.ChannelID != chidA || n.Data != b64("hello, browser") ||
		len(n.Headers) != 1 || n.Headers["encoding"] != "aes128gcm" || !strings.HasSuffix(loc, "/m/"+n.Version) {
		t.Fatalf("notification %s", raw)
	}
	if strings.Contains(raw, "ttl") {
		t.Fatalf("notification carries a ttl: %s", raw)
	}
	// Handed over directly, not stored; acked, it is done with.
	ctx := context.Background()
	c.ack(chidA, n.Version, push.AckDelivered)
	c.quiet()
	if got, _ := s.store.Pending(ctx, uaid, time.Now().UnixMilli(), 10); len(got) != 0 {
		t.Fatalf("%d stored after the ack", len(got))
	}
	// One the browser leaves unacked is stored when the session ends, and
	// comes again on the next.
	mustPush(t, ep, payload("unacked"))
	unacked := expectNotification(t, c, chidA, "unacked")
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitDisconnected(t, s)
	c = s.dial(t)
	c.hello(uaid)
	if v := expectNotification(t, c, chidA, "unacked"); v != unacked {
		t.Fatalf("redelivered as version %s, want %s", v, unacked)
	}
	c.ack(chidA, unacked, push.AckDelivered)
	c.quiet()
	if got, _ := s.store.Pending(ctx, uaid, time.Now().UnixMilli(), 10); len(got) != 0 {
		t.Fatalf("%d stored after its ack", len(got))
	}
	// A push without a body: no data, no headers.
	mustPush(t, ep, pushReq{ttl: "10"})
	v := expectNotification(t, c, chidA, "")
	c.ack(chidA, v, push.AckDelivered)

	// Unregister: the endpoint is gone (410, errno 106).
	c.send(&push.Unregister{ChannelID: chidA, Code: push.UnregisterManual})
	if m := c.recv(); m["messageType"] != "unregister" || m["channelID"] != chidA || m["status"] != float64(200) {
		t.Fatalf("unregister reply %v", m)
	}
	resp, body := doPush(t, ep, payload("late"))
	if resp.StatusCode != http.StatusGone || body["errno"] != float64(106) || resp.Header.Get("Cache-Control") != "max-age=86400" {
		t.Fatalf("push after unregister: %d %v", resp.StatusCode, body)
	}
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitDisconnected(t, s)
	for k, want := range map[string]int{"connections": 0, "register": 1, "unregister": 1, "direct": 3, "stored": 1, "delivered": 3, "latencies": 3} {
		if got := obs.get(k); got != want {
			t.Errorf("observer %s = %d, want %d", k, got, want)
		}
	}
}

func TestReconnectDeliversStoredMessages(t *testing.T) {
	s := newServer(t, openSQLite(t), nil)
	c := s.dial(t)
	uaid := c.hello("")
	epA := c.mustRegister(chidA)
	epB := c.mustRegister(chidB)
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitDisconnected(t, s)

	// 12 messages while away: more than one batch.
	for i := range 12 {
		ep := epA
		if i%2 == 1 {
			ep = epB
		}
		mustPush(t, ep, payload(fmt.Sprint("m", i)))
	}
	c = s.dial(t)
	if got := c.hello(uaid); got != uaid {
		t.Fatalf("known UAID answered with %s, want %s", got, uaid)
	}
	type note struct{ chid, version, data string }
	var first []note
	for range 10 {
		m := c.recv()
		first = append(first, note{m["channelID"].(string), m["version"].(string), m["data"].(string)})
	}
	// The batch waits for its acks: nothing more yet.
	c.quiet()
	for i, n := range first {
		if n.data != b64(fmt.Sprint("m", i)) {
			t.Fatalf("message %d carries %s: stored messages come oldest first", i, n.data)
		}
		if i < 9 { // leave one unacked
			c.ack(n.chid, n.version, push.AckDelivered)
		}
	}
	c.quiet()
	c.ack(first[9].chid, first[9].version, push.AckDecryptionFailed) // any code settles it
	// The next batch: m10 and m11; only m11 is acked before leaving.
	second := map[string][2]string{}
	for range 2 {
		m := c.recv()
		second[m["data"].(string)] = [2]string{m["channelID"].(string), m["version"].(string)}
	}
	if len(second) != 2 || second[b64("m10")][1] == "" || second[b64("m11")][1] == "" {
		t.Fatalf("second batch %v", second)
	}
	c.ack(second[b64("m11")][0], second[b64("m11")][1], push.AckDelivered)
	c.quiet()
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitDisconnected(t, s)

	// Whatever was not acked comes again on the next connection.
	c = s.dial(t)
	c.hello(uaid)
	if v := expectNotification(t, c, second[b64("m10")][0], "m10"); v != second[b64("m10")][1] {
		t.Fatalf("redelivered with version %s, want %s", v, second[b64("m10")][1])
	} else {
		c.ack(second[b64("m10")][0], v, push.AckDelivered)
	}
	c.quiet()
	if left, _ := s.store.Pending(context.Background(), uaid, time.Now().UnixMilli(), 100); len(left) != 0 {
		t.Fatalf("%d messages left after every ack", len(left))
	}
}

func waitDisconnected(t *testing.T, s *server) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.svc.Connections() > 0; {
		if time.Now().After(deadline) {
			t.Fatal("connection not gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTTLAndTopic(t *testing.T) {
	s := newServer(t, openSQLite(t), nil)
	c := s.dial(t)
	uaid := c.hello("")
	ep := c.mustRegister(chidA)
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitDisconnected(t, s)

	p := payload("short-lived")
	p.ttl = "30"
	mustPush(t, ep, p)
	p = payload("now or never")
	p.ttl = "0"
	if resp := mustPush(t, ep, p); resp.Header.Get("TTL") != "0" {
		t.Fatalf("TTL echoed as %q", resp.Header.Get("TTL"))
	}
	p = payload("capped")
	p.ttl = "99999999"
	if resp := mustPush(t, ep, p); resp.Header.Get("TTL") != "2592000" {
		t.Fatalf("TTL above 30 days echoed as %q, want 2592000", resp.Header.Get("TTL"))
	}
	for _, d := range []string{"topic v1", "topic v2"} {
		p = payload(d)
		p.topic = "news"
		mustPush(t, ep, p)
	}
	s.clock.advance(31 * time.Second)

	c = s.dial(t)
	c.hello(uaid)
	// The topic message first, only its newest version; the expired and
	// the TTL-0 messages never.
	v := expectNotification(t, c, chidA, "topic v2")
	c.ack(chidA, v, push.AckDelivered)
	v = expectNotification(t, c, chidA, "capped")
	c.ack(chidA, v, push.AckDelivered)
	c.quiet()
	// TTL 0 reaches a connected browser.
	p = payload("live")
	p.ttl = "0"
	mustPush(t, ep, p)
	v = expectNotification(t, c, chidA, "live")
	c.ack(chidA, v, push.AckDelivered)
	c.quiet()
}

func TestUAIDs(t *testing.T) {
	s := newServer(t, openSQLite(t), nil)
	c := s.dial(t)
	uaid := c.hello("")
	c.mustRegister(chidA)
	c.ws.Close(websocket.StatusNormalClosure, "")

	// Unknown or malformed UAIDs get a fresh one; a known one is kept,
	// spelled exactly as sent.
	for _, sent := range []string{"", "00000000000000000000000000000000", strings.ToUpper(uaid), uaid + "0", "not-a-uaid"} {
		c := s.dial(t)
		if got := c.hello(sent); got == uaid || got == sent {
			t.Fatalf("hello with %q answered %q", sent, got)
		}
		c.ws.Close(websocket.StatusNormalClosure, "")
	}
	c = s.dial(t)
	if got := c.hello(uaid); got != uaid {
		t.Fatalf("known UAID %s answered with %s", uaid, got)
	}
	// A UAID without a channel is not recorded (autopush writes it with
	// the first register), so Firefox's next hello gets another.
	c2 := s.dial(t)
	fresh := c2.hello("")
	c2.ws.Close(websocket.StatusNormalClosure, "")
	c3 := s.dial(t)
	if got := c3.hello(fresh); got == fresh {
		t.Fatal("a UAID that never registered was kept")
	}
}

func TestGhostAndShutdown(t *testing.T) {
	s := newServer(t, openSQLite(t), nil)
	c := s.dial(t)
	uaid := c.hello("")
	ep := c.mustRegister(chidA)
	c2 := s.dial(t)
	c2.hello(uaid)
	c.expectClose(websocket.StatusNormalClosure)
	mustPush(t, ep, payload("to the newer one"))
	expectNotification(t, c2, chidA, "to the newer one")
	if n := s.svc.Connections(); n != 1 {
		t.Fatalf("%d connections", n)
	}
	done := make(chan struct{})
	go func() { s.svc.Close(); close(done) }()
	c2.expectClose(websocket.StatusGoingAway)
	<-done
}

func TestBadInput(t *testing.T) {
	s := newServer(t, openSQLite(t), func(c *push.Config) {
		c.HelloTimeout = 300 * time.Millisecond
		c.MaxChannels = 3
	})
	for _, tc := range []struct {
		name  string
		first func(c *client)
		code  websocket.StatusCode
	}{
		{"register before hello", func(c *client) { c.send(&push.Register{ChannelID: chidA}) }, websocket.StatusProtocolError},
		{"not JSON", func(c *client) { c.sendRaw("hello") }, websocket.StatusProtocolError},
		{"unknown type", func(c *client) { c.sendRaw(`{"messageType":"hullo"}`) }, websocket.StatusProtocolError},
		{"binary", func(c *client) {
			c.ws.Write(context.Background(), websocket.MessageBinary, []byte(`{"messageType":"hello"}`))
		}, websocket.StatusUnsupportedData},
		{"too large", func(c *client) {
			c.sendRaw(`{"messageType":"hello","broadcasts":{"x":"` + strings.Repeat("a", push.MaxFrame) + `"}}`)
		}, websocket.StatusMessageTooBig},
		{"silence", func(c *client) {}, websocket.StatusProtocolError},
		{"second hello", func(c *client) { c.hello(""); c.send(&push.Hello{UseWebPush: true}) }, websocket.StatusProtocolError},
		{"garbage after hello", func(c *client) { c.hello(""); c.sendRaw(`{"messageType":"ack"}`) }, websocket.StatusProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dial(t)
			tc.first(c)
			c.expectClose(tc.code)
		})
	}

	t.Run("register", func(t *testing.T) {
		c := s.dial(t)
		c.hello("")
		// Malformed channel IDs and keys are refused with status 400; the
		// session goes on.
		for _, r := range []struct{ chid, key string }{
			{"not-a-uuid", ""},
			{"87ca72904cdd434e8f9cb76514cd3977", ""},
			{chidA, "not a key"},
			{chidA, base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{4}, 65))},
		} {
			if m := c.register(r.chid, r.key); m["status"] != float64(400) {
				t.Fatalf("register %q key %q: %v", r.chid, r.key, m)
			}
		}
		c.quiet()
		// Upper case is accepted and echoed as sent.
		upper := strings.ToUpper(chidA)
		if m := c.register(upper, ""); m["status"] != float64(200) {
			t.Fatalf("upper-case channel ID: %v", m)
		}
		c.mustRegister(chidB)
		c.mustRegister("00000000-0000-4000-8000-000000000003")
		if m := c.register("00000000-0000-4000-8000-000000000004", ""); m["status"] != float64(400) {
			t.Fatalf("channel beyond the cap of 3: %v", m)
		}
		c.send(&push.Unregister{ChannelID: "nope"})
		if m := c.recv(); m["status"] != float64(400) {
			t.Fatalf("unregister of a malformed channel: %v", m)
		}
		// broadcast_subscribe: weave knows no broadcasts.
		c.send(&push.BroadcastSubscribe{Broadcasts: map[string]string{"remote-settings/monitor_changes": "v1"}})
		if raw := c.recvRaw(); raw != `{"messageType":"broadcast","broadcasts":{"errors":{"remote-settings/monitor_changes":"Broadcast not found"}}}` {
			t.Fatalf("broadcast reply %s", raw)
		}
		// Acks of unknown versions and nacks are ignored.
		c.ack(chidA, "unknown", 100)
		c.send(&push.Nack{Version: "unknown", Code: push.NackException})
		c.sendRaw(`{"messageType":"ping"}`)
		if raw := c.recvRaw(); raw != "{}" {
			t.Fatalf("pong %s", raw)
		}
	})

	t.Run("flood", func(t *testing.T) {
		c := s.dial(t)
		c.hello("")
		for range 400 {
			if err := c.ws.Write(context.Background(), websocket.MessageText, []byte("{}")); err != nil {
				break
			}
		}
		for {
			_, err := c.recvWithin(5 * time.Second)
			if err != nil {
				if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
					t.Fatalf("flood ended with %v", err)
				}
				break
			}
		}
	})
}

func TestDeadPeerIsDropped(t *testing.T) {
	s := newServer(t, openSQLite(t), func(c *push.Config) {
		// A pong may take a while on a loaded machine (200 ms dropped the
		// live client at load 25); the dead client is still gone in 2 s.
		c.PingInterval = 100 * time.Millisecond
		c.PongTimeout = 2 * time.Second
	})
	// A client that keeps reading answers the server's Pings and stays.
	live := s.dial(t)
	live.hello("")
	go func() {
		for {
			if _, _, err := live.ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	// One that stops reading never answers and is dropped.
	dead := s.dial(t)
	dead.hello("")
	if s.svc.Connections() != 2 {
		t.Fatalf("%d connections", s.svc.Connections())
	}
	for deadline := time.Now().Add(30 * time.Second); s.svc.Connections() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want the dead one dropped", s.svc.Connections())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // several ping rounds
	if s.svc.Connections() != 1 {
		t.Fatal("the live client was dropped")
	}
}

func TestWebPushErrors(t *testing.T) {
	s := newServer(t, openSQLite(t), nil)
	c := s.dial(t)
	c.hello("")
	ep := c.mustRegister(chidA)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := vapid.NewSigner(key, "mailto:ops@example.com")
	m := c.register(chidB, signer.PublicKey()+"==") // Firefox pads the key
	if m["status"] != float64(200) || !strings.Contains(m["pushEndpoint"].(string), "/wpush/v2/") {
		t.Fatalf("restricted register: %v", m)
	}
	epV2 := m["pushEndpoint"].(string)
	auth, _ := signer.Authorization(epV2, time.Hour)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := vapid.NewSigner(otherKey, "mailto:ops@example.com")
	otherAuth, _ := other.Authorization(epV2, time.Hour)
	wrongAud, _ := signer.Authorization("https://push.example/wpush/v1/x", time.Hour)

	// A token minted for a UAID that never registered.
	codec := mustCodec(t)
	path, _ := codec.Path(endpointSub("ffffffffffffffffffffffffffffffff", chidA))
	unknownUser := s.srv.URL + "/wpush/" + path

	for _, tc := range []struct {
		name   string
		url    string
		req    pushReq
		status int
		errno  float64
	}{
		{"bad token", s.srv.URL + "/wpush/v1/AAAA", payload("x"), 404, 102},
		{"bad version", strings.Replace(ep, "/v1/", "/v3/", 1), payload("x"), 404, 102},
		{"v1 token as v2", strings.Replace(ep, "/v1/", "/v2/", 1), payload("x"), 404, 102},
		{"unknown UAID", unknownUser, payload("x"), 410, 103},
		{"no TTL", ep, pushReq{body: []byte("x"), encoding: "aes128gcm"}, 400, 111},
		{"bad TTL", ep, pushReq{ttl: "soon", body: []byte("x"), encoding: "aes128gcm"}, 400, 111},
		{"negative TTL", ep, pushReq{ttl: "-1", body: []byte("x"), encoding: "aes128gcm"}, 400, 114},
		{"no encoding", ep, pushReq{ttl: "60", body: []byte("x")}, 400, 110},
		{"unknown encoding", ep, pushReq{ttl: "60", body: []byte("x"), encoding: "gzip"}, 400, 110},
		{"bad topic", ep, pushReq{ttl: "60", body: []byte("x"), encoding: "aes128gcm", topic: "no spaces"}, 400, 113},
		{"too large", ep, pushReq{ttl: "60", body: bytes.Repeat([]byte{1}, push.MaxBodySize+1), encoding: "aes128gcm"}, 413, 104},
		{"v2 without VAPID", epV2, payload("x"), 401, 109},
		{"v2 with another key", epV2, pushReq{ttl: "60", body: []byte("x"), encoding: "aes128gcm", headers: map[string]string{"Authorization": otherAuth}}, 401, 109},
		{"v1 with a bad VAPID audience", ep, pushReq{ttl: "60", body: []byte("x"), encoding: "aes128gcm", headers: map[string]string{"Authorization": wrongAud}}, 401, 109},
		{"v1 with an unknown scheme", ep, pushReq{ttl: "60", body: []byte("x"), encoding: "aes128gcm", headers: map[string]string{"Authorization": "Basic Zm9v"}}, 401, 109},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := doPush(t, tc.url, tc.req)
			if resp.StatusCode != tc.status || body["errno"] != tc.errno || body["code"] != float64(tc.status) ||
				resp.Header.Get("Content-Type") != "application/json" || body["more_info"] == nil || body["message"] == "" {
				t.Fatalf("%d %v, want %d errno %v", resp.StatusCode, body, tc.status, tc.errno)
			}
		})
	}
	c.quiet() // none of them was delivered

	// The biggest accepted body, and a v2 push with its key.
	big := strings.Repeat("b", push.MaxBodySize)
	mustPush(t, ep, payload(big))
	v := expectNotification(t, c, chidA, big)
	c.ack(chidA, v, push.AckDelivered)
	p := payload("signed")
	p.headers = map[string]string{"Authorization": auth}
	mustPush(t, epV2, p)
	v = expectNotification(t, c, chidB, "signed")
	c.ack(chidB, v, push.AckDelivered)
	// A v1 endpoint accepts a valid VAPID header too.
	auth1, _ := signer.Authorization(ep, time.Hour)
	p.headers = map[string]string{"Authorization": auth1}
	mustPush(t, ep, p)
	v = expectNotification(t, c, chidA, "signed")
	c.ack(chidA, v, push.AckDelivered)

	// DELETE of a message's Location cancels it.
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitDisconnected(t, s)
	resp := mustPush(t, ep, payload("cancelled"))
	del, _ := doPush(t, resp.Header.Get("Location"), pushReq{method: http.MethodDelete})
	if del.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE of the Location: %d", del.StatusCode)
	}
	if bad, body := doPush(t, s.srv.URL+"/m/zzz", pushReq{method: http.MethodDelete}); bad.StatusCode != 404 || body["errno"] != float64(102) {
		t.Fatalf("DELETE of a malformed id: %d %v", bad.StatusCode, body)
	}
	if get, _ := doPush(t, ep, pushReq{method: http.MethodGet}); get.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET of an endpoint: %d", get.StatusCode)
	}
}

// TestConcurrentSessions delivers to many browsers at once (run with -race).
func TestConcurrentSessions(t *testing.T) {
	s := newServer(t, openSQLite(t), nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.dial(t)
			c.hello("")
			chid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			ep := c.mustRegister(chid)
			for j := range 5 {
				mustPush(t, ep, payload(fmt.Sprint(i, "/", j)))
			}
			for range 5 {
				m := c.recv()
				c.ack(chid, m["version"].(string), push.AckDelivered)
			}
			c.quiet()
		}()
	}
	wg.Wait()
}

func mustCodec(t *testing.T) *endpoint.Codec {
	t.Helper()
	c, err := endpoint.NewCodec(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func endpointSub(uaid, chid string) endpoint.Subscription {
	return endpoint.Subscription{UAID: uaid, ChannelID: chid}
}

// TestOutlivesHTTPTimeouts: the upgrade goes through weave's HTTP server
// and its deadline wrappers (which must let the connection be hijacked),
// and their deadlines must not end a session that lasts far longer.
func TestOutlivesHTTPTimeouts(t *testing.T) {
	short := weavehttp.Timeouts{Header: 100 * time.Millisecond, Body: 100 * time.Millisecond, Write: 100 * time.Millisecond, Idle: 100 * time.Millisecond}
	s := newServerWith(t, openSQLite(t), nil, func(h http.Handler) *http.Server {
		return weavehttp.NewHTTPServer(h, short, nil)
	})
	c := s.dial(t)
	c.hello("")
	ep := c.mustRegister(chidA)
	time.Sleep(500 * time.Millisecond)
	mustPush(t, ep, payload("still here"))
	v := expectNotification(t, c, chidA, "still here")
	c.ack(chidA, v, push.AckDelivered)
	time.Sleep(300 * time.Millisecond)
	c.quiet()
}

// TestStoredCap: a browser that is away has a bounded queue.
func TestStoredCap(t *testing.T) {
	s := newServer(t, openSQLite(t), func(c *push.Config) { c.MaxStored = 3 })
	c := s.dial(t)
	uaid := c.hello("")
	ep := c.mustRegister(chidA)
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitDisconnected(t, s)
	for i := range 3 {
		mustPush(t, ep, payload(fmt.Sprint("m", i)))
	}
	resp, body := doPush(t, ep, payload("one too many"))
	if resp.StatusCode != http.StatusTooManyRequests || body["errno"] != float64(999) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("push over the cap: %d %v", resp.StatusCode, body)
	}
	p := payload("fire and forget")
	p.ttl = "0"
	mustPush(t, ep, p) // not stored, so not capped
	c = s.dial(t)
	c.hello(uaid)
	for i := range 3 {
		v := expectNotification(t, c, chidA, fmt.Sprint("m", i))
		c.ack(chidA, v, push.AckDelivered)
	}
	c.quiet()
	mustPush(t, ep, payload("room again"))
	v := expectNotification(t, c, chidA, "room again")
	c.ack(chidA, v, push.AckDelivered)
}
