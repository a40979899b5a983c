// Package push is weave's push service: the autopush WebSocket protocol
// Firefox speaks to its push server (Service.Handler), the Web Push
// endpoints application servers post to (Service.Routes: RFC 8030, VAPID
// RFC 8292, aes128gcm bodies passed through untouched), and the messages
// of that protocol, with the error body the endpoint answers with.
//
// Firefox (dom/push/PushServiceWebSocket) is the only client that matters and
// autopush-rs is the server it is tested against, so the JSON here matches what
// autopush sends byte for byte where Firefox could notice, and accepts what
// Firefox sends. Where autopush is stricter than Firefox needs (it closes the
// socket on a channelID that is not a lower-case dashed UUID) the service is
// lenient: such a register gets status 400 and the session goes on.
//
// State lives in the database (Store; sqlstore.PushStore on SQLite, MySQL
// and PostgreSQL): UAIDs and channels, and every message with a TTL, stored
// before the sender gets 201 and deleted when the browser acks it or it
// expires. Delivery to a browser connected to another weave process goes
// through the same database, not a side channel: the UAID's record names
// the process (node) holding its connection; the process taking the POST
// delivers directly when it holds the connection, and otherwise queues a
// wake-up for the holder in the transaction that stores the message. Each
// process polls its own queue (one indexed read per PollInterval, 100 ms by
// default, skipped while it holds no connection). That works the same on
// every backend, needs no port, address or trust between processes
// (autopush's internal HTTP routing needs all three), and loses nothing
// when a process dies: the message is stored and the browser, reconnecting
// elsewhere, reads it. PostgreSQL's LISTEN/NOTIFY would shave the poll
// delay, but needs a dedicated connection per process and the poll as a
// fallback anyway, so it is not used. A TTL-0 message ("now or never") for
// a browser connected to another process is stored with a few seconds'
// expiry (RouteGrace) to travel the same way.
//
// Encryption (push/ece) and VAPID (push/vapid) live in their own packages.
package push

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Message types, the "messageType" member of every frame but a ping.
const (
	TypeHello              = "hello"
	TypeRegister           = "register"
	TypeUnregister         = "unregister"
	TypeBroadcastSubscribe = "broadcast_subscribe"
	TypeAck                = "ack"
	TypeNack               = "nack"
	TypePing               = "ping"
	TypeNotification       = "notification"
	TypeBroadcast          = "broadcast"
)

// Codes clients put in ack, unregister and nack (Firefox's values).
const (
	AckDelivered        = 100 // delivered to the subscriber
	AckDecryptionFailed = 101 // delivered, but the payload did not decrypt
	AckNotDelivered     = 102 // duplicate version, unknown channel, or other failure

	UnregisterManual     = 200 // the page or FxA unsubscribed
	UnregisterQuota      = 201 // quota exceeded (web pages only)
	UnregisterPermission = 202 // permission revoked

	NackException = 301 // service worker threw
	NackRejected  = 302 // service worker's promise rejected
	NackInternal  = 303 // internal error
)

// CloseNoReconnect is the WebSocket close code after which Firefox does not
// reconnect on its own (only on a network change or a new subscription); for
// deliberate back-off only.
const CloseNoReconnect = 4774

// StatusOK and the other statuses carried in hello/register/unregister
// replies; Firefox treats anything but 200 as failure.
const (
	StatusOK         = 200
	StatusBadRequest = 400 // register: no endpoint could be made
	StatusError      = 500 // storage failure
)

// ClientMessage is one frame from the browser: *Hello, *Register,
// *Unregister, *BroadcastSubscribe, *Ack, *Nack or *Ping.
type ClientMessage interface{ Type() string }

// Hello opens a session. Firefox sends UAID only when it has subscriptions
// and a stored UAID; it always sends UseWebPush and Broadcasts (maybe {}).
type Hello struct {
	UAID       string            `json:"uaid,omitempty"`
	ChannelIDs []string          `json:"channelIDs,omitempty"` // accepted by autopush, never sent by Firefox
	UseWebPush bool              `json:"use_webpush,omitempty"`
	Broadcasts map[string]string `json:"broadcasts,omitempty"`
}

// Register asks for a push endpoint for a new channel. Key is the
// application server's VAPID key for restricted subscriptions (base64url,
// Firefox pads it); FxA's subscription has none.
type Register struct {
	ChannelID string `json:"channelID"`
	Key       string `json:"key,omitempty"`
}

// Unregister drops a channel; Code says why (UnregisterManual…).
type Unregister struct {
	ChannelID string `json:"channelID"`
	Code      int    `json:"code,omitempty"`
}

// BroadcastSubscribe adds Megaphone broadcast subscriptions (id → version).
type BroadcastSubscribe struct {
	Broadcasts map[string]string `json:"broadcasts"`
}

// Ack acknowledges notifications; Firefox sends one update per message.
type Ack struct {
	Updates []AckUpdate `json:"updates"`
}

// AckUpdate acknowledges one notification. Code is AckDelivered when the
// client left it out, as autopush assumes.
type AckUpdate struct {
	ChannelID string `json:"channelID"`
	Version   string `json:"version"`
	Code      int    `json:"code,omitempty"`
}

// Nack reports a notification a web page's service worker failed to handle;
// informational only.
type Nack struct {
	Version string `json:"version"`
	Code    int    `json:"code,omitempty"`
}

// Ping is the client's keepalive: "{}" or {"messageType":"ping"}.
type Ping struct{}

func (*Hello) Type() string              { return TypeHello }
func (*Register) Type() string           { return TypeRegister }
func (*Unregister) Type() string         { return TypeUnregister }
func (*BroadcastSubscribe) Type() string { return TypeBroadcastSubscribe }
func (*Ack) Type() string                { return TypeAck }
func (*Nack) Type() string               { return TypeNack }
func (*Ping) Type() string               { return TypePing }

// ErrBadMessage is wrapped by every ParseClientMessage error. autopush ends
// the session on such a frame; so may the server.
var ErrBadMessage = errors.New("push: malformed client message")

// ParseClientMessage decodes one text frame from the browser. An empty
// object is a ping, as in Firefox and autopush. Unknown members are ignored;
// an unknown or missing messageType, wrong member types, or anything that is
// not one JSON object is an error wrapping ErrBadMessage. The caller bounds
// the frame size.
func ParseClientMessage(frame []byte) (ClientMessage, error) {
	var head struct {
		MessageType *string `json:"messageType"`
	}
	trimmed := bytes.TrimSpace(frame)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadMessage)
	}
	if err := json.Unmarshal(trimmed, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if head.MessageType == nil {
		if isEmptyObject(trimmed) {
			return &Ping{}, nil
		}
		return nil, fmt.Errorf("%w: no messageType", ErrBadMessage)
	}
	var m ClientMessage
	switch *head.MessageType {
	case TypeHello:
		m = &Hello{}
	case TypeRegister:
		m = &Register{}
	case TypeUnregister:
		m = &Unregister{}
	case TypeBroadcastSubscribe:
		m = &BroadcastSubscribe{}
	case TypeAck:
		m = &Ack{}
	case TypeNack:
		m = &Nack{}
	case TypePing:
		return &Ping{}, nil
	default:
		return nil, fmt.Errorf("%w: unknown messageType %q", ErrBadMessage, *head.MessageType)
	}
	if err := json.Unmarshal(trimmed, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadMessage, *head.MessageType, err)
	}
	if err := checkRequired(m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadMessage, *head.MessageType, err)
	}
	return m, nil
}

func isEmptyObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && len(m) == 0
}

// checkRequired enforces the members autopush requires, and fills the
// defaults it assumes.
func checkRequired(m ClientMessage) error {
	switch m := m.(type) {
	case *Register:
		if m.ChannelID == "" {
			return errors.New("no channelID")
		}
	case *Unregister:
		if m.ChannelID == "" {
			return errors.New("no channelID")
		}
	case *BroadcastSubscribe:
		if m.Broadcasts == nil {
			return errors.New("no broadcasts")
		}
	case *Ack:
		if m.Updates == nil {
			return errors.New("no updates")
		}
		for i := range m.Updates {
			u := &m.Updates[i]
			if u.ChannelID == "" || u.Version == "" {
				return fmt.Errorf("update %d lacks channelID or version", i)
			}
			if u.Code == 0 {
				u.Code = AckDelivered
			}
		}
	case *Nack:
		if m.Version == "" {
			return errors.New("no version")
		}
	}
	return nil
}

// IsCanonicalChannelID reports whether s is a UUID written the way Firefox
// writes channel IDs: 36 characters, lower-case hex, dashes at 8-4-4-4-12.
// autopush refuses anything else; a lenient server may accept other forms
// but must then echo exactly what the client sent.
func IsCanonicalChannelID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}
	return true
}

// IsUAID reports whether s has the form NewUAID produces. A hello carrying
// anything else is treated as carrying none (a new UAID is minted), as
// autopush does with UAIDs it cannot parse.
func IsUAID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// NewUAID mints a user agent ID: 16 random bytes as 32 lower-case hex digits,
// autopush's format. Firefox accepts any string of at most 128 characters.
func NewUAID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥1.24)
	return hex.EncodeToString(b[:])
}

// HelloReply answers a hello; it must be the server's first frame. Status is
// always 200 on the wire and use_webpush always true: without it Firefox
// falls back to the legacy protocol that carries no payloads.
type HelloReply struct {
	UAID       string
	Broadcasts map[string]string // id → version; nil is sent as {}
	Errors     map[string]string // unknown broadcast ids, nested under "errors" as in Broadcast
}

// RegisterReply answers a register. Firefox only accepts Status 200 with a
// PushEndpoint that parses as a URL; ChannelID must echo the request.
type RegisterReply struct {
	ChannelID    string
	Status       int
	PushEndpoint string
}

// UnregisterReply answers an unregister.
type UnregisterReply struct {
	ChannelID string
	Status    int
}

// Notification delivers one push message. Data is base64url (no padding) of
// the raw encrypted body; Headers carries at least "encoding" whenever Data
// is set, or Firefox drops the payload while still acking 100. Version must
// be unique per message: Firefox acks repeats as duplicates (102). The TTL is
// the service's business and, as in autopush, not sent.
type Notification struct {
	ChannelID string
	Version   string
	Data      string
	Headers   map[string]string
}

// Broadcast tells the client of changed Megaphone broadcasts (id → version).
// Errors lists requested ids the server does not know (id → reason), sent
// nested under "errors" as autopush does.
type Broadcast struct {
	Broadcasts map[string]string
	Errors     map[string]string
}

// Pong is the reply to a client ping; autopush answers with the short form.
type Pong struct{}

// MarshalJSON writes messageType first, then the members in autopush's order.
func (r HelloReply) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MessageType string         `json:"messageType"`
		UAID        string         `json:"uaid"`
		Status      int            `json:"status"`
		UseWebPush  bool           `json:"use_webpush"`
		Broadcasts  map[string]any `json:"broadcasts"`
	}{TypeHello, r.UAID, StatusOK, true, withErrors(r.Broadcasts, r.Errors)})
}

// MarshalJSON writes messageType first, then the members in autopush's order.
func (r RegisterReply) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MessageType  string `json:"messageType"`
		ChannelID    string `json:"channelID"`
		Status       int    `json:"status"`
		PushEndpoint string `json:"pushEndpoint"`
	}{TypeRegister, r.ChannelID, r.Status, r.PushEndpoint})
}

// MarshalJSON writes messageType first, then the members in autopush's order.
func (r UnregisterReply) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MessageType string `json:"messageType"`
		ChannelID   string `json:"channelID"`
		Status      int    `json:"status"`
	}{TypeUnregister, r.ChannelID, r.Status})
}

// MarshalJSON writes messageType first; data and headers only when set.
func (n Notification) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MessageType string            `json:"messageType"`
		ChannelID   string            `json:"channelID"`
		Version     string            `json:"version"`
		Data        string            `json:"data,omitempty"`
		Headers     map[string]string `json:"headers,omitempty"`
	}{TypeNotification, n.ChannelID, n.Version, n.Data, n.Headers})
}

// MarshalJSON writes messageType first, then the broadcasts with any errors
// nested under "errors".
func (b Broadcast) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MessageType string         `json:"messageType"`
		Broadcasts  map[string]any `json:"broadcasts"`
	}{TypeBroadcast, withErrors(b.Broadcasts, b.Errors)})
}

// withErrors is the "broadcasts" member: the versions, with unknown ids
// nested under "errors" (autopush's shape); {} when both are empty.
func withErrors(versions, errs map[string]string) map[string]any {
	all := make(map[string]any, len(versions)+1)
	for k, v := range versions {
		all[k] = v
	}
	if len(errs) > 0 {
		all["errors"] = errs
	}
	return all
}

// MarshalJSON writes "{}", the ping form both sides understand.
func (Pong) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

// MarshalClientMessage encodes a client message as Firefox writes it, with
// messageType first; a ping is "{}". For test clients and the load generator.
func MarshalClientMessage(m ClientMessage) ([]byte, error) {
	if _, ok := m.(*Ping); ok {
		return []byte("{}"), nil
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	typ, _ := json.Marshal(m.Type())
	out := append([]byte(`{"messageType":`), typ...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}
