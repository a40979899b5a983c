package loadtest

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is a request kind of the session model; the report has a row per kind.
type Kind int

const (
	KindToken Kind = iota
	KindInfoConfiguration
	KindInfoCollections
	KindMetaGet
	KindMetaPut
	KindClientsGet
	KindClientsPost
	KindCollGet
	KindCollPost
	KindBatchOpen
	KindBatchAppend
	KindBatchCommit
	KindDeleteColl
	KindDeleteStorage
	KindVerifyGet
	// The requests of Sync 1.1 users (Config.LegacyShare), counted apart.
	KindLegacyUser   // sign-up (PUT user/1.0/NAME) and node lookup
	KindLegacyInfo   // info/collections
	KindLegacyGet    // meta/global, clients and collection reads
	KindLegacyPost   // uploads and meta/global writes
	KindLegacyDelete // collection and storage deletes
	numKinds
)

func (k Kind) String() string {
	switch k {
	case KindToken:
		return "token"
	case KindInfoConfiguration:
		return "info_configuration"
	case KindInfoCollections:
		return "info_collections"
	case KindMetaGet:
		return "meta_get"
	case KindMetaPut:
		return "meta_put"
	case KindClientsGet:
		return "clients_get"
	case KindClientsPost:
		return "clients_post"
	case KindCollGet:
		return "coll_get"
	case KindCollPost:
		return "coll_post"
	case KindBatchOpen:
		return "batch_open"
	case KindBatchAppend:
		return "batch_append"
	case KindBatchCommit:
		return "batch_commit"
	case KindDeleteColl:
		return "delete_coll"
	case KindDeleteStorage:
		return "delete_storage"
	case KindVerifyGet:
		return "verify_get"
	case KindLegacyUser:
		return "legacy_user"
	case KindLegacyInfo:
		return "legacy_info_collections"
	case KindLegacyGet:
		return "legacy_get"
	case KindLegacyPost:
		return "legacy_post"
	case KindLegacyDelete:
		return "legacy_delete"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// legacyKind is the row a 1.1 user's request is counted in.
func legacyKind(k Kind) Kind {
	switch k {
	case KindInfoCollections:
		return KindLegacyInfo
	case KindMetaGet, KindClientsGet, KindCollGet:
		return KindLegacyGet
	case KindMetaPut, KindClientsPost, KindCollPost, KindBatchOpen, KindBatchAppend, KindBatchCommit:
		return KindLegacyPost
	case KindDeleteColl, KindDeleteStorage:
		return KindLegacyDelete
	}
	return k
}

// Error labels besides HTTP status codes.
const (
	errTransport = "transport" // connection refused/reset, bad response
	errTimeout   = "timeout"   // HTTPTimeout elapsed
	errBody      = "body"      // a 2xx whose body broke the protocol
)

// kindStats accumulates one request kind; workers share it under mu.
type kindStats struct {
	mu       sync.Mutex
	hist     *histogram
	count    int64
	errors   int64
	statuses map[int]int64
	errorsBy map[string]int64
}

type unexpectedKey struct {
	kind  Kind
	label string
}

type unexpectedEntry struct {
	count  int64
	sample string
}

// recorder collects everything the report shows. It is shared by all
// workers, so every method is safe for concurrent use.
type recorder struct {
	kinds [numKinds]*kindStats

	mu         sync.Mutex
	unexpected map[unexpectedKey]*unexpectedEntry
	sessionLat *histogram // durations of the completed sessions, under mu

	sessionsStarted   atomic.Int64
	sessionsOK        atomic.Int64
	sessionsFailed    atomic.Int64
	sessionsBackedOff atomic.Int64
	sessionsCut       atomic.Int64
	authRetries       atomic.Int64
	tokenRefreshes    atomic.Int64
	weaveBackoffs     atomic.Int64
	retryAfters       atomic.Int64
	backoffWaitMs     atomic.Int64
	bytesSent         atomic.Int64
	bytesReceived     atomic.Int64
}

func newRecorder() *recorder {
	r := &recorder{unexpected: map[unexpectedKey]*unexpectedEntry{}, sessionLat: newHistogram()}
	for i := range r.kinds {
		r.kinds[i] = &kindStats{hist: newHistogram(), statuses: map[int]int64{}, errorsBy: map[string]int64{}}
	}
	return r
}

// record notes one finished request. errLabel is empty for an expected
// outcome, else the status code or one of the err* labels; detail is a short
// sample of what went wrong, kept once per (kind, label).
func (r *recorder) record(k Kind, status int, d time.Duration, errLabel, detail string) {
	ks := r.kinds[k]
	ks.mu.Lock()
	ks.count++
	ks.hist.record(d)
	if status > 0 {
		ks.statuses[status]++
	}
	if errLabel != "" {
		ks.errors++
		ks.errorsBy[errLabel]++
	}
	ks.mu.Unlock()
	if errLabel == "" {
		return
	}
	r.mu.Lock()
	key := unexpectedKey{k, errLabel}
	e := r.unexpected[key]
	if e == nil {
		e = &unexpectedEntry{sample: truncate(detail, 200)}
		r.unexpected[key] = e
	}
	e.count++
	r.mu.Unlock()
}

// sessionDone notes the duration of a completed session.
func (r *recorder) sessionDone(d time.Duration) {
	r.mu.Lock()
	r.sessionLat.record(d)
	r.mu.Unlock()
}

// snapshot is a consistent-enough view for the progress line.
type snapshot struct {
	requests int64
	errors   int64
	sessions int64
	p99      time.Duration
	// hist is every latency so far; the progress line subtracts the
	// previous snapshot's to get the window's own percentiles.
	hist *histogram
}

func (r *recorder) snapshot() snapshot {
	total := newHistogram()
	var s snapshot
	for _, ks := range r.kinds {
		ks.mu.Lock()
		s.requests += ks.count
		s.errors += ks.errors
		total.merge(ks.hist)
		ks.mu.Unlock()
	}
	s.sessions = r.sessionsStarted.Load()
	s.p99 = total.quantile(0.99)
	s.hist = total
	return s
}

// KindStats is one row of the report.
type KindStats struct {
	Kind   string `json:"kind"`
	Count  int64  `json:"count"`
	Errors int64  `json:"errors"`
	// ErrorsByStatus counts failures by HTTP status ("503") or by
	// "transport", "timeout" or "body".
	ErrorsByStatus map[string]int64 `json:"errors_by_status,omitempty"`
	// Statuses counts every HTTP status received, expected or not.
	Statuses map[string]int64 `json:"statuses,omitempty"`
	MeanMs   float64          `json:"mean_ms"`
	P50Ms    float64          `json:"p50_ms"`
	P95Ms    float64          `json:"p95_ms"`
	P99Ms    float64          `json:"p99_ms"`
	MaxMs    float64          `json:"max_ms"`
	// PerSecond is Count over the run's elapsed time.
	PerSecond float64 `json:"per_second"`
}

// Unexpected is an outcome the session model did not expect, with how
// often it happened and one sample.
type Unexpected struct {
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Count  int64  `json:"count"`
	Sample string `json:"sample,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (ks *kindStats) row(name string, elapsed time.Duration) KindStats {
	row := KindStats{
		Kind:   name,
		Count:  ks.count,
		Errors: ks.errors,
		MeanMs: ms(ks.hist.mean()),
		P50Ms:  ms(ks.hist.quantile(0.50)),
		P95Ms:  ms(ks.hist.quantile(0.95)),
		P99Ms:  ms(ks.hist.quantile(0.99)),
		MaxMs:  ms(ks.hist.maximum()),
	}
	if elapsed > 0 {
		row.PerSecond = float64(ks.count) / elapsed.Seconds()
	}
	if len(ks.errorsBy) > 0 {
		row.ErrorsByStatus = map[string]int64{}
		for k, v := range ks.errorsBy {
			row.ErrorsByStatus[k] = v
		}
	}
	if len(ks.statuses) > 0 {
		row.Statuses = map[string]int64{}
		for k, v := range ks.statuses {
			row.Statuses[strconv.Itoa(k)] = v
		}
	}
	return row
}

// rows returns the per-kind rows (kinds never used are left out) and the
// total over all kinds.
func (r *recorder) rows(elapsed time.Duration) ([]KindStats, KindStats) {
	total := &kindStats{hist: newHistogram(), statuses: map[int]int64{}, errorsBy: map[string]int64{}}
	out := []KindStats{}
	for k, ks := range r.kinds {
		if Kind(k) == KindVerifyGet {
			continue // the read-back is reported in VerifyReport
		}
		ks.mu.Lock()
		if ks.count > 0 {
			out = append(out, ks.row(Kind(k).String(), elapsed))
			total.count += ks.count
			total.errors += ks.errors
			total.hist.merge(ks.hist)
			for s, n := range ks.statuses {
				total.statuses[s] += n
			}
			for l, n := range ks.errorsBy {
				total.errorsBy[l] += n
			}
		}
		ks.mu.Unlock()
	}
	return out, total.row("total", elapsed)
}

func (r *recorder) unexpectedList() []Unexpected {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Unexpected, 0, len(r.unexpected))
	for k, e := range r.unexpected {
		out = append(out, Unexpected{Kind: k.kind.String(), Status: k.label, Count: e.count, Sample: e.sample})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Status < out[j].Status
	})
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
