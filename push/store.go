package push

import (
	"context"
	"errors"
)

// Store keeps the push service's state in the database, so that every weave
// process on it serves the same subscriptions: user agents (UAIDs) and their
// channels, the messages waiting for a user agent that is not connected (or
// has not acknowledged them yet), and the wake-ups by which one process
// tells another that a message for a user agent connected there was stored.
//
// Times are milliseconds since the epoch. Every method is one transaction.
// Implementations: sqlstore.PushStore (SQLite, MySQL/MariaDB, PostgreSQL);
// every one passes push/pushtest.
type Store interface {
	// User returns uaid's record, or an error wrapping ErrUnknownUser.
	User(ctx context.Context, uaid string) (User, error)
	// Connect records that node now holds uaid's connection. It returns an
	// error wrapping ErrUnknownUser when uaid has no record (a UAID is
	// only recorded with its first channel, as autopush does).
	Connect(ctx context.Context, uaid, node string, now int64) error
	// Disconnect forgets that node holds uaid's connection, unless another
	// node has taken it over since.
	Disconnect(ctx context.Context, uaid, node string) error
	// AddChannel registers channel chid for uaid, creating uaid's record
	// (connected at node) if needed. Registering a channel again is not an
	// error. A new channel beyond max per UAID fails with
	// ErrTooManyChannels (max <= 0: no limit).
	AddChannel(ctx context.Context, uaid, chid, node string, now int64, max int) error
	// RemoveChannel drops a channel and the messages stored for it; an
	// unknown channel is not an error.
	RemoveChannel(ctx context.Context, uaid, chid string) error
	// Route returns uaid's record if chid is one of its channels: errors
	// wrap ErrUnknownUser or ErrUnknownChannel otherwise.
	Route(ctx context.Context, uaid, chid string) (User, error)
	// DeleteUser drops uaid with its channels and messages.
	DeleteUser(ctx context.Context, uaid string) error

	// Save stores m. A message with a Topic replaces the stored message of
	// the same channel with the same topic (RFC 8030 §5.4). When wake is
	// not empty, a wake-up for m.UAID is queued for node wake in the same
	// transaction, so the node that reads it also finds the message.
	Save(ctx context.Context, m Message, wake string) error
	// Stored counts uaid's stored messages, expired or not.
	Stored(ctx context.Context, uaid string) (int, error)
	// Pending returns up to limit unexpired messages of uaid: topic
	// messages first, then oldest first.
	Pending(ctx context.Context, uaid string, now int64, limit int) ([]Message, error)
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
}

// Store errors.
var (
	ErrUnknownUser     = errors.New("push: unknown UAID")
	ErrUnknownChannel  = errors.New("push: channel not registered for the UAID")
	ErrTooManyChannels = errors.New("push: too many channels for one UAID")
)

// User is a user agent's record.
type User struct {
	UAID string
	// Node is the push service instance holding the user agent's
	// connection, "" when it is not connected (or the record predates the
	// connection).
	Node      string
	Connected int64 // when Node was last set
	Created   int64
}

// Message is one push message waiting for its user agent.
type Message struct {
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
