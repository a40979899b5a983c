package loadtest

// Push load (`weave loadtest push`): many browsers holding idle push
// WebSocket connections (hello, one register, then only pings, as Firefox
// between messages), and optionally an application server posting to
// their Web Push endpoints at a fixed rate while the time from the POST to
// the notification frame on the socket is measured. The server under test
// is `weave serve --push`; the figures are in docs/benchmarks.md.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// PushConfig configures a push load run.
type PushConfig struct {
	// Target is weave's public base URL, e.g. http://127.0.0.1:8000; the
	// WebSocket is its ws:// form ending in "/".
	Target      string
	AllowRemote bool
	// Conns is the number of simulated browsers, each with one WebSocket
	// and one channel.
	Conns int
	// DialConcurrency bounds connections being opened at once (default 64).
	DialConcurrency int
	// Rate is messages per second posted to the endpoints once every
	// connection is up (0: idle connections only).
	Rate float64
	// Duration is how long the load phase lasts after the connections are
	// up.
	Duration time.Duration
	// PingInterval is how often each connection sends Firefox's "{}" ping
	// (default 60 s; Firefox's own is 30 min, so this is harsher).
	PingInterval time.Duration
	// TTL of the posted messages in seconds (default 60).
	TTL int
	// Sources are local addresses to spread connections over (e.g.
	// 127.0.0.2, 127.0.0.3), for when one address runs out of ephemeral
	// ports; empty: the system picks.
	Sources []string
	// ServerPID, when set, has the server's resident memory (VmRSS of
	// /proc/PID/status) shown in the progress line and the report.
	ServerPID int
	// ProgressInterval is how often the progress line is written (default
	// 1 s).
	ProgressInterval time.Duration
}

func (c PushConfig) withDefaults() PushConfig {
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 64
	}
	if c.PingInterval <= 0 {
		c.PingInterval = time.Minute
	}
	if c.TTL <= 0 {
		c.TTL = 60
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	return c
}

// Validate reports every problem of the configuration at once, or nil.
func (c PushConfig) Validate() error {
	var errs []error
	if _, err := checkTarget(c.Target, c.AllowRemote); err != nil {
		errs = append(errs, err)
	}
	if c.Conns < 1 || c.Conns > 1_000_000 {
		errs = append(errs, fmt.Errorf("push-conns must be 1 to 1000000, not %d", c.Conns))
	}
	if c.Rate < 0 || c.Rate > 100_000 {
		errs = append(errs, fmt.Errorf("push-rate must be 0 to 100000 messages/s, not %g", c.Rate))
	}
	if c.Duration <= 0 || c.Duration > MaxRunDuration {
		errs = append(errs, fmt.Errorf("duration must be positive and at most %s", MaxRunDuration))
	}
	for _, s := range c.Sources {
		ip := net.ParseIP(s)
		if ip == nil {
			errs = append(errs, fmt.Errorf("push-sources: %q is not an IP address", s))
		} else if !c.AllowRemote && !ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("push-sources: %q is not a loopback address", s))
		}
	}
	return errors.Join(errs...)
}

// PushReport is the outcome of a push load run.
type PushReport struct {
	Conns     int     `json:"conns"`     // connections asked for
	Connected int     `json:"connected"` // that said hello and registered
	Failed    int64   `json:"failed"`    // that failed to connect or register
	Dropped   int64   `json:"dropped"`   // closed by the server during the run
	ConnectS  float64 `json:"connect_s"` // time to open all of them
	Sent      int64   `json:"sent"`      // messages accepted (201)
	Errors    int64   `json:"errors"`    // POSTs that failed or could not start
	// FirstError describes the first failure (connect or POST).
	FirstError string  `json:"first_error,omitempty"`
	Delivered  int64   `json:"delivered"` // notification frames received
	Lost       int64   `json:"lost"`      // accepted but not delivered by the end
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	RateS      float64 `json:"rate_per_s"` // messages sent per second of load
	// ServerRSSMB is the server's resident memory once every connection
	// was up, and its peak over the run (0 without ServerPID).
	ServerRSSMB     float64 `json:"server_rss_mb,omitempty"`
	ServerPeakRSSMB float64 `json:"server_peak_rss_mb,omitempty"`
}

// OK reports whether the run had no failures.
func (r *PushReport) OK() bool {
	return r.Failed == 0 && r.Dropped == 0 && r.Errors == 0 && r.Lost == 0 && r.Connected == r.Conns
}

// WriteTable prints the report for people.
func (r *PushReport) WriteTable(w io.Writer) error {
	_, err := fmt.Fprintf(w, "connections  %d/%d up in %.1fs, %d failed, %d dropped\n", r.Connected, r.Conns, r.ConnectS, r.Failed, r.Dropped)
	if err == nil && (r.Sent > 0 || r.Errors > 0) {
		_, err = fmt.Fprintf(w, "messages     %d sent (%.1f/s), %d errors, %d delivered, %d lost\nlatency      POST to notification: p50 %.1fms  p99 %.1fms  max %.1fms\n",
			r.Sent, r.RateS, r.Errors, r.Delivered, r.Lost, r.P50ms, r.P99ms, r.MaxMs)
	}
	if err == nil && r.FirstError != "" {
		_, err = fmt.Fprintf(w, "first error  %s\n", r.FirstError)
	}
	if err == nil && r.ServerRSSMB > 0 {
		_, err = fmt.Fprintf(w, "server RSS   %.1f MB with all connections up, peak %.1f MB\n", r.ServerRSSMB, r.ServerPeakRSSMB)
	}
	return err
}

// WriteJSON prints the report as JSON.
func (r *PushReport) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// pushClient is one simulated browser.
type pushClient struct {
	ws       *websocket.Conn
	endpoint string
	chid     string

	mu      sync.Mutex
	pending []*time.Time // send times of messages not yet seen, oldest first
}

func (pc *pushClient) push(t *time.Time) {
	pc.mu.Lock()
	pc.pending = append(pc.pending, t)
	pc.mu.Unlock()
}

// pop takes the oldest send time: one channel's messages arrive in order.
func (pc *pushClient) pop() (time.Time, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if len(pc.pending) == 0 {
		return time.Time{}, false
	}
	t := pc.pending[0]
	pc.pending = pc.pending[1:]
	return *t, true
}

// forget drops a send time whose POST failed.
func (pc *pushClient) forget(t *time.Time) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for i, p := range pc.pending {
		if p == t {
			pc.pending = append(pc.pending[:i], pc.pending[i+1:]...)
			return
		}
	}
}

func (pc *pushClient) outstanding() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return len(pc.pending)
}

type pushRun struct {
	cfg    PushConfig
	wsURL  string
	dialer []*http.Client // one per source address
	post   *http.Client

	connected, failed, dropped atomic.Int64
	sent, errors, delivered    atomic.Int64
	closing                    atomic.Bool
	firstErr                   atomic.Pointer[string]
	peakRSS                    atomic.Int64
	mu                         sync.Mutex
	hist                       *histogram
}

func (r *pushRun) fail(err error) {
	msg := err.Error()
	r.firstErr.CompareAndSwap(nil, &msg)
}

func (r *pushRun) record(d time.Duration) {
	r.mu.Lock()
	r.hist.record(d)
	r.mu.Unlock()
}

// sourceClient returns an HTTP client whose connections leave from addr.
func sourceClient(addr string, maxConns int) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second}
	if addr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(addr)}
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: maxConns,
		MaxConnsPerHost:     maxConns,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// RunPush runs a push load test, writing progress lines to progress (nil:
// none).
func RunPush(ctx context.Context, cfg PushConfig, progress io.Writer) (*PushReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	target, _ := checkTarget(cfg.Target, cfg.AllowRemote)
	ws := *target
	if ws.Scheme == "https" {
		ws.Scheme = "wss"
	} else {
		ws.Scheme = "ws"
	}
	ws.Path += "/"
	r := &pushRun{cfg: cfg, wsURL: ws.String(), hist: newHistogram()}
	sources := cfg.Sources
	if len(sources) == 0 {
		sources = []string{""}
	}
	for _, s := range sources {
		r.dialer = append(r.dialer, sourceClient(s, 0))
	}
	// The sender's connections are few and reused, as an application
	// server's would be, and stay under the server's per-client cap
	// (--max-conns-per-client, 64 by default) beside the WebSockets.
	r.post = sourceClient(sources[len(sources)-1], 16)
	defer r.post.CloseIdleConnections()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stopProgress := r.progress(progress, start)
	defer stopProgress()

	// Open the connections, DialConcurrency at a time.
	clients := make([]*pushClient, cfg.Conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.DialConcurrency)
	var readers sync.WaitGroup
	for i := range clients {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			pc, err := r.connect(ctx, r.dialer[i%len(r.dialer)])
			if err != nil {
				r.failed.Add(1)
				r.fail(fmt.Errorf("connect: %w", err))
				return
			}
			clients[i] = pc
			r.connected.Add(1)
			readers.Add(1)
			go func() {
				defer readers.Done()
				r.serve(ctx, pc)
			}()
		}(i)
	}
	wg.Wait()
	rep := &PushReport{Conns: cfg.Conns, ConnectS: time.Since(start).Seconds()}
	var up []*pushClient
	for _, c := range clients {
		if c != nil {
			up = append(up, c)
		}
	}
	if cfg.ServerPID > 0 {
		time.Sleep(time.Second) // let the server settle after the burst
		rep.ServerRSSMB = float64(rss(cfg.ServerPID)) / (1 << 20)
	}

	// The load phase: idle, plus messages at Rate.
	loadStart := time.Now()
	deadline := time.NewTimer(cfg.Duration)
	if cfg.Rate > 0 && len(up) > 0 {
		r.sendLoop(ctx, up, deadline.C)
	} else {
		select {
		case <-deadline.C:
		case <-ctx.Done():
		}
	}
	loadTime := time.Since(loadStart)
	// Give the last messages a moment to arrive.
	for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		if outstanding(up) == 0 {
			break
		}
	}
	rep.Lost = int64(outstanding(up))
	r.closing.Store(true)
	for _, c := range up {
		c.ws.Close(websocket.StatusNormalClosure, "")
	}
	cancel()
	readers.Wait()
	stopProgress()

	rep.Connected = int(r.connected.Load())
	rep.Failed, rep.Dropped = r.failed.Load(), r.dropped.Load()
	rep.Sent, rep.Errors, rep.Delivered = r.sent.Load(), r.errors.Load(), r.delivered.Load()
	if loadTime > 0 {
		rep.RateS = float64(rep.Sent) / loadTime.Seconds()
	}
	r.mu.Lock()
	rep.P50ms, rep.P99ms, rep.MaxMs = ms(r.hist.quantile(0.5)), ms(r.hist.quantile(0.99)), ms(r.hist.maximum())
	r.mu.Unlock()
	rep.ServerPeakRSSMB = float64(r.peakRSS.Load()) / (1 << 20)
	if e := r.firstErr.Load(); e != nil {
		rep.FirstError = *e
	}
	return rep, nil
}

func outstanding(cs []*pushClient) int {
	n := 0
	for _, c := range cs {
		n += c.outstanding()
	}
	return n
}

// sendLoop posts messages round-robin over the clients at cfg.Rate until
// done, keeping at most 512 POSTs in flight.
func (r *pushRun) sendLoop(ctx context.Context, clients []*pushClient, done <-chan time.Time) {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	next := time.Now()
	inflight := make(chan struct{}, 512)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(interval)
		select {
		case inflight <- struct{}{}:
		default:
			r.errors.Add(1) // the server is not keeping up; count, do not queue
			r.fail(errors.New("512 POSTs in flight: the server is not keeping up with the rate"))
			continue
		}
		pc := clients[i%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inflight }()
			r.send(ctx, pc)
		}()
	}
}

func (r *pushRun) send(ctx context.Context, pc *pushClient) {
	t := time.Now()
	pc.push(&t)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pc.endpoint, nil)
	if err != nil {
		pc.forget(&t)
		r.errors.Add(1)
		return
	}
	req.Header.Set("TTL", strconv.Itoa(r.cfg.TTL))
	resp, err := r.post.Do(req)
	if err != nil {
		pc.forget(&t)
		r.errors.Add(1)
		r.fail(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		pc.forget(&t)
		r.errors.Add(1)
		r.fail(fmt.Errorf("POST: %s", resp.Status))
		return
	}
	r.sent.Add(1)
}

// connect opens one browser's session: hello as a new user agent, then one
// register, as Firefox does on its first start.
func (r *pushRun) connect(ctx context.Context, hc *http.Client) (*pushClient, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, r.wsURL, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"push-notification"}})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*pushClient, error) {
		ws.CloseNow()
		return nil, err
	}
	var reply struct {
		MessageType  string `json:"messageType"`
		Status       int    `json:"status"`
		UAID         string `json:"uaid"`
		PushEndpoint string `json:"pushEndpoint"`
	}
	exchange := func(msg string) error {
		if err := ws.Write(dctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, b, err := ws.Read(dctx)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &reply); err != nil {
			return err
		}
		if reply.Status != http.StatusOK {
			return fmt.Errorf("%s: status %d", reply.MessageType, reply.Status)
		}
		return nil
	}
	if err := exchange(`{"messageType":"hello","use_webpush":true}`); err != nil {
		return fail(err)
	}
	chid := newUUID()
	if err := exchange(`{"messageType":"register","channelID":"` + chid + `"}`); err != nil {
		return fail(err)
	}
	if reply.PushEndpoint == "" {
		return fail(errors.New("register reply without pushEndpoint"))
	}
	ws.SetReadLimit(64 << 10)
	return &pushClient{ws: ws, endpoint: reply.PushEndpoint, chid: chid}, nil
}

// serve reads the session until it ends, acknowledging notifications and
// sending a ping every PingInterval.
func (r *pushRun) serve(ctx context.Context, pc *pushClient) {
	go func() {
		t := time.NewTicker(r.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := pc.ws.Write(wctx, websocket.MessageText, []byte("{}"))
				cancel()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		_, b, err := pc.ws.Read(ctx)
		if err != nil {
			if !r.closing.Load() && ctx.Err() == nil {
				r.dropped.Add(1)
			}
			return
		}
		var n struct {
			MessageType string `json:"messageType"`
			ChannelID   string `json:"channelID"`
			Version     string `json:"version"`
		}
		if json.Unmarshal(b, &n) != nil || n.MessageType != "notification" {
			continue // ping replies
		}
		if sent, ok := pc.pop(); ok {
			r.record(time.Since(sent))
		}
		r.delivered.Add(1)
		ack, _ := json.Marshal(map[string]any{"messageType": "ack", "updates": []map[string]any{{"channelID": n.ChannelID, "version": n.Version, "code": 100}}})
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pc.ws.Write(wctx, websocket.MessageText, ack)
		cancel()
		if err != nil {
			return
		}
	}
}

// progress writes a line per ProgressInterval until the returned function
// is called (idempotent); it writes a last line then.
func (r *pushRun) progress(w io.Writer, start time.Time) func() {
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		var prevSent, prevHist = int64(0), newHistogram()
		prevAt := start
		for {
			final := false
			select {
			case <-t.C:
			case <-done:
				final = true
			}
			now := time.Now()
			var rssMB float64
			if r.cfg.ServerPID > 0 {
				v := rss(r.cfg.ServerPID)
				for p := r.peakRSS.Load(); v > p && !r.peakRSS.CompareAndSwap(p, v); p = r.peakRSS.Load() {
				}
				rssMB = float64(v) / (1 << 20)
			}
			r.mu.Lock()
			h := r.hist.clone()
			r.mu.Unlock()
			sent := r.sent.Load()
			rate := float64(sent-prevSent) / now.Sub(prevAt).Seconds()
			if w != nil {
				line := fmt.Sprintf("%7.1fs  conns %d/%d  failed %d  dropped %d  sent %d (%.1f/s)  delivered %d  errors %d  p99 %.1fms  window p99 %.1fms",
					now.Sub(start).Seconds(), r.connected.Load(), r.cfg.Conns, r.failed.Load(), r.dropped.Load(),
					sent, rate, r.delivered.Load(), r.errors.Load(), ms(h.quantile(0.99)), ms(h.minus(prevHist).quantile(0.99)))
				if rssMB > 0 {
					line += fmt.Sprintf("  server RSS %.0f MB", rssMB)
				}
				fmt.Fprintln(w, line)
			}
			prevSent, prevHist, prevAt = sent, h, now
			if final {
				return
			}
		}
	}()
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// rss returns a process's resident memory in bytes, 0 if unknown.
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// newUUID returns a random lower-case dashed UUID (version 4), the form
// Firefox uses for channel IDs.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
