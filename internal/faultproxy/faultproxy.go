// Package faultproxy is a TCP proxy on 127.0.0.1 for fault tests: it
// forwards connections to a database server and, on command, cuts every
// open connection, refuses new ones, or cuts the connection that is about
// to send a chosen statement, so a test can kill "the database" in the
// middle of a transaction and bring it back.
package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Proxy forwards TCP connections from its own address on 127.0.0.1 to a
// target address.
type Proxy struct {
	target string
	addr   string

	mu       sync.Mutex
	ln       net.Listener // nil while refusing
	conns    map[*pair]struct{}
	trigger  []byte // cut the connections when a client sends this (ASCII case-insensitive)
	skip     int    // chunks with the trigger to let through first
	tripped  chan struct{}
	flowing  chan struct{} // closed unless stalled
	accepted int
	closed   bool
	wg       sync.WaitGroup
	latency  atomic.Int64 // ns each way, for connections accepted after SetLatency
	requests atomic.Int64 // chunks read from clients
}

type pair struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{} // closed with the connections
}

func (p *pair) close() {
	p.once.Do(func() {
		close(p.done)
		reset(p.client)
		reset(p.server)
	})
}

// reset closes a connection with an RST rather than a FIN, as a crashed
// server or a cut cable looks to the other side.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// New starts a proxy to target (host:port, which must be on the loopback
// network) on a free port of 127.0.0.1.
func New(target string) (*Proxy, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("faultproxy: target %q is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: map[*pair]struct{}{}, flowing: make(chan struct{})}
	close(p.flowing)
	p.serve(ln)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c)
			}()
		}
	}()
}

func (p *Proxy) handle(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		reset(client)
		return
	}
	pr := &pair{client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.ln == nil {
		p.mu.Unlock()
		pr.close()
		return
	}
	p.conns[pr] = struct{}{}
	p.accepted++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, pr)
		p.mu.Unlock()
		pr.close()
	}()

	lat := time.Duration(p.latency.Load())
	done := make(chan struct{}, 2)
	go func() {
		p.pipe(pr, server, client, true, lat)
		done <- struct{}{}
	}()
	p.pipe(pr, client, server, false, lat)
	done <- struct{}{}
	<-done
}

// SetLatency delays every chunk forwarded in either direction by d (so a
// request and its answer take 2d more), on connections accepted from now
// on; 0 forwards at once. Chunks are delayed, not throttled: a second chunk
// read right after the first arrives right after it, as on a long link.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(max(d, 0))) }

// pipe copies src to dst until either side fails, each chunk lat after it
// was read; on the client-to-server direction it watches for the trigger.
func (p *Proxy) pipe(pr *pair, dst, src net.Conn, fromClient bool, lat time.Duration) {
	defer pr.close()
	forward := func(chunk []byte) bool { return p.forward(pr, dst, chunk) }
	if lat > 0 {
		// A delay line: the reader stamps each chunk, a writer sends it
		// when due, so that chunks in flight overlap as on a real link.
		type delayed struct {
			chunk []byte
			due   time.Time
		}
		line := make(chan delayed, 256)
		written := make(chan struct{})
		go func() {
			defer close(written)
			for d := range line {
				sleepUntil(d.due)
				if !p.forward(pr, dst, d.chunk) {
					pr.close()
					return
				}
			}
		}()
		defer func() { <-written }()
		defer close(line)
		forward = func(chunk []byte) bool {
			select {
			case line <- delayed{bytes.Clone(chunk), time.Now().Add(lat)}:
				return true
			case <-pr.done:
				return false
			}
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient {
				p.requests.Add(1)
				if tripped := p.fire(buf[:n]); tripped != nil {
					// The server never sees the chunk; both sides see
					// the connection die.
					p.DropAll()
					close(tripped)
					return
				}
			}
			if !forward(buf[:n]) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// sleepUntil waits until t in a system call of its own: the Go runtime's
// timers wake at millisecond granularity, which would make a latency of
// 0.5 ms one of 1–2 ms, while the kernel's high-resolution sleep is exact
// to tens of microseconds. It holds an OS thread meanwhile, one per
// connection direction with data in flight.
func sleepUntil(t time.Time) {
	for d := time.Until(t); d > 0; d = time.Until(t) {
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
}

// forward writes one chunk to dst and reports whether it could.
func (p *Proxy) forward(pr *pair, dst net.Conn, chunk []byte) bool {
	// While stalled, data waits here, as behind a hung server.
	select {
	case <-p.gate():
	case <-pr.done:
		return false
	}
	_, err := dst.Write(chunk)
	return err == nil
}

// fire disarms the trigger and returns its channel if chunk holds it.
func (p *Proxy) fire(chunk []byte) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trigger == nil || !bytes.Contains(upper(chunk), p.trigger) {
		return nil
	}
	if p.skip > 0 {
		p.skip--
		return nil
	}
	p.trigger = nil
	return p.tripped
}

// upper maps ASCII letters to upper case and leaves every other byte alone
// (the protocols carry binary data).
func upper(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// CutOn arms a one-shot trigger: the first chunk a client sends that
// contains s (compared case-insensitively; a statement's text, e.g.
// "COMMIT" or "INSERT INTO bsos") is not forwarded, and every connection
// is cut at that moment, so the statement never reaches the server. The
// returned channel closes once the trigger fired and every connection is
// cut. A string split across two of the client's writes is not seen; SQL
// drivers write a statement at once.
func (p *Proxy) CutOn(s string) <-chan struct{} { return p.CutOnNth(s, 1) }

// CutOnNth is CutOn firing on the nth chunk (counting from 1) that contains
// s, letting the ones before it through. s may be binary, e.g. an integer
// parameter as the PostgreSQL protocol encodes it.
func (p *Proxy) CutOnNth(s string, n int) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = upper([]byte(s))
	p.skip = max(n-1, 0)
	p.tripped = make(chan struct{})
	return p.tripped
}

// Disarm cancels a trigger set by CutOn that has not fired.
func (p *Proxy) Disarm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = nil
}

// DropAll cuts every open connection (with a TCP reset); new connections
// are still accepted.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	conns := make([]*pair, 0, len(p.conns))
	for pr := range p.conns {
		conns = append(conns, pr)
	}
	p.mu.Unlock()
	for _, pr := range conns {
		pr.close()
	}
}

// Refuse cuts every open connection and stops listening, so that new
// connections are refused, as if the server were down.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	p.DropAll()
}

func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flowing
}

// Stall stops forwarding data in both directions without closing anything,
// as a hung server or a lost network does: connections stay open and
// silent until Resume (or until a side gives up and closes).
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
		p.flowing = make(chan struct{})
	default: // already stalled
	}
}

// Resume ends Refuse and Stall: the proxy listens again on its address and
// forwards data.
func (p *Proxy) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: closed")
	}
	select {
	case <-p.flowing:
	default:
		close(p.flowing)
	}
	if p.ln != nil {
		return nil
	}
	var err error
	for range 50 { // the old socket may linger for a moment
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
}

// Requests returns how many chunks clients have sent through the proxy so
// far: a database driver writes each statement (or pipelined group of
// protocol messages) at once and waits for its answer, so this counts the
// round trips to the database.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Conns returns the number of connections open through the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Accepted returns how many connections the proxy has forwarded so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Refuse()
	p.wg.Wait()
	return nil
}

var _ io.Closer = (*Proxy)(nil)
