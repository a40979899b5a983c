package push

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/weave-sync/weave/push/vapid"
)

// Route is one route of the Web Push endpoint: a ServeMux pattern with a
// method, relative to the public URL's path, and its handler, which reads
// the pattern's wildcards.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes are the Web Push endpoints (RFC 8030) application servers send
// to: POST /wpush/v1/{token} and /wpush/v2/{token} (v2: restricted to one
// VAPID key, RFC 8292), and DELETE /m/{id} to cancel a stored message.
// A route table registers each pattern (behind the public URL's path
// prefix, if any) so request metrics see it.
func (s *Service) Routes() []Route {
	return []Route{
		{"POST /wpush/{version}/{token}", http.HandlerFunc(s.servePush)},
		{"DELETE /m/{id}", http.HandlerFunc(s.serveCancel)},
	}
}

// WebPushHandler serves Routes on their own, for mounting at the public
// URL's path with any prefix stripped.
func (s *Service) WebPushHandler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

func writeError(w http.ResponseWriter, e *HTTPError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch e.Code {
	case http.StatusGone:
		// The subscription is gone for good; senders may cache that.
		h.Set("Cache-Control", "max-age=86400")
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		h.Set("Retry-After", "120")
	}
	w.WriteHeader(e.Code)
	_ = json.NewEncoder(w).Encode(e)
}

func vapidError(err error) *HTTPError {
	var ve *vapid.Error
	if errors.As(err, &ve) {
		return &HTTPError{Code: ve.Status, Errno: ve.Errno, Message: ve.Message}
	}
	return &HTTPError{Code: http.StatusUnauthorized, Errno: ErrnoUnauthorized, Message: "Invalid VAPID authorization"}
}

var errUnavailable = &HTTPError{Code: http.StatusServiceUnavailable, Errno: ErrnoUnavailable, Message: "Storage temporarily unavailable; try again later"}

// servePush accepts one push message. The checks run in autopush's order,
// so a sender gets the error autopush would give: endpoint token (404),
// VAPID form and key binding (401), subscription (410), VAPID token (401),
// body size (413), headers (400).
func (s *Service) servePush(w http.ResponseWriter, r *http.Request) {
	sub, err := s.codec.Parse(r.PathValue("version"), r.PathValue("token"))
	if err != nil {
		writeError(w, &HTTPError{Code: http.StatusNotFound, Errno: ErrnoInvalidToken, Message: "Invalid endpoint"})
		return
	}
	var auth *vapid.Header
	if a := r.Header.Get("Authorization"); a != "" || sub.Restricted() {
		if a == "" {
			writeError(w, vapidError(vapid.ErrMissingToken))
			return
		}
		h, err := vapid.ParseAuthorization(a, r.Header.Get("Crypto-Key"))
		if err != nil {
			writeError(w, vapidError(err))
			return
		}
		if sub.Restricted() {
			if kh := vapid.KeyHash(h.Key); subtle.ConstantTimeCompare(kh[:], sub.KeyHash) != 1 {
				writeError(w, vapidError(vapid.ErrKeyMismatch))
				return
			}
		}
		auth = &h
	}
	user, err := s.store.Route(r.Context(), sub.UAID, sub.ChannelID)
	switch {
	case errors.Is(err, ErrUnknownUser):
		writeError(w, &HTTPError{Code: http.StatusGone, Errno: ErrnoNoUser, Message: "No such subscription"})
		return
	case errors.Is(err, ErrUnknownChannel):
		writeError(w, &HTTPError{Code: http.StatusGone, Errno: ErrnoNoSubscription, Message: "No such subscription"})
		return
	case err != nil:
		s.log.Warn("push: looking up a subscription failed", "err", err)
		writeError(w, errUnavailable)
		return
	}
	if auth != nil {
		if _, err := s.verifier.Verify(*auth); err != nil {
			writeError(w, vapidError(err))
			return
		}
	}
	tooLarge := &HTTPError{Code: http.StatusRequestEntityTooLarge, Errno: ErrnoTooLarge,
		Message: "Message too large: at most " + strconv.Itoa(MaxBodySize) + " bytes"}
	if r.ContentLength > MaxBodySize {
		writeError(w, tooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		writeError(w, &HTTPError{Code: http.StatusBadRequest, Errno: ErrnoInvalidEncryption, Message: "Could not read the body"})
		return
	}
	if len(body) > MaxBodySize {
		writeError(w, tooLarge)
		return
	}
	ph, herr := ParsePushHeaders(r.Header, len(body) > 0)
	if herr != nil {
		writeError(w, herr)
		return
	}
	now := s.stamp()
	m := Message{
		ID:        randomHex(16),
		UAID:      sub.UAID,
		ChannelID: sub.ChannelID,
		Topic:     ph.Topic,
		Headers:   ph.Crypto,
		Created:   now,
		Expires:   now + ph.TTL*1000,
	}
	if len(body) > 0 {
		m.Data = base64.RawURLEncoding.EncodeToString(body)
	}
	if ph.TTL > 0 && s.local(m.UAID) == nil {
		// A browser that is away cannot drain its queue: cap it.
		switch n, err := s.store.Stored(r.Context(), m.UAID); {
		case err != nil:
			s.log.Warn("push: counting stored messages failed", "err", err)
			writeError(w, errUnavailable)
			return
		case n >= s.cfg.MaxStored:
			writeError(w, &HTTPError{Code: http.StatusTooManyRequests, Errno: ErrnoTooManyMessages,
				Message: "Too many messages waiting for this subscription; try again later"})
			return
		}
	}
	if err := s.route(r.Context(), m, user); err != nil {
		s.log.Warn("push: storing a message failed", "err", err)
		writeError(w, errUnavailable)
		return
	}
	w.Header().Set("Location", s.base+"/m/"+m.ID)
	w.Header().Set("TTL", strconv.FormatInt(ph.TTL, 10))
	w.WriteHeader(http.StatusCreated)
}

// stamp is the time of a new message: the clock, but strictly increasing
// within this process, so messages posted in one millisecond are still
// delivered in the order they came.
func (s *Service) stamp() int64 {
	now := s.now()
	for {
		last := s.lastStamp.Load()
		next := max(now, last+1)
		if s.lastStamp.CompareAndSwap(last, next) {
			return next
		}
	}
}

// route delivers or stores m (see the package comment). A browser
// connected here gets it straight away, unstored, as autopush does: it is
// stored only if the session ends before the ack, which spares the
// database two writes per message in the common case.
func (s *Service) route(ctx context.Context, m Message, user User) error {
	c := s.local(m.UAID)
	if c != nil && c.deliver(m, false) {
		s.obs.Message("direct", 1)
		return nil
	}
	remote := user.Node != "" && user.Node != s.node
	if m.Expires == m.Created { // TTL 0: now or never
		if !remote {
			// Answered 201 all the same, as autopush does.
			s.obs.Message("dropped", 1)
			return nil
		}
		m.Expires = m.Created + s.cfg.RouteGrace.Milliseconds()
	}
	wake := ""
	if remote {
		wake = user.Node
	}
	if err := s.store.Save(ctx, m, wake); err != nil {
		return err
	}
	s.obs.Message("stored", 1)
	if c != nil {
		// Connected here but not taking it now (mid-hello, or too many
		// unacked): a storage check finds it once the session can.
		go c.checkStorage()
	}
	return nil
}

// serveCancel deletes a stored message (its Location), as autopush's
// DELETE /m/{message_id} does: 204 whether it was still there or not.
func (s *Service) serveCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) != 32 || !IsUAID(id) { // same form: 32 lower-case hex digits
		writeError(w, &HTTPError{Code: http.StatusNotFound, Errno: ErrnoInvalidToken, Message: "Invalid message ID"})
		return
	}
	if _, err := s.store.Cancel(r.Context(), id); err != nil {
		s.log.Warn("push: cancelling a message failed", "err", err)
		writeError(w, errUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
