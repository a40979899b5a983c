package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/cli"
)

// RegisterFlags registers the storage API's flags of `weave serve`: the
// request and batch limits with the quota (Limits), --hawk-skew and
// --cors-origins.
func (c *Config) RegisterFlags(cmd *cli.Command) {
	cmd.Duration(&c.Hawk.Skew, "hawk-skew", 60*time.Second, "accepted clock difference of Hawk-signed requests (1s to 1h; it also bounds how long nonces are remembered against replay)").Min(time.Second).Max(time.Hour)
	cmd.StringList(&c.CORSOrigins, "cors-origins", "", "comma-separated origins (scheme://host[:port], or *) whose web pages may call the storage and token APIs (CORS; default: none)")
	cmd.Int64(&c.Limits.QuotaBytes, "quota-bytes", 0, "per-user storage quota in bytes (0: none)").Min(0)
	def := weave.DefaultLimits()
	cmd.Int64(&c.Limits.MaxRequestBytes, "max-request-bytes", def.MaxRequestBytes, "largest request body accepted").Min(1)
	cmd.Int64(&c.Limits.MaxPostRecords, "max-post-records", def.MaxPostRecords, "most records in one POST").Min(1)
	cmd.Int64(&c.Limits.MaxPostBytes, "max-post-bytes", def.MaxPostBytes, "most payload bytes in one POST").Min(1)
	cmd.Int64(&c.Limits.MaxTotalRecords, "max-total-records", def.MaxTotalRecords, "most records in one batch").Min(1)
	cmd.Int64(&c.Limits.MaxTotalBytes, "max-total-bytes", def.MaxTotalBytes, "most payload bytes in one batch").Min(1)
	cmd.Int64(&c.Limits.MaxRecordPayloadBytes, "max-record-payload-bytes", def.MaxRecordPayloadBytes, "largest payload of one record").Min(1)
	cmd.Int64(&c.MaxBodyMemory, "max-body-memory", DefaultMaxBodyMemory, "request body bytes held in memory at once across all requests; a request waits up to 10 s for room before its body is read, then gets 503 + Retry-After (bounds memory under bursts of uploads; -1: no bound)").Min(-1)
	cmd.Duration(&c.Limits.BatchLifetime, "batch-lifetime", def.BatchLifetime, "how long an uncommitted batch upload stays usable").Min(time.Second)
}

// ListenConfig bounds slow clients and connections on every listener
// `weave serve` opens (the public one and --metrics-listen).
type ListenConfig struct {
	Timeouts  Timeouts
	PerClient int // connections per client (0: no cap)
	Total     int // connections in all (0: no cap)
}

// Connection caps. 64 per client leaves room for a household or office
// behind one NAT address (Firefox opens at most 6 connections to a host) and
// for the accounts pages; 4096 in all keeps a flood well inside the file
// descriptors and memory of a small machine.
const (
	DefaultConnsPerClient = 64
	DefaultConns          = 4096
)

// RegisterFlags registers the timeout and connection cap flags.
func (l *ListenConfig) RegisterFlags(c *cli.Command) {
	d := DefaultTimeouts()
	c.Duration(&l.Timeouts.Header, "header-timeout", d.Header, "longest a client may take to send a request's line and headers (and the TLS handshake)").Min(time.Millisecond)
	c.Duration(&l.Timeouts.Body, "body-timeout", d.Body, "longest a client may take to send a request body; for authenticated storage uploads the allowance before --min-transfer-rate applies, and the longest pause").Min(time.Millisecond)
	c.Duration(&l.Timeouts.Write, "write-timeout", d.Write, "longest a client may take to receive a response, from its first byte; for storage downloads the allowance before --min-transfer-rate applies, and the longest pause").Min(time.Millisecond)
	c.Duration(&l.Timeouts.Idle, "idle-timeout", d.Idle, "how long a kept-alive connection may wait for its next request").Min(time.Millisecond)
	c.Int64(&l.Timeouts.MinRate, "min-transfer-rate", d.MinRate, "bytes per second an authenticated storage upload or download must average once its allowance is spent (0: only the pause bound)").Min(0)
	c.Int(&l.PerClient, "max-conns-per-client", DefaultConnsPerClient, "most concurrent connections from one client: an IPv4 address or an IPv6 /64; --trusted-proxies are exempt (0: no cap)").Min(0)
	c.Int(&l.Total, "max-conns", DefaultConns, "most concurrent connections in all (0: no cap)").Min(0)
}

// Listen opens addr with the connection caps. Behind a reverse proxy every
// connection comes from the proxy, so the trusted proxies are exempt from
// the per-client cap (they still count towards the total); cap clients at
// the proxy then.
func (l *ListenConfig) Listen(addr string, trusted []netip.Prefix, log *slog.Logger) (net.Listener, error) {
	return Listen(addr, ConnLimits{PerClient: l.PerClient, Total: l.Total, Exempt: trusted}, log)
}

// Server is the http.Server of every weave listener: per-request deadlines,
// header, idle and header-size bounds (see Timeouts).
func (l *ListenConfig) Server(h http.Handler, log *slog.Logger) *http.Server {
	return NewHTTPServer(h, l.Timeouts, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
}

// Serving is an http.Server serving one listener in the background.
type Serving struct {
	*http.Server
	addr net.Addr
	done chan error
}

// Serve serves ln with hs in the background, over TLS when hs.TLSConfig is
// set (its certificates then come from the config).
func Serve(hs *http.Server, ln net.Listener) *Serving {
	s := &Serving{Server: hs, addr: ln.Addr(), done: make(chan error, 1)}
	go func() {
		if hs.TLSConfig != nil {
			s.done <- hs.ServeTLS(ln, "", "")
		} else {
			s.done <- hs.Serve(ln)
		}
	}()
	return s
}

// Addr is the listener's address.
func (s *Serving) Addr() net.Addr { return s.addr }

// Done receives why the listener stopped serving, when it stops by itself.
func (s *Serving) Done() <-chan error { return s.done }

// ServeInBackground serves ln with hs, for a side listener (metrics,
// redirects) whose end is only logged, as "<what> stopped". stop lets the
// requests in flight finish within 5 s.
func ServeInBackground(hs *http.Server, ln net.Listener, log *slog.Logger, what string) (stop func()) {
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}
}

// Shutdown stops accepting connections, lets the requests in flight finish
// within timeout and waits for the listener to end.
func (s *Serving) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Server.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-s.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
