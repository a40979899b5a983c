package weave

// The push service's domain (package push): what its WebSocket and Web Push
// handlers and its SQL store share. The protocol, the handlers and the
// routing stay in package push; the SQL adapter needs only this.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// PushStore keeps the push service's state in the database, so that every weave
// process on it serves the same subscriptions: user agents (UAIDs) and their
// channels, the messages waiting for a user agent that is not connected (or
// has not acknowledged them yet), and the wake-ups by which one process
// tells another that a message for a user agent connected there was stored.
//
// Times are milliseconds since the epoch. Every method is one transaction.
// Implementations: sqlstore.PushStore (SQLite, MySQL/MariaDB, PostgreSQL);
// every one passes push/pushtest. Package push calls it Store.
type PushStore interface {
	// User returns uaid's record, or an error wrapping ErrPushUnknownUser.
	User(ctx context.Context, uaid string) (PushUser, error)
	// Connect records that node now holds uaid's connection. It returns an
	// error wrapping ErrPushUnknownUser when uaid has no record (a UAID is
	// only recorded with its first channel, as autopush does).
	Connect(ctx context.Context, uaid, node string, now int64) error
	// Disconnect forgets that node holds uaid's connection, unless another
	// node has taken it over since.
	Disconnect(ctx context.Context, uaid, node string) error
	// AddChannel registers channel chid for uaid, creating uaid's record
	// (connected at node) if needed. Registering a channel again is not an
	// error. A new channel beyond max per UAID fails with
	// ErrPushTooManyChannels (max <= 0: no limit).
	AddChannel(ctx context.Context, uaid, chid, node string, now int64, max int) error
	// RemoveChannel drops a channel and the messages stored for it; an
	// unknown channel is not an error.
	RemoveChannel(ctx context.Context, uaid, chid string) error
	// Route returns uaid's record if chid is one of its channels: errors
	// wrap ErrPushUnknownUser or ErrPushUnknownChannel otherwise.
	Route(ctx context.Context, uaid, chid string) (PushUser, error)
	// DeleteUser drops uaid with its channels and messages.
	DeleteUser(ctx context.Context, uaid string) error

	// Save stores m. A message with a Topic replaces the stored message of
	// the same channel with the same topic (RFC 8030 §5.4). When wake is
	// not empty, a wake-up for m.UAID is queued for node wake in the same
	// transaction, so the node that reads it also finds the message.
	Save(ctx context.Context, m PushMessage, wake string) error
	// Stored counts uaid's stored messages, expired or not.
	Stored(ctx context.Context, uaid string) (int, error)
	// Pending returns up to limit unexpired messages of uaid: topic
	// messages first, then oldest first.
	Pending(ctx context.Context, uaid string, now int64, limit int) ([]PushMessage, error)
	// Delete removes uaid's message id (acknowledged), reporting whether it
	// was there.
	Delete(ctx context.Context, uaid, id string) (bool, error)
	// Cancel removes message id whoever it is for (the sender's DELETE of
	// the message's Location), reporting whether it was there.
	Cancel(ctx context.Context, id string) (bool, error)
	// Wakeups takes (returns and removes) up to limit wake-ups queued for
	// node, as UAIDs, possibly repeated.
	Wakeups(ctx context.Context, node string, limit int) ([]string, error)
	// PurgeExpired removes up to limit messages expired at now, and
	// wake-ups older than staleBefore (queued for a node that died),
	// returning the number of messages removed.
	PurgeExpired(ctx context.Context, now, staleBefore int64, limit int) (int64, error)

	// Broadcasts returns the Megaphone broadcasts the operator published,
	// id → version.
	Broadcasts(ctx context.Context) (map[string]string, error)
	// SetBroadcast publishes version as broadcast id's current one; an
	// empty version withdraws id.
	SetBroadcast(ctx context.Context, id, version string, now int64) error
}

// Errors of a PushStore.
var (
	ErrPushUnknownUser     = errors.New("push: unknown UAID")
	ErrPushUnknownChannel  = errors.New("push: channel not registered for the UAID")
	ErrPushTooManyChannels = errors.New("push: too many channels for one UAID")
)

// PushUser is a user agent's record.
type PushUser struct {
	UAID string
	// Node is the push service instance holding the user agent's
	// connection, "" when it is not connected (or the record predates the
	// connection).
	Node      string
	Connected int64 // when Node was last set
	Created   int64
}

// PushMessage is one push message waiting for its user agent.
type PushMessage struct {
	ID        string // the notification's "version": unique, unguessable
	UAID      string
	ChannelID string
	Topic     string // "" for none
	// Data is base64url (no padding) of the encrypted body, "" for a push
	// without payload; Headers are the crypto headers given to the browser
	// with it (at least "encoding" when Data is set).
	Data    string
	Headers map[string]string
	Created int64
	Expires int64 // Created + TTL
}

// PushStatsReader is implemented by stores that can summarise themselves
// (sqlstore.PushStore). It is apart from PushStore so that a store needs no
// operator queries.
type PushStatsReader interface {
	// Stats summarises the store at now (ms since the epoch), counting
	// waiting messages into the PushAgeBuckets by their age.
	Stats(ctx context.Context, now int64) (PushStats, error)
}

// PushAgeBuckets are the upper bounds of the age classes of waiting messages
// in Stats.Waiting; the last class holds everything older.
var PushAgeBuckets = []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// PushStats is the state of the push store (`weave push stats`).
type PushStats struct {
	At       int64 `json:"at"` // ms since the epoch
	UAIDs    int64 `json:"uaids"`
	Channels int64 `json:"channels"`
	// Waiting counts unexpired messages by age: Waiting[i] are younger
	// than PushAgeBuckets[i] (and not younger than PushAgeBuckets[i-1]); the last
	// entry, len(PushAgeBuckets), the rest.
	Waiting []int64 `json:"waiting_by_age"`
	// Expired counts messages past their TTL not yet purged (a serving
	// process purges them every minute).
	Expired int64 `json:"expired"`
	// Oldest is the creation time of the oldest waiting message, 0 if none.
	Oldest int64 `json:"oldest_waiting,omitempty"`
	// Nodes are the processes the database records as holding
	// connections, with how many, most first. A process that died keeps
	// its count until its browsers reconnect elsewhere.
	Nodes []PushNodeConns `json:"nodes"`
	// Wakeups are queued wake-ups not yet read by their process.
	Wakeups int64 `json:"wakeups"`
}

// PushNodeConns is one process's recorded connections.
type PushNodeConns struct {
	Node        string `json:"node"`
	Connections int64  `json:"connections"`
	// LastConnect is when the latest of them connected (ms).
	LastConnect int64 `json:"last_connect"`
}

// WaitingTotal sums Waiting.
func (s PushStats) WaitingTotal() int64 {
	var n int64
	for _, c := range s.Waiting {
		n += c
	}
	return n
}

// WriteJSON prints s as indented JSON.
func (s PushStats) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(s)
}

// WriteText prints s for people.
func (s PushStats) WriteText(w io.Writer) error {
	at := time.UnixMilli(s.At).UTC()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "UAIDs\t%d\n", s.UAIDs)
	fmt.Fprintf(tw, "channels\t%d\n", s.Channels)
	fmt.Fprintf(tw, "messages waiting\t%d\n", s.WaitingTotal())
	prev := "0"
	for i, n := range s.Waiting {
		label := "older than " + prev
		if i < len(PushAgeBuckets) {
			label = fmt.Sprintf("%s to %s old", prev, shortDuration(PushAgeBuckets[i]))
			prev = shortDuration(PushAgeBuckets[i])
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
