package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run. It marshals to JSON as is (`--json`).
type Report struct {
	Target      string `json:"target"`
	Mode        Mode   `json:"mode"`
	Seed        int64  `json:"seed"`
	Mix         string `json:"mix"`
	ClosedLoop  bool   `json:"closed_loop,omitempty"`
	Users       int    `json:"users"`
	Concurrency int    `json:"concurrency"`
	// DurationSec and SessionLimit are the configured bounds (0: unset).
	DurationSec  float64   `json:"duration_seconds,omitempty"`
	SessionLimit int64     `json:"session_limit,omitempty"`
	Started      time.Time `json:"started"`
	// ElapsedSec is the load phase (without Verify's read-back).
	ElapsedSec float64 `json:"elapsed_seconds"`
	StopReason string  `json:"stop_reason"`

	Sessions SessionStats `json:"sessions"`
	// Requests has a row per request kind used, in session order; Total
	// sums them.
	Requests []KindStats `json:"requests"`
	Total    KindStats   `json:"total"`
	// Unexpected lists every outcome the model did not expect, most
	// frequent first.
	Unexpected []Unexpected `json:"unexpected,omitempty"`

	// AuthRetries counts 401s retried once with re-measured clock skew
	// (and, through a token server, a new token); TokenRefreshes counts
	// credentials obtained (minted or fetched).
	AuthRetries    int64        `json:"auth_retries"`
	TokenRefreshes int64        `json:"token_refreshes"`
	Backoff        BackoffStats `json:"backoff"`
	BytesSent      int64        `json:"bytes_sent"`
	BytesReceived  int64        `json:"bytes_received"`

	// ServerCPU is the server's CPU use when Config.ServerPID was given;
	// ServerCPUError says why it is missing (the process went away).
	ServerCPU      *ServerCPU `json:"server_cpu,omitempty"`
	ServerCPUError string     `json:"server_cpu_error,omitempty"`

	Verify *VerifyReport `json:"verify,omitempty"`
}

// SessionStats counts sessions by how they ended.
type SessionStats struct {
	Started   int64 `json:"started"`
	Completed int64 `json:"completed"`
	// Failed sessions ended at their first unexpected response.
	Failed int64 `json:"failed"`
	// BackedOff sessions ended on a Retry-After.
	BackedOff int64 `json:"backed_off"`
	// Cut sessions were still running when the grace period after the stop
	// ran out.
	Cut int64 `json:"cut"`
	// PerSecond is Completed over the elapsed time of the load phase.
	PerSecond float64 `json:"per_second"`
	// Latency of the completed sessions, first request to last.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// BackoffStats counts the server's requests to slow down, all honoured per
// user up to Config.MaxBackoff.
type BackoffStats struct {
	WeaveBackoff int64   `json:"x_weave_backoff"`
	RetryAfter   int64   `json:"retry_after"`
	WaitSec      float64 `json:"wait_seconds"`
}

func (r *runner) report(start time.Time, elapsed time.Duration, reason string) *Report {
	rows, total := r.rec.rows(elapsed)
	rep := &Report{
		Target:       r.target.String(),
		Mode:         r.cfg.Mode,
		Seed:         r.seed,
		Mix:          r.cfg.Mix,
		ClosedLoop:   r.cfg.ClosedLoop,
		Users:        r.cfg.Users,
		Concurrency:  r.cfg.Concurrency,
		DurationSec:  r.cfg.Duration.Seconds(),
		SessionLimit: r.cfg.Sessions,
		Started:      start.UTC().Truncate(time.Millisecond),
		ElapsedSec:   elapsed.Seconds(),
		StopReason:   reason,
		Sessions: SessionStats{
			Started:   r.rec.sessionsStarted.Load(),
			Completed: r.rec.sessionsOK.Load(),
			Failed:    r.rec.sessionsFailed.Load(),
			BackedOff: r.rec.sessionsBackedOff.Load(),
			Cut:       r.rec.sessionsCut.Load(),
		},
		Requests:       rows,
		Total:          total,
		Unexpected:     r.rec.unexpectedList(),
		AuthRetries:    r.rec.authRetries.Load(),
		TokenRefreshes: r.rec.tokenRefreshes.Load(),
		Backoff: BackoffStats{
			WeaveBackoff: r.rec.weaveBackoffs.Load(),
			RetryAfter:   r.rec.retryAfters.Load(),
			WaitSec:      float64(r.rec.backoffWaitMs.Load()) / 1000,
		},
		BytesSent:     r.rec.bytesSent.Load(),
		BytesReceived: r.rec.bytesReceived.Load(),
	}
	if elapsed > 0 {
		rep.Sessions.PerSecond = float64(rep.Sessions.Completed) / elapsed.Seconds()
	}
	r.rec.mu.Lock()
	rep.Sessions.P50Ms = ms(r.rec.sessionLat.quantile(0.50))
	rep.Sessions.P99Ms = ms(r.rec.sessionLat.quantile(0.99))
	r.rec.mu.Unlock()
	return rep
}

// OK reports whether the run saw no request errors and, when verified, no
// lost, duplicated, altered or unexpected records.
func (rep *Report) OK() bool {
	return rep.Total.Errors == 0 && rep.Sessions.Failed == 0 && (rep.Verify == nil || rep.Verify.OK())
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report for people: a header, a row per request
// kind with its latency percentiles, and what went wrong.
func (rep *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	loop := ""
	if rep.ClosedLoop {
		loop = ", closed loop"
	}
	fmt.Fprintf(&b, "weave loadtest: %s (%s mode), mix %s, %d users, concurrency %d%s, seed %d\n",
		rep.Target, rep.Mode, rep.Mix, rep.Users, rep.Concurrency, loop, rep.Seed)
	fmt.Fprintf(&b, "ran %.1fs, stopped by %s; sessions: %d started, %d completed (%.1f/s, p50 %.1f ms, p99 %.1f ms), %d failed, %d backed off, %d cut\n",
		rep.ElapsedSec, rep.StopReason, rep.Sessions.Started, rep.Sessions.Completed, rep.Sessions.PerSecond,
		rep.Sessions.P50Ms, rep.Sessions.P99Ms, rep.Sessions.Failed, rep.Sessions.BackedOff, rep.Sessions.Cut)
	if c := rep.ServerCPU; c != nil {
		fmt.Fprintf(&b, "server pid %d: %.2f CPU seconds, %.3f per 1,000 sessions, %.2f cores busy on average, peak RSS %.1f MiB\n",
			c.PID, c.CPUSeconds, c.PerThousandSessions, c.Cores, c.PeakRSSMiB)
	} else if rep.ServerCPUError != "" {
		fmt.Fprintf(&b, "server CPU: %s\n", rep.ServerCPUError)
	}
	fmt.Fprintf(&b, "sent %s, received %s; 401 retries %d, credentials obtained %d; backoffs: %d X-Weave-Backoff, %d Retry-After (%.1fs waited)\n\n",
		humanBytes(rep.BytesSent), humanBytes(rep.BytesReceived), rep.AuthRetries, rep.TokenRefreshes,
		rep.Backoff.WeaveBackoff, rep.Backoff.RetryAfter, rep.Backoff.WaitSec)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tcount\terrors\treq/s\tmean ms\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors by status\t")
	for _, k := range append(append([]KindStats(nil), rep.Requests...), rep.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n",
			k.Kind, k.Count, k.Errors, k.PerSecond, k.MeanMs, k.P50Ms, k.P95Ms, k.P99Ms, k.MaxMs, formatCounts(k.ErrorsByStatus))
	}
	tw.Flush()

	if len(rep.Unexpected) > 0 {
		fmt.Fprintf(&b, "\nunexpected outcomes:\n")
		for _, u := range rep.Unexpected {
			fmt.Fprintf(&b, "  %-18s %-9s ×%d  %s\n", u.Kind, u.Status, u.Count, oneLine(u.Sample))
		}
	}
	if v := rep.Verify; v != nil {
		verdict := "OK"
		if !v.OK() {
			verdict = "PROBLEMS"
		}
		fmt.Fprintf(&b, "\nverify: %s — %d users (%d skipped), %d records expected, %d found, %d lost, %d duplicated, %d altered, %d unexpected, %d uncertain; %d requests, %d failed, %.1fs",
			verdict, v.Users, v.Skipped, v.Expected, v.Found, v.Lost, v.Duplicated, v.Altered, v.Unexpected, v.Uncertain,
			v.Requests, v.RequestErrors, v.ElapsedSec)
		if v.Incomplete {
			b.WriteString(" (incomplete)")
		}
		b.WriteString("\n")
		for _, s := range v.Samples {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
