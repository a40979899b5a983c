package webpush

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave/push"
	"github.com/weave-sync/weave/push/ece"
	"github.com/weave-sync/weave/push/vapid"
)

// received is what the fake push service saw of one request.
type received struct {
	headers push.PushHeaders
	claims  *vapid.Claims
	body    []byte
}

// pushService is a minimal Web Push endpoint built from weave's own header
// and VAPID checks, so the sender is tested against the same rules the real
// endpoint will apply, and the body against a real decryption.
func pushService(t *testing.T, status int) (*httptest.Server, func() received) {
	t.Helper()
	var mu sync.Mutex
	var last received
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, push.MaxBodySize+1))
		fail := func(e *push.HTTPError) {
			w.WriteHeader(e.Code)
			json.NewEncoder(w).Encode(e)
		}
		h, herr := push.ParsePushHeaders(r.Header, len(body) > 0)
		if herr != nil {
			fail(herr)
			return
		}
		rec := received{headers: h, body: body}
		if a := r.Header.Get("Authorization"); a != "" {
			vh, err := vapid.ParseAuthorization(a, r.Header.Get("Crypto-Key"))
			if err == nil {
				var c vapid.Claims
				c, err = (&vapid.Verifier{Origin: srv.URL, RequireSubject: true}).Verify(vh)
				rec.claims = &c
			}
			var ve *vapid.Error
			if errors.As(err, &ve) {
				fail(&push.HTTPError{Code: ve.Status, Errno: ve.Errno, Message: ve.Message})
				return
			}
		}
		mu.Lock()
		last = rec
		mu.Unlock()
		w.Header().Set("TTL", "0")
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() received { mu.Lock(); defer mu.Unlock(); return last }
}

func subscriber(t *testing.T) (*ecdh.PrivateKey, ece.Keys) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return k, ece.Keys{P256DH: k.PublicKey().Bytes(), Auth: auth}
}

func TestSendEncryptsSignsAndSetsHeaders(t *testing.T) {
	srv, last := pushService(t, http.StatusCreated)
	priv, keys := subscriber(t)
	vk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := vapid.NewSigner(vk, "https://accounts.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"version":1,"command":"fxaccounts:command_received","data":{"command":"https://identity.mozilla.com/cmd/open-uri","index":1,"sender":"abc","url":"x"}}`)
	err = New(nil, signer).Send(context.Background(), Subscription{Endpoint: srv.URL + "/wpush/v1/tok", Keys: keys},
		Message{Payload: payload, TTL: 6 * time.Hour, Topic: "cmd", Urgency: "high"})
	if err != nil {
		t.Fatal(err)
	}
	got := last()
	if got.headers.TTL != 6*3600 || got.headers.Topic != "cmd" || got.headers.Crypto["encoding"] != "aes128gcm" {
		t.Errorf("push service saw %+v", got.headers)
	}
	if got.claims == nil || got.claims.Subject != "https://accounts.example.org/" {
		t.Errorf("VAPID claims = %+v", got.claims)
	}
	pt, err := ece.Decrypt(priv, keys.Auth, got.body)
	if err != nil || string(pt) != string(payload) {
		t.Errorf("subscriber decrypts %q, %v", pt, err)
	}
}

// FxA sends without VAPID and sometimes without a payload (the legacy
// "account verified" ping); both must be accepted by the endpoint's rules.
func TestSendWithoutVAPIDOrPayload(t *testing.T) {
	srv, last := pushService(t, http.StatusCreated)
	_, keys := subscriber(t)
	if err := New(nil, nil).Send(context.Background(), Subscription{Endpoint: srv.URL + "/x", Keys: keys}, Message{}); err != nil {
		t.Fatal(err)
	}
	got := last()
	if len(got.body) != 0 || got.headers.TTL != 0 || got.headers.Crypto != nil || got.claims != nil {
		t.Errorf("push service saw %+v", got)
	}
}

func TestSendOutcomes(t *testing.T) {
	_, keys := subscriber(t)
	for status, want := range map[int]error{
		http.StatusCreated:             nil,
		http.StatusAccepted:            nil,
		http.StatusNotFound:            ErrGone,
		http.StatusGone:                ErrGone,
		http.StatusTooManyRequests:     &Error{},
		http.StatusFound:               &Error{}, // a redirect is not followed
		http.StatusInternalServerError: &Error{},
	} {
		srv, _ := pushService(t, status)
		err := New(nil, nil).Send(context.Background(), Subscription{Endpoint: srv.URL, Keys: keys}, Message{Payload: []byte("x"), TTL: time.Minute})
		switch w := want.(type) {
		case nil:
			if err != nil {
				t.Errorf("%d: %v", status, err)
			}
		case *Error:
			var e *Error
			if !errors.As(err, &e) || e.Status != status {
				t.Errorf("%d: %v, want *Error with that status", status, err)
			}
		default:
			if !errors.Is(err, w) {
				t.Errorf("%d: %v, want %v", status, err, w)
			}
		}
	}
}

// The endpoint's error body reaches the caller (bounded), e.g. a VAPID
// rejection: the signer's token carries an origin the service does not own.
func TestSendReportsPushServiceError(t *testing.T) {
	srv, _ := pushService(t, http.StatusCreated)
	_, keys := subscriber(t)
	vk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := vapid.NewSigner(vk, "mailto:ops@example.org")
	signer.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) } // expired token
	err := New(nil, signer).Send(context.Background(), Subscription{Endpoint: srv.URL, Keys: keys}, Message{Payload: []byte("x")})
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || !strings.Contains(e.Body, `"errno":109`) {
		t.Errorf("expired VAPID: %v", err)
	}
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	defer big.Close()
	err = New(nil, nil).Send(context.Background(), Subscription{Endpoint: big.URL, Keys: keys}, Message{})
	if !errors.As(err, &e) || len(e.Body) != maxResponse {
		t.Errorf("large error body: %d bytes kept, want %d", len(e.Body), maxResponse)
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	_, keys := subscriber(t)
	s := New(nil, nil)
	ctx := context.Background()
	for name, c := range map[string]struct {
		sub Subscription
		msg Message
	}{
		"ftp endpoint": {Subscription{Endpoint: "ftp://x/y", Keys: keys}, Message{}},
		"no host":      {Subscription{Endpoint: "https:///y", Keys: keys}, Message{}},
		"garbage":      {Subscription{Endpoint: "::", Keys: keys}, Message{}},
		"negative TTL": {Subscription{Endpoint: "https://x/y", Keys: keys}, Message{TTL: -time.Second}},
		"bad keys":     {Subscription{Endpoint: "https://x/y", Keys: ece.Keys{P256DH: []byte{4}, Auth: keys.Auth}}, Message{Payload: []byte("x")}},
		"too large":    {Subscription{Endpoint: "https://x/y", Keys: keys}, Message{Payload: make([]byte, ece.MaxPlaintextSize+1)}},
	} {
		if err := s.Send(ctx, c.sub, c.msg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A push service that never answers cannot hold the sender past its
// context's deadline.
func TestSendHonoursContext(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	_, keys := subscriber(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := New(nil, nil).Send(ctx, Subscription{Endpoint: srv.URL, Keys: keys}, Message{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("hung push service: %v after %v", err, time.Since(start))
	}
}

// A device record's endpoint must not be able to bounce the accounts
// server's POST elsewhere: redirects are answered as errors, not followed.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	var hit atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
	defer target.Close()
	redir := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redir.Close()
	_, keys := subscriber(t)
	err := New(&http.Client{}, nil).Send(context.Background(), Subscription{Endpoint: redir.URL, Keys: keys}, Message{Payload: []byte("x")})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusTemporaryRedirect || hit.Load() {
		t.Errorf("redirect: %v, target hit %v", err, hit.Load())
	}
}
