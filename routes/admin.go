package routes

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/weave-sync/weave/dashboard"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/metrics"

	"github.com/weave-sync/weave/internal/cli"
)

// AdminFlags configure the admin surface: /metrics, the operator dashboard
// and the Go profiler, on the public listener or a listener of their own.
type AdminFlags struct {
	Token  string
	Listen string // --metrics-listen ("": none)
}

// RegisterFlags registers --admin-token and --metrics-listen.
func (f *AdminFlags) RegisterFlags(c *cli.Command) {
	c.Secret(&f.Token, "admin-token", "", "token guarding /metrics, the operator dashboard /__dashboard__ and the Go profiler /debug/pprof/ (prefer --admin-token-file; without it the dashboard and the profiler answer 404, and /metrics too on the public listener)")
	c.String(&f.Listen, "metrics-listen", "", "separate address serving /metrics, /__dashboard__ and /debug/pprof/ (e.g. 127.0.0.1:9100); /metrics is open there unless --admin-token is set, and the profiler is then only there")
}

// Check refuses a token too short to guard anything.
func (f *AdminFlags) Check() error {
	if f.Token != "" && len(f.Token) < 16 {
		return fmt.Errorf("--admin-token must be at least 16 characters")
	}
	return nil
}

// Admin is the admin surface of the public listener (adminListener false)
// or of --metrics-listen; nil when it would serve nothing. Without a token
// the dashboard answers 404 everywhere, and the profiler is on the admin
// listener: the public one when there is no --metrics-listen.
func (f *AdminFlags) Admin(ctx context.Context, m *metrics.Metrics, adminListener bool) *Admin {
	if f.Token == "" && f.Listen == "" {
		return nil // nothing to serve: both would be 404
	}
	return &Admin{
		Metrics:   m,
		Dashboard: dashboard.Handler(dashboard.Options{Token: f.Token, Metrics: m, Context: ctx}),
		Token:     f.Token,
		Profiler:  adminListener || f.Listen == "",
	}
}

// ServeListener serves the admin surface on --metrics-listen, if given,
// until ctx ends; stop shuts the listener down.
func (f *AdminFlags) ServeListener(ctx context.Context, m *metrics.Metrics, lc *weavehttp.ListenConfig, log *slog.Logger) (stop func(), err error) {
	if f.Listen == "" {
		return func() {}, nil
	}
	ln, err := lc.Listen(f.Listen, nil, log)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", f.Listen, err)
	}
	hs := lc.Server(AdminHandler(*f.Admin(ctx, m, true)), log)
	return weavehttp.ServeInBackground(hs, ln, log, "metrics listener"), nil
}
