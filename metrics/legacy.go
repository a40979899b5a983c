package metrics

// Sync 1.1 (the 2011 protocol of Pale Moon and Basilisk) is counted apart:
// its records also count in weave_records_{read,written}_total, and the
// weave_legacy_* families below give the 1.1 share, its Basic-auth
// failures and its sign-ups. Its HTTP requests carry endpoint labels of
// their own ("/1.1/{user}/…", "/user/1.0/{user}…").

import "github.com/prometheus/client_golang/prometheus"

type legacyMetrics struct {
	recordsWritten prometheus.Counter
	recordsRead    prometheus.Counter
	authFailures   *prometheus.CounterVec // reason
	signups        *prometheus.CounterVec // outcome
}

func newLegacyMetrics(f factory) *legacyMetrics {
	l := &legacyMetrics{
		recordsWritten: f.counter("weave_legacy_records_written_total", "Records written through Storage API 1.1 (also in weave_records_written_total)."),
		recordsRead:    f.counter("weave_legacy_records_read_total", "Records read through Storage API 1.1 (also in weave_records_read_total)."),
		authFailures: f.counterVec("weave_legacy_auth_failures_total",
			"Sync 1.1 requests refused by Basic authentication, by reason: missing, password, node (the user lives on another node), moved.", "reason"),
		signups: f.counterVec("weave_legacy_signups_total",
			"Sync 1.1 account creations, by outcome: created, captcha, taken, invalid, closed.", "outcome"),
	}
	for _, r := range []string{"missing", "password", "node", "moved"} {
		l.authFailures.WithLabelValues(r)
	}
	l.signups.WithLabelValues("created")
	return l
}

func pick(s string, allowed ...string) string {
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	return "other"
}

// LegacyObserver is what the 1.1 front end reports into (legacy.Observer).
type LegacyObserver struct{ m *Metrics }

// LegacyObserver returns the observer of the 1.1 front end.
func (m *Metrics) LegacyObserver() LegacyObserver { return LegacyObserver{m} }

// AuthFailed counts a refused Basic login.
func (o LegacyObserver) AuthFailed(reason string) {
	if o.m == nil {
		return
	}
	o.m.legacy.authFailures.WithLabelValues(pick(reason, "missing", "password", "node", "moved")).Inc()
}

// RecordsRead counts 1.1 records returned, in the totals too.
func (o LegacyObserver) RecordsRead(records int, bytes int64) {
	if o.m == nil || records <= 0 {
		return
	}
	o.m.RecordsRead(records, bytes)
	o.m.legacy.recordsRead.Add(float64(records))
}

// RecordsWritten counts 1.1 records written, in the totals too.
func (o LegacyObserver) RecordsWritten(records int, bytes int64) {
	if o.m == nil || records <= 0 {
		return
	}
	o.m.RecordsWritten(records, bytes)
	o.m.legacy.recordsWritten.Add(float64(records))
}

// Signup counts an account creation attempt.
func (o LegacyObserver) Signup(outcome string) {
	if o.m == nil {
		return
	}
	o.m.legacy.signups.WithLabelValues(pick(outcome, "created", "captcha", "taken", "invalid", "closed")).Inc()
}
