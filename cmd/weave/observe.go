package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/dashboard"
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/routes"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"

	"github.com/weave-sync/weave/internal/cli"
)

// observeFlags configure metrics and the operator dashboard.
type observeFlags struct {
	adminToken    string
	metricsListen string
}

func (f *observeFlags) register(c *cli.Command) {
	c.Secret(&f.adminToken, "admin-token", "", "token guarding /metrics, the operator dashboard /__dashboard__ and the Go profiler /debug/pprof/ (prefer --admin-token-file; without it the dashboard and the profiler answer 404, and /metrics too on the public listener)")
	c.String(&f.metricsListen, "metrics-listen", "", "separate address serving /metrics, /__dashboard__ and /debug/pprof/ (e.g. 127.0.0.1:9100); /metrics is open there unless --admin-token is set, and the profiler is then only there")
}

// observability is the metrics registry and what serve wires to it.
type observability struct {
	m   *metrics.Metrics
	f   *observeFlags
	log *slog.Logger
}

func newObservability(f *observeFlags, log *slog.Logger) (*observability, error) {
	if f.adminToken != "" && len(f.adminToken) < 16 {
		return nil, fmt.Errorf("--admin-token must be at least 16 characters")
	}
	return &observability{m: metrics.New(metrics.Options{}), f: f, log: log}, nil
}

// watch registers the collectors of the databases and the node table.
func (o *observability) watch(dbs *databases, nodes func(context.Context) ([]weave.Node, error)) error {
	add := func(name string, db *sqlstore.DB, url string) error {
		d := metrics.Database{Name: name, Kind: db.Dialect.Name(), Read: db.Read, Write: db.Write}
		if d.Kind == "sqlite" {
			d.Path, _ = sqlite.PathFromURL(url)
		}
		return o.m.WatchDB(d)
	}
	if err := add("storage", dbs.storage, dbs.storageURL); err != nil {
		return err
	}
	if dbs.tokens != dbs.storage {
		if err := add("tokens", dbs.tokens, dbs.tokenURL); err != nil {
			return err
		}
	}
	return o.m.WatchNodes(nodes)
}

// admin is the admin surface of the public listener (adminListener
// false) or of --metrics-listen; nil when it would serve nothing. Without
// a token the dashboard answers 404 everywhere, and the profiler is on
// the admin listener: this one when there is no --metrics-listen.
func (o *observability) admin(ctx context.Context, adminListener bool) *routes.Admin {
	token := o.f.adminToken
	if token == "" && o.f.metricsListen == "" {
		return nil // nothing to serve: both would be 404
	}
	return &routes.Admin{
		Metrics:   o.m,
		Dashboard: dashboard.Handler(dashboard.Options{Token: token, Metrics: o.m, Context: ctx}),
		Token:     token,
		Profiler:  adminListener || o.f.metricsListen == "",
	}
}

// serveMetrics runs the separate metrics listener until ctx ends.
func (o *observability) serveMetrics(ctx context.Context, lf *listenFlags) (func(), error) {
	if o.f.metricsListen == "" {
		return func() {}, nil
	}
	ln, err := lf.listen(o.f.metricsListen, nil, o.log)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", o.f.metricsListen, err)
	}
	hs := lf.server(routes.AdminHandler(*o.admin(ctx, true)), o.log)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("metrics listener stopped", "err", err)
		}
	}()
	return func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(c)
	}, nil
}
