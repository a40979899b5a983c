package push

// Operator view of the push store (`weave push stats`): what is in the
// database, as opposed to the per-process weave_push_* metrics.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// StatsReader is implemented by stores that can summarise themselves
// (sqlstore.PushStore). It is apart from Store so that a Store needs no
// operator queries.
type StatsReader interface {
	// Stats summarises the store at now (ms since the epoch), counting
	// waiting messages into the AgeBuckets by their age.
	Stats(ctx context.Context, now int64) (Stats, error)
}

// AgeBuckets are the upper bounds of the age classes of waiting messages
// in Stats.Waiting; the last class holds everything older.
var AgeBuckets = []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// Stats is the state of the push store.
type Stats struct {
	At       int64 `json:"at"` // ms since the epoch
	UAIDs    int64 `json:"uaids"`
	Channels int64 `json:"channels"`
	// Waiting counts unexpired messages by age: Waiting[i] are younger
	// than AgeBuckets[i] (and not younger than AgeBuckets[i-1]); the last
	// entry, len(AgeBuckets), the rest.
	Waiting []int64 `json:"waiting_by_age"`
	// Expired counts messages past their TTL not yet purged (a serving
	// process purges them every minute).
	Expired int64 `json:"expired"`
	// Oldest is the creation time of the oldest waiting message, 0 if none.
	Oldest int64 `json:"oldest_waiting,omitempty"`
	// Nodes are the processes the database records as holding
	// connections, with how many, most first. A process that died keeps
	// its count until its browsers reconnect elsewhere.
	Nodes []NodeConns `json:"nodes"`
	// Wakeups are queued wake-ups not yet read by their process.
	Wakeups int64 `json:"wakeups"`
}

// NodeConns is one process's recorded connections.
type NodeConns struct {
	Node        string `json:"node"`
	Connections int64  `json:"connections"`
	// LastConnect is when the latest of them connected (ms).
	LastConnect int64 `json:"last_connect"`
}

// WaitingTotal sums Waiting.
func (s Stats) WaitingTotal() int64 {
	var n int64
	for _, c := range s.Waiting {
		n += c
	}
	return n
}

// WriteJSON prints s as indented JSON.
func (s Stats) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(s)
}

// WriteText prints s for people.
func (s Stats) WriteText(w io.Writer) error {
	at := time.UnixMilli(s.At).UTC()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "UAIDs\t%d\n", s.UAIDs)
	fmt.Fprintf(tw, "channels\t%d\n", s.Channels)
	fmt.Fprintf(tw, "messages waiting\t%d\n", s.WaitingTotal())
	prev := "0"
	for i, n := range s.Waiting {
		label := "older than " + prev
		if i < len(AgeBuckets) {
			label = fmt.Sprintf("%s to %s old", prev, shortDuration(AgeBuckets[i]))
			prev = shortDuration(AgeBuckets[i])
		}
		fmt.Fprintf(tw, "  %s\t%d\n", label, n)
	}
	if s.Oldest > 0 {
		fmt.Fprintf(tw, "  oldest\t%s (%s ago)\n", time.UnixMilli(s.Oldest).UTC().Format(time.RFC3339), shortDuration(at.Sub(time.UnixMilli(s.Oldest))))
	}
	fmt.Fprintf(tw, "messages expired, not yet purged\t%d\n", s.Expired)
	fmt.Fprintf(tw, "wake-ups queued\t%d\n", s.Wakeups)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Nodes) == 0 {
		_, err := fmt.Fprintln(w, "no connections recorded")
		return err
	}
	fmt.Fprintln(w, "connections recorded per process (a process that died keeps its count until its browsers reconnect):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tCONNECTIONS\tLAST CONNECT")
	for _, n := range s.Nodes {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", n.Node, n.Connections, time.UnixMilli(n.LastConnect).UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// shortDuration prints whole days, hours, minutes or seconds.
func shortDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0 || d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}
