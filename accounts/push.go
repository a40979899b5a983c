package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weave-sync/weave/push/ece"
	"github.com/weave-sync/weave/push/webpush"
)

// Push notices to devices, as FxA's auth server sends them (lib/push.js):
// the payload {"version":1,"command":…,"data":…} is encrypted to the
// device's push keys (aes128gcm) and POSTed with a TTL to the push
// callback the device registered, which is an endpoint of a push service
// (weave's own or Mozilla's). Firefox decrypts it and acts: polls its
// command queue, signs out, refetches its profile, syncs its clients.
//
// Notices go out in the background, at most PushConcurrency at once, each
// within PushTimeout; only command_received is awaited, because the
// invoke_command answer says whether it was delivered. A 404 or 410 from
// the push service marks the device's pushEndpointExpired and no more is
// sent to it until it registers a new callback, which Firefox does when it
// sees the flag in the device list.

// Push commands (FxA's PUSH_COMMANDS) and their TTLs.
const (
	pushCommandReceived    = "fxaccounts:command_received"
	pushDeviceConnected    = "fxaccounts:device_connected"
	pushDeviceDisconnected = "fxaccounts:device_disconnected"
	pushProfileUpdated     = "fxaccounts:profile_updated"
	pushPasswordChanged    = "fxaccounts:password_changed"
	pushPasswordReset      = "fxaccounts:password_reset"
	pushAccountDestroyed   = "fxaccounts:account_destroyed"
	pushCollectionChanged  = "sync:collection_changed"

	ttlDeviceDisconnected = 5 * time.Hour
	ttlPasswordChanged    = 6 * time.Hour
	ttlAccountDestroyed   = 5 * time.Hour
	ttlCommandReceived    = 6 * time.Hour // when the command has no ttl of its own
)

// DefaultPushHosts are where Mozilla's push service hands out endpoints
// (FxA accepts any host under services.mozilla.com); New adds PublicURL's
// origin, where weave's own push service answers.
var DefaultPushHosts = []string{"*.services.mozilla.com"}

// maxPushCallback is FxA's limit on a device's pushCallback.
const maxPushCallback = 255

// notice is a push payload (FxA's pushpayloads.schema.json).
type notice struct {
	Version int    `json:"version"`
	Command string `json:"command"`
	Data    any    `json:"data,omitempty"`
}

func newNotice(command string, data any) []byte {
	b, _ := json.Marshal(notice{Version: 1, Command: command, Data: data})
	return b
}

// hostRule is one entry of Config.PushHosts.
type hostRule struct {
	scheme string // "https" or "http"
	host   string // lower case; "*.x" matches any subdomain of x
	port   string // "" = any
}

func parseHostRule(s string) (hostRule, error) {
	raw := s
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return hostRule{}, errors.New("accounts: push host " + raw + ": want [http(s)://]host[:port], host may start with *.")
	}
	h := strings.ToLower(u.Hostname())
	if strings.Contains(strings.TrimPrefix(h, "*."), "*") {
		return hostRule{}, errors.New("accounts: push host " + raw + ": only a leading *. is a wildcard")
	}
	return hostRule{scheme: u.Scheme, host: h, port: u.Port()}, nil
}

func (r hostRule) match(u *url.URL) bool {
	if u.Scheme != r.scheme || (r.port != "" && u.Port() != r.port) {
		return false
	}
	h := strings.ToLower(u.Hostname())
	if suffix, ok := strings.CutPrefix(r.host, "*"); ok {
		return strings.HasSuffix(h, suffix) && len(h) > len(suffix)
	}
	return h == r.host
}

// pusher sends notices; its zero value is not usable.
type pusher struct {
	s       *Service
	sender  *webpush.Sender
	rules   []hostRule
	timeout time.Duration
	sem     chan struct{} // slots for pushes in flight
	pending atomic.Int64  // queued or in flight
	max     int64         // beyond this many pending, notices are dropped
	mu      sync.Mutex    // orders wg.Add after Close
	closed  bool
	wg      sync.WaitGroup
}

func newPusher(s *Service) (*pusher, error) {
	hosts := s.cfg.PushHosts
	if hosts == nil {
		// Exactly PublicURL's scheme, host and port: not every port of
		// weave's host.
		hosts = append([]string{s.public.Scheme + "://" + s.public.Host}, DefaultPushHosts...)
	}
	p := &pusher{s: s, timeout: s.cfg.PushTimeout, sem: make(chan struct{}, s.cfg.PushConcurrency),
		max: int64(s.cfg.PushConcurrency) * 256}
	for _, h := range hosts {
		r, err := parseHostRule(h)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, r)
	}
	client := s.cfg.PushClient
	if client == nil {
		client = &http.Client{Timeout: p.timeout, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: p.timeout, MaxIdleConnsPerHost: s.cfg.PushConcurrency,
			IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true,
		}}
	}
	p.sender = webpush.New(client, s.cfg.PushVAPID)
	return p, nil
}

// allowed reports whether a push callback may be registered and pushed
// to: an http(s) URL without credentials on a configured host, so that a
// device record cannot aim the server's POSTs at arbitrary hosts.
func (p *pusher) allowed(callback string) bool {
	if len(callback) > maxPushCallback {
		return false
	}
	u, err := url.Parse(callback)
	if err != nil || u.User != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	for _, r := range p.rules {
		if r.match(u) {
			return true
		}
	}
	return false
}

// Push errors, named as FxA reports them in invoke_command's notifyError.
var (
	errPushNoCallback = errors.New("noCallback")
	errPushExpired    = errors.New("expiredCallback")
	errPushNoKeys     = errors.New("noKeys")
	errPushReset      = errors.New("resetCallback")
)

// pushErrCode is notifyError for err.
func pushErrCode(err error) string {
	for _, e := range []error{errPushNoCallback, errPushExpired, errPushNoKeys, errPushReset} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "unknown"
}

// send pushes payload to one device now; on 404/410 it marks the device's
// push endpoint expired.
func (p *pusher) send(ctx context.Context, uid string, d deviceData, payload []byte, ttl time.Duration) error {
	switch {
	case d.PushCallback == "":
		return errPushNoCallback
	case d.PushEndpointExpired:
		return errPushExpired
	case !p.allowed(d.PushCallback):
		// Registered under another --accounts-push-hosts.
		return errPushNoCallback
	}
	keys, err := ece.ParseKeys(d.PushPublicKey, d.PushAuthKey)
	if err != nil {
		return errPushNoKeys
	}
	err = p.sender.Send(ctx, webpush.Subscription{Endpoint: d.PushCallback, Keys: keys}, webpush.Message{Payload: payload, TTL: ttl})
	if errors.Is(err, webpush.ErrGone) {
		if merr := p.markExpired(ctx, uid, d); merr != nil {
			p.s.log.Warn("accounts: mark push endpoint expired", "device", d.ID, "err", merr)
		}
		return errPushReset
	}
	if err != nil {
		p.s.log.Info("accounts: push failed", "device", d.ID, "err", err)
	}
	return err
}

// markExpired sets the device's pushEndpointExpired, unless the device
// has registered another callback (or is gone) meanwhile.
func (p *pusher) markExpired(ctx context.Context, uid string, d deviceData) error {
	t, err := p.s.store.Token(ctx, d.ID)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	cur := parseDevice(t)
	if t.Kind != KindDevice || t.UID != uid || cur.PushCallback != d.PushCallback || cur.PushEndpointExpired {
		return nil
	}
	cur.PushEndpointExpired = true
	next, _ := json.Marshal(cur)
	// Changed meanwhile (re-registered, renamed, destroyed): the next push
	// finds out again.
	_, err = p.s.store.SwapTokenData(ctx, d.ID, t.Data, next)
	return err
}

// notify sends payload to each of devs in the background.
func (p *pusher) notify(uid string, devs []deviceData, payload []byte, ttl time.Duration) {
	for _, d := range devs {
		if d.PushCallback == "" || d.PushEndpointExpired {
			continue // as FxA: counted as a failure, nothing to send
		}
		p.mu.Lock()
		if p.closed || p.pending.Load() >= p.max {
			p.mu.Unlock()
			p.s.log.Warn("accounts: push dropped (too many pending, or shutting down)", "device", d.ID)
			continue
		}
		p.pending.Add(1)
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			defer p.pending.Add(-1)
			p.sem <- struct{}{}
			defer func() { <-p.sem }()
			ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			defer cancel()
			_ = p.send(ctx, uid, d, payload, ttl)
		}()
	}
}

// notifyAccount sends payload to every device of the account except the
// one with id except ("" for none). Listing failures are logged: a notice
// never fails the request that caused it.
func (s *Service) notifyAccount(ctx context.Context, uid, except string, payload []byte, ttl time.Duration) {
	devs, err := s.deviceList(ctx, uid)
	if err != nil {
		s.log.Warn("accounts: list devices for push", "err", err)
		return
	}
	s.push.notify(uid, withoutDevice(devs, except), payload, ttl)
}

func withoutDevice(devs []deviceData, id string) []deviceData {
	out := make([]deviceData, 0, len(devs))
	for _, d := range devs {
		if d.ID != id {
			out = append(out, d)
		}
	}
	return out
}

// deviceList returns the account's devices.
func (s *Service) deviceList(ctx context.Context, uid string) ([]deviceData, error) {
	toks, err := s.store.Tokens(ctx, uid, KindDevice)
	if err != nil {
		return nil, err
	}
	out := make([]deviceData, 0, len(toks))
	for _, t := range toks {
		out = append(out, parseDevice(t))
	}
	return out, nil
}

// ProfileUpdated tells every device of the account that its profile
// changed (fxaccounts:profile_updated, TTL 0): Firefox refetches it.
func (s *Service) ProfileUpdated(ctx context.Context, uid string) {
	s.notifyAccount(ctx, uid, "", newNotice(pushProfileUpdated, nil), 0)
}

// Close stops sending notices and waits, until ctx ends, for those in
// flight (operator commands exit right after the change they push about).
func (s *Service) Close(ctx context.Context) error {
	s.push.mu.Lock()
	s.push.closed = true
	s.push.mu.Unlock()
	done := make(chan struct{})
	go func() { s.push.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
