// Package webpush sends Web Push messages (RFC 8030) as an application server:
// it is how weave's accounts service reaches a device through the push
// endpoint the device registered (its pushCallback), the way FxA's auth server
// does with the Node web-push library.
//
// A message is encrypted to the device's push keys with push/ece (aes128gcm,
// one record), optionally signed with VAPID (push/vapid), and POSTed with a
// TTL. A 404 or 410 answer means the subscription is gone: Send returns
// ErrGone so the caller can mark the device's pushEndpointExpired and stop
// pushing to it, which makes Firefox re-subscribe on its next device-list
// refresh.
package webpush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/weave-sync/weave/push/ece"
	"github.com/weave-sync/weave/push/vapid"
)

// ErrGone: the push service answered 404 or 410, the subscription no longer
// exists (RFC 8030 §7.3). Retrying is pointless.
var ErrGone = errors.New("webpush: subscription expired")

// Subscription is where and to whom a message goes: a device record's
// pushCallback, pushPublicKey and pushAuthKey.
type Subscription struct {
	Endpoint string
	Keys     ece.Keys
}

// Message is one push.
type Message struct {
	// Payload is encrypted to the subscription's keys; nil sends a push
	// without data (Firefox then sees an empty push).
	Payload []byte
	// TTL is how long the push service keeps the message for an offline
	// device; 0 means deliver now or never (RFC 8030 §5.2). Whole seconds.
	TTL time.Duration
	// Topic, if set, lets a newer message replace an undelivered older one
	// (RFC 8030 §5.4): at most 32 base64url characters.
	Topic string
	// Urgency is "very-low", "low", "normal" or "high" (RFC 8030 §5.3), or "".
	Urgency string
}

// Sender posts messages. The zero value is not usable: use New.
type Sender struct {
	client *http.Client
	vapid  *vapid.Signer
}

// maxResponse is how much of an answer's body is read (for the error text);
// the rest is discarded unread, so a hostile endpoint cannot make us buffer.
const maxResponse = 4 << 10

// New returns a Sender. client may be nil for a default one with a 30 s
// timeout; redirects are never followed either way, since a push endpoint
// has no business redirecting a POST and following one would let a device
// record aim the accounts server at other URLs. signer may be nil: VAPID is
// optional for subscriptions made without an application server key, which
// is how Firefox's FxA subscription is made.
func New(client *http.Client, signer *vapid.Signer) *Sender {
	c := &http.Client{Timeout: 30 * time.Second}
	if client != nil {
		cc := *client
		c = &cc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Sender{client: c, vapid: signer}
}

// Error is a refusal by the push service other than ErrGone.
type Error struct {
	Status int
	Body   string // at most the first 4 KiB, for logs
}

func (e *Error) Error() string {
	return fmt.Sprintf("webpush: push service answered %d: %s", e.Status, e.Body)
}

// Send encrypts and posts msg to sub. It returns nil on any 2xx answer (201
// is what push services send), ErrGone on 404/410, an *Error on other
// answers, and the transport's error otherwise.
func (s *Sender) Send(ctx context.Context, sub Subscription, msg Message) error {
	u, err := url.Parse(sub.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("webpush: endpoint %q is not an http(s) URL", sub.Endpoint)
	}
	if msg.TTL < 0 {
		return errors.New("webpush: negative TTL")
	}
	var body []byte
	if msg.Payload != nil {
		if body, err = ece.Encrypt(sub.Keys, msg.Payload); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("TTL", strconv.FormatInt(int64(msg.TTL/time.Second), 10))
	if body != nil {
		req.Header.Set("Content-Encoding", "aes128gcm")
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if msg.Topic != "" {
		req.Header.Set("Topic", msg.Topic)
	}
	if msg.Urgency != "" {
		req.Header.Set("Urgency", msg.Urgency)
	}
	if s.vapid != nil {
		auth, err := s.vapid.Authorization(sub.Endpoint, 12*time.Hour)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%w (%d)", ErrGone, resp.StatusCode)
	default:
		return &Error{Status: resp.StatusCode, Body: string(text)}
	}
}
