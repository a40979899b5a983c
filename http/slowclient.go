package http

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Timeouts bound how long a client may take over each part of an exchange,
// so that slow or stalled clients ("slowloris", slow readers) cannot hold
// connections and the memory behind them.
//
// There are two classes of request. Most requests (token server, accounts,
// heartbeats, unauthenticated storage requests) are small: the body must
// arrive within Body and the response be taken within Write. A storage
// request whose Hawk header verified may move megabytes (POST and batch
// uploads, full collection reads): it gets the same allowance, and after it
// every byte that flows earns 1/MinRate seconds more, while no single pause
// may be longer than the allowance. So a transfer that keeps moving at
// MinRate or faster always finishes, and holding a connection for T seconds
// costs a client (T − allowance) × MinRate bytes.
type Timeouts struct {
	// Header bounds reading the request line and headers (and the TLS
	// handshake).
	Header time.Duration
	// Body bounds reading a small request's body; for storage transfers it
	// is the allowance and the longest pause.
	Body time.Duration
	// Write bounds sending a small response, counted from its first byte
	// (not from the request: a slow database is not the client's fault);
	// for storage transfers it is the allowance and the longest pause.
	Write time.Duration
	// Idle bounds waiting for the next request on a kept-alive connection.
	Idle time.Duration
	// MinRate is the average rate in bytes per second a storage transfer
	// must keep up once its allowance is spent; 0 keeps only the pause
	// bound.
	MinRate int64
}

// DefaultTimeouts are the bounds weave serve uses unless told otherwise.
//
// Header 10 s: request heads are a few KB, seconds even on a poor link.
// Body and Write 30 s: accounts bodies are at most 16 KiB and small
// responses fit the socket buffers, and a 30 s pause survives several TCP
// retransmissions on a bad mobile link. Idle 2 min: longer than Firefox's
// keep-alive (115 s), so Firefox, not the server, closes idle connections
// and never sends on one the server is closing. MinRate 1 KiB/s: the
// largest POST (2.5 MiB) still has 40 minutes at that rate, and a client
// must send or read 1 KiB every second to keep a connection.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Header:  10 * time.Second,
		Body:    30 * time.Second,
		Write:   30 * time.Second,
		Idle:    2 * time.Minute,
		MinRate: 1024,
	}
}

// MaxHeaderBytes bounds a request's line and headers. The largest legitimate
// request line is a GET naming 100 ids of 64 characters, each escaped
// (about 20 KB); Hawk and bearer headers are a few KB.
const MaxHeaderBytes = 64 << 10

// withDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	if t.Header <= 0 {
		t.Header = d.Header
	}
	if t.Body <= 0 {
		t.Body = d.Body
	}
	if t.Write <= 0 {
		t.Write = d.Write
	}
	if t.Idle <= 0 {
		t.Idle = d.Idle
	}
	if t.MinRate < 0 {
		t.MinRate = 0
	}
	return t
}

// NewHTTPServer returns the http.Server every weave listener should use: h
// wrapped in the per-request deadlines of t (zero fields take
// DefaultTimeouts'), the header and idle bounds, and MaxHeaderBytes. Set
// TLSConfig on the result for TLS; pair it with LimitListener.
func NewHTTPServer(h http.Handler, t Timeouts, errorLog *log.Logger) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           t.Handler(h),
		ReadHeaderTimeout: t.Header,
		// A backstop for what net/http writes itself (errors about
		// malformed requests) and for the TLS handshake; Handler moves
		// the write deadline for everything a handler sends.
		WriteTimeout:   t.Header + t.Write,
		IdleTimeout:    t.Idle,
		MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog:       errorLog,
	}
}

// Handler returns h with the body and response deadlines of t applied to
// every request (header and idle bounds are the http.Server's, see
// NewHTTPServer). Storage requests switch themselves to the transfer class
// once authenticated.
func (t Timeouts) Handler(h http.Handler) http.Handler {
	t = t.withDefaults()
	chunk := int(t.MinRate * int64(t.Write) / int64(time.Second) / 2)
	chunk = min(max(chunk, 1<<10), 64<<10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &exchange{t: t, rc: http.NewResponseController(w), start: time.Now(), chunk: chunk}
		// The write deadline net/http set when the headers arrived would
		// cut a slow handler off before its first byte (and HTTP/2 resets
		// the stream when it passes): the response's clock starts with
		// its first write.
		_ = x.rc.SetWriteDeadline(time.Time{})
		// A shallow copy: net/http must still see its own body type in the
		// original to decide, when the handler left a large body unread,
		// to close the connection rather than read the rest.
		r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
		if r.Body != nil && r.Body != http.NoBody {
			// Only while a body is pending: once it is read (or when there
			// is none) net/http reads in the background to notice a client
			// hanging up, and a deadline there would cancel the request.
			x.readDL = x.start.Add(t.Body)
			_ = x.rc.SetReadDeadline(x.readDL)
			r.Body = &deadlineBody{ReadCloser: r.Body, x: x}
		}
		// The buffered tail of the response goes out after the handler
		// returns: bound it like any other write.
		defer x.beforeWrite(0)
		h.ServeHTTP(&deadlineWriter{ResponseWriter: w, x: x}, r)
	})
}

type exchangeKey struct{}

// exchange is one request's deadline state.
type exchange struct {
	t     Timeouts
	rc    *http.ResponseController
	start time.Time
	chunk int // largest single write, so each write can finish within the pause bound at MinRate

	mu       sync.Mutex
	hijacked bool // the connection belongs to the handler now (a WebSocket)
	transfer bool
	read     int64
	readDL   time.Time // zero once the body is done
	bodyDone bool
	wstart   time.Time
	written  int64
	writeDL  time.Time
}

// AllowTransfer moves the request of ctx (if it runs under
// Timeouts.Handler) to the transfer class: handlers of large uploads and
// downloads other than the storage API's call it. Call it only once the
// request is authenticated: an anonymous client never gets more than the
// small bounds.
func AllowTransfer(ctx context.Context) {
	if x, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		x.mu.Lock()
		x.transfer = true
		x.mu.Unlock()
	}
}

// earned is the time n transferred bytes buy at MinRate.
func (x *exchange) earned(n int64) time.Duration {
	if x.t.MinRate <= 0 {
		return 1<<63 - 1
	}
	return time.Duration(float64(n) / float64(x.t.MinRate) * float64(time.Second))
}

// deadline is when a transfer that began at begin, has moved n bytes and
// is about to wait at now must fail: within the allowance for a small
// request; for a transfer, at the pause bound or when the average rate
// falls below MinRate, whichever is first.
func (x *exchange) deadline(begin, now time.Time, allowance time.Duration, n int64) time.Time {
	dl := begin.Add(allowance)
	if x.transfer {
		pause := now.Add(allowance)
		if e := x.earned(n); e < pause.Sub(dl) {
			pause = dl.Add(e)
		}
		dl = pause
	}
	return dl
}

// moved reports whether a deadline changed enough to be worth a syscall:
// every change of a small request's, a transfer's when it moved by more
// than a sixteenth of the allowance.
func moved(old, next time.Time, allowance time.Duration) bool {
	d := next.Sub(old)
	return d < 0 || d > allowance/16
}

func (x *exchange) beforeRead() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.bodyDone || !x.transfer || x.hijacked {
		return // a small body's deadline was set once, at the start
	}
	dl := x.deadline(x.start, time.Now(), x.t.Body, x.read)
	if moved(x.readDL, dl, x.t.Body) {
		x.readDL = dl
		_ = x.rc.SetReadDeadline(dl)
	}
}

func (x *exchange) afterRead(n int, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.read += int64(n)
	if err != nil && errors.Is(err, io.EOF) && !x.bodyDone {
		x.bodyDone = true
		x.readDL = time.Time{}
		_ = x.rc.SetReadDeadline(time.Time{})
	}
}

func (x *exchange) beforeWrite(n int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.hijacked {
		return
	}
	now := time.Now()
	if x.wstart.IsZero() {
		x.wstart = now
		if !x.bodyDone && x.readDL.After(now) {
			// A body the handler left unread: before the first bytes go
			// out, net/http reads what is left of it (up to 256 KiB, to
			// keep the connection) within the read deadline. The
			// response's clock starts after that.
			x.wstart = x.readDL
		}
	}
	x.written += int64(n)
	dl := x.deadline(x.wstart, now, x.t.Write, x.written)
	if x.writeDL.IsZero() || moved(x.writeDL, dl, x.t.Write) {
		x.writeDL = dl
		_ = x.rc.SetWriteDeadline(dl)
	}
}

// deadlineBody applies the read deadlines to a request body.
type deadlineBody struct {
	io.ReadCloser
	x *exchange
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.x.beforeRead()
	n, err := b.ReadCloser.Read(p)
	b.x.afterRead(n, err)
	return n, err
}

// deadlineWriter applies the write deadlines to a response.
type deadlineWriter struct {
	http.ResponseWriter
	x *exchange
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	var written int
	for len(p) > 0 {
		part := p[:min(len(p), w.x.chunk)]
		w.x.beforeWrite(len(part))
		n, err := w.ResponseWriter.Write(part)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(part):]
	}
	return written, nil
}

func (w *deadlineWriter) Flush() {
	w.x.beforeWrite(0)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection to the handler (a WebSocket, which may
// outlive the handler by hours): net/http clears its deadlines, and none
// is set again, not even when the handler returns.
func (w *deadlineWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.x.mu.Lock()
		w.x.hijacked = true
		w.x.mu.Unlock()
	}
	return c, rw, err
}

// ConnLimits bound concurrent connections on a listener (LimitListener).
type ConnLimits struct {
	// PerClient caps the connections of one client: an IPv4 address or an
	// IPv6 /64 (one subscriber's allocation). 0: no cap. Behind a reverse
	// proxy every connection comes from the proxy; list it in Exempt and
	// cap clients at the proxy.
	PerClient int
	// Total caps all connections. 0: no cap.
	Total int
	// Exempt are peers not subject to PerClient (trusted proxies); they
	// still count towards Total.
	Exempt []netip.Prefix
	// Refused, when set, is called (on the accepting goroutine) for each
	// refused connection: perClient tells which cap it hit.
	Refused func(client netip.Prefix, perClient bool)
}

// LimitListener returns ln with l's caps: a connection over a cap is
// accepted and closed at once, before any byte is read, so an address
// holding its share cannot take the others'.
func LimitListener(ln net.Listener, l ConnLimits) net.Listener {
	return &limitListener{Listener: ln, l: l, per: make(map[netip.Prefix]int)}
}

type limitListener struct {
	net.Listener
	l     ConnLimits
	mu    sync.Mutex
	total int
	per   map[netip.Prefix]int
}

// ClientKey is the prefix a client's connections are counted under: the
// address for IPv4 (and IPv4-mapped IPv6), its /64 for IPv6.
func ClientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.WithZone("").Prefix(64)
	return p
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var addr netip.Addr
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			addr = ap.Addr().Unmap()
		}
		key, perClient, ok := l.admit(addr)
		if ok {
			return &limitedConn{Conn: c, l: l, key: key, perClient: perClient}, nil
		}
		c.Close()
		if l.l.Refused != nil {
			l.l.Refused(key, perClient)
		}
	}
}

// admit counts a new connection from addr, or reports which cap it hits.
func (l *limitListener) admit(addr netip.Addr) (key netip.Prefix, perClient, ok bool) {
	counted := l.l.PerClient > 0 && addr.IsValid()
	if counted {
		key = ClientKey(addr)
		for _, p := range l.l.Exempt {
			if p.Contains(addr) {
				counted = false
				break
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.l.Total > 0 && l.total >= l.l.Total {
		return key, false, false
	}
	if counted && l.per[key] >= l.l.PerClient {
		return key, true, false
	}
	l.total++
	if counted {
		l.per[key]++
	}
	return key, counted, true
}

func (l *limitListener) release(key netip.Prefix, perClient bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if perClient {
		if l.per[key]--; l.per[key] <= 0 {
			delete(l.per, key)
		}
	}
}

type limitedConn struct {
	net.Conn
	l         *limitListener
	key       netip.Prefix
	perClient bool
	once      sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key, c.perClient) })
	return err
}

// Listen opens addr with l's caps. Unless l.Refused is set, refused
// connections are logged at most once a minute, with how many there were,
// so a flood cannot flood the log.
func Listen(addr string, l ConnLimits, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if l.Refused == nil {
		l.Refused = refusalLogger(addr, log)
	}
	return LimitListener(ln, l), nil
}

func refusalLogger(addr string, log *slog.Logger) func(netip.Prefix, bool) {
	var mu sync.Mutex
	var last time.Time
	var perClient, total int
	return func(client netip.Prefix, per bool) {
		mu.Lock()
		defer mu.Unlock()
		if per {
			perClient++
		} else {
			total++
		}
		if now := time.Now(); now.Sub(last) >= time.Minute {
			log.Warn("refusing connections over the caps (behind a reverse proxy? list it in --trusted-proxies)",
				"listener", addr, "last_client", client, "over_per_client_cap", perClient, "over_total_cap", total)
			last, perClient, total = now, 0, 0
		}
	}
}
