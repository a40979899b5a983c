package accounts

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits tune the in-memory rate limits and lockout of login, sign-up and
// account-status calls. They are per process: behind several weave
// processes each counts on its own.
type Limits struct {
	// PerIP is how many login/create/status attempts one IP may make per
	// Window (default 30).
	PerIP int
	// SignupsPerIP is how many accounts one IP may create per Window
	// (default 5).
	SignupsPerIP int
	// Window is the counting window (default 1 min).
	Window time.Duration
	// EmailFailures failed logins to one account within Lockout lock it
	// for Lockout (defaults 5 and 15 min). Success does not reset the
	// count, so guessing cannot be interleaved with a known password.
	EmailFailures int
	Lockout       time.Duration
	// MaxSessions and MaxRefreshTokens cap what one account holds
	// (defaults 100 each); a new one evicts the least recently used.
	MaxSessions, MaxRefreshTokens int
	// GrantBurst OAuth grants (token endpoint: code, refresh,
	// fxa-credentials) per account at once, then one per GrantEvery
	// (defaults 30 and 10 s) → 429 errno 114 with Retry-After.
	GrantBurst int
	GrantEvery time.Duration
	// Commands is how many invoke_command and devices/notify calls one
	// account may make per Window (default 120) → 429 errno 114 with
	// retryAfter, which Firefox honours before invoking again.
	Commands int
	// CaptchasPerIP is how many unanswered captchas one address (IPv6: one
	// /64) may hold (default 10), so a few addresses cannot use up the
	// process-wide pool.
	CaptchasPerIP int
	// StretchQueue is how many password checks may wait for one of the
	// scrypt slots (default 32), and StretchWait how long one waits
	// (default 10 s); past either the request gets 503 errno 201 with
	// Retry-After instead of queueing without bound. StretchSlots is the
	// number of concurrent scrypt runs (default min(4, GOMAXPROCS); 64 MiB
	// each at the default cost).
	StretchQueue int
	StretchWait  time.Duration
	StretchSlots int
}

type counter struct {
	n     int
	start time.Time
	// For a lockout counter: password checks running now, and a channel
	// closed when one of them ends (nil while nobody waits).
	inflight int
	wake     chan struct{}
}

type limiter struct {
	l   Limits
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*counter

	grants map[string]*grantLimiter // by account uid
}

type grantLimiter struct {
	l    *rate.Limiter
	used time.Time
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	if l.PerIP <= 0 {
		l.PerIP = 30
	}
	if l.SignupsPerIP <= 0 {
		l.SignupsPerIP = 5
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	if l.EmailFailures <= 0 {
		l.EmailFailures = 5
	}
	if l.Lockout <= 0 {
		l.Lockout = 15 * time.Minute
	}
	if l.MaxSessions <= 0 {
		l.MaxSessions = 100
	}
	if l.MaxRefreshTokens <= 0 {
		l.MaxRefreshTokens = 100
	}
	if l.GrantBurst <= 0 {
		l.GrantBurst = 30
	}
	if l.GrantEvery <= 0 {
		l.GrantEvery = 10 * time.Second
	}
	if l.Commands <= 0 {
		l.Commands = 120
	}
	if l.CaptchasPerIP <= 0 {
		l.CaptchasPerIP = 10
	}
	return &limiter{l: l, now: now, m: map[string]*counter{}, grants: map[string]*grantLimiter{}}
}

// limitKey is what per-address limits count: the address, or for IPv6 its
// /64, which one client typically holds whole (one address per request
// would otherwise be a fresh budget each time).
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// grant counts one OAuth grant for the account uid.
func (l *limiter) grant(uid string) error {
	now := l.now()
	l.mu.Lock()
	g := l.grants[uid]
	if g == nil {
		if len(l.grants) > 100_000 {
			for k, v := range l.grants {
				// Idle long enough to be full again: forgetting it
				// changes nothing.
				if now.Sub(v.used) > time.Duration(l.l.GrantBurst)*l.l.GrantEvery {
					delete(l.grants, k)
				}
			}
		}
		g = &grantLimiter{l: rate.NewLimiter(rate.Every(l.l.GrantEvery), l.l.GrantBurst)}
		l.grants[uid] = g
	}
	g.used = now
	r := g.l.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay > 0 {
		r.CancelAt(now)
	}
	l.mu.Unlock()
	if delay > 0 {
		return errThrottled(int(delay/time.Second) + 1)
	}
	return nil
}

// hit counts one event for key and reports whether it is within max per
// window, with the seconds until the window ends.
func (l *limiter) hit(key string, max int, window time.Duration) (ok bool, retry int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) > 100_000 {
		l.sweep(now)
	}
	c := l.m[key]
	if c == nil || now.Sub(c.start) >= window {
		c = &counter{start: now}
		l.m[key] = c
	}
	c.n++
	return c.n <= max, int((window-now.Sub(c.start))/time.Second) + 1
}

func (l *limiter) sweep(now time.Time) {
	longest := max(l.l.Window, l.l.Lockout)
	for k, c := range l.m {
		if now.Sub(c.start) >= longest && c.inflight == 0 {
			delete(l.m, k)
		}
	}
}

// checkIP counts an attempt from ip for action.
func (l *limiter) checkIP(ip, action string) error {
	max := l.l.PerIP
	if action == "signup" {
		max = l.l.SignupsPerIP
	}
	if ok, retry := l.hit(action+"|"+limitKey(ip), max, l.l.Window); !ok {
		return errThrottled(retry)
	}
	return nil
}

// commands counts one device command or notify call of the account uid.
func (l *limiter) commands(uid string) error {
	if ok, retry := l.hit("commands|"+uid, l.l.Commands, l.l.Window); !ok {
		return errThrottled(retry)
	}
	return nil
}

// attemptWait bounds how long a password check waits for the checks of
// the same account already running.
const attemptWait = 30 * time.Second

// reserveAttempt admits a password check of the account (by normalised
// email) against its failure budget before the check runs, atomically, so
// that concurrent guesses cannot all pass a lockout test made before any
// of them failed: failures counted plus checks running never exceed the
// budget. A check that would exceed it waits for a running one to end
// rather than being refused, so that concurrent right passwords (several
// devices signing in at once) are not locked out by each other. It fails
// when the account is locked. The caller calls done once with whether the
// password was wrong; only failures stay counted.
func (l *limiter) reserveAttempt(ctx context.Context, email string) (done func(failed bool), err error) {
	key := "fail|" + email
	timeout := time.NewTimer(attemptWait)
	defer timeout.Stop()
	l.mu.Lock()
	for {
		now := l.now()
		if len(l.m) > 100_000 {
			l.sweep(now)
		}
		c := l.m[key]
		if c == nil || now.Sub(c.start) >= l.l.Lockout {
			c = &counter{start: now}
			l.m[key] = c
		}
		if c.n >= l.l.EmailFailures {
			l.mu.Unlock()
			return nil, errThrottled(int((l.l.Lockout-now.Sub(c.start))/time.Second) + 1)
		}
		if c.n+c.inflight < l.l.EmailFailures {
			c.inflight++
			l.mu.Unlock()
			var once sync.Once
			return func(failed bool) {
				once.Do(func() {
					l.mu.Lock()
					defer l.mu.Unlock()
					c.inflight--
					if failed {
						c.n++
					}
					if c.wake != nil {
						close(c.wake)
						c.wake = nil
					}
				})
			}, nil
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		wake := c.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, errThrottled(1)
		case <-timeout.C:
			return nil, errThrottled(1)
		}
		l.mu.Lock()
	}
}
