package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	weavehttp "github.com/weave-sync/weave/http"

	"github.com/weave-sync/weave/internal/cli"
)

// listenFlags bound slow clients and connections on every listener weave
// serve opens (the public one and --metrics-listen).
type listenFlags struct {
	timeouts  weavehttp.Timeouts
	perClient int
	total     int
}

// Connection caps. 64 per client leaves room for a household or office
// behind one NAT address (Firefox opens at most 6 connections to a host) and
// for the accounts pages; 4096 in all keeps a flood well inside the file
// descriptors and memory of a small machine.
const (
	defaultConnsPerClient = 64
	defaultConns          = 4096
)

func (f *listenFlags) register(c *cli.Command) {
	d := weavehttp.DefaultTimeouts()
	c.Duration(&f.timeouts.Header, "header-timeout", d.Header, "longest a client may take to send a request's line and headers (and the TLS handshake)").Min(time.Millisecond)
	c.Duration(&f.timeouts.Body, "body-timeout", d.Body, "longest a client may take to send a request body; for authenticated storage uploads the allowance before --min-transfer-rate applies, and the longest pause").Min(time.Millisecond)
	c.Duration(&f.timeouts.Write, "write-timeout", d.Write, "longest a client may take to receive a response, from its first byte; for storage downloads the allowance before --min-transfer-rate applies, and the longest pause").Min(time.Millisecond)
	c.Duration(&f.timeouts.Idle, "idle-timeout", d.Idle, "how long a kept-alive connection may wait for its next request").Min(time.Millisecond)
	c.Int64(&f.timeouts.MinRate, "min-transfer-rate", d.MinRate, "bytes per second an authenticated storage upload or download must average once its allowance is spent (0: only the pause bound)").Min(0)
	c.Int(&f.perClient, "max-conns-per-client", defaultConnsPerClient, "most concurrent connections from one client: an IPv4 address or an IPv6 /64; --trusted-proxies are exempt (0: no cap)").Min(0)
	c.Int(&f.total, "max-conns", defaultConns, "most concurrent connections in all (0: no cap)").Min(0)
}

// listen opens addr with the connection caps. Behind a reverse proxy every
// connection comes from the proxy, so the trusted proxies are exempt from
// the per-client cap (they still count towards --max-conns); cap clients at
// the proxy then.
func (f *listenFlags) listen(addr string, trusted []netip.Prefix, log *slog.Logger) (net.Listener, error) {
	return weavehttp.Listen(addr, weavehttp.ConnLimits{PerClient: f.perClient, Total: f.total, Exempt: trusted}, log)
}

// server is the http.Server of every weave listener: per-request deadlines,
// header, idle and header-size bounds (see weavehttp.Timeouts).
func (f *listenFlags) server(h http.Handler, log *slog.Logger) *http.Server {
	return weavehttp.NewHTTPServer(h, f.timeouts, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
}
