package accounts

import (
	"sync"
	"time"
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
}

type counter struct {
	n     int
	start time.Time
}

type limiter struct {
	l   Limits
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*counter
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
	return &limiter{l: l, now: now, m: map[string]*counter{}}
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

// peek reports whether key is over max without counting.
func (l *limiter) peek(key string, max int, window time.Duration) (ok bool, retry int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[key]
	if c == nil || now.Sub(c.start) >= window || c.n < max {
		return true, 0
	}
	return false, int((window-now.Sub(c.start))/time.Second) + 1
}

func (l *limiter) sweep(now time.Time) {
	longest := max(l.l.Window, l.l.Lockout)
	for k, c := range l.m {
		if now.Sub(c.start) >= longest {
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
	if ok, retry := l.hit(action+"|"+ip, max, l.l.Window); !ok {
		return errThrottled(retry)
	}
	return nil
}

// lockedOut reports whether the account (by normalised email) is locked.
func (l *limiter) lockedOut(email string) error {
	if ok, retry := l.peek("fail|"+email, l.l.EmailFailures, l.l.Lockout); !ok {
		return errThrottled(retry)
	}
	return nil
}

// failed records a failed password check for the account.
func (l *limiter) failed(email string) { l.hit("fail|"+email, l.l.EmailFailures, l.l.Lockout) }
