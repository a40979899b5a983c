package legacy

import (
	"sync"
	"time"
)

// Rate limits, per process (behind several weave processes each counts on
// its own):
//   - failed logins per username: after loginFailures within lockout, the
//     name is refused without checking the password until the window ends
//     (a login the auth cache already knows still works, so a guesser
//     cannot lock out a device that is syncing);
//   - sign-ups per address: signupsPerIP per window, the bypass secrets
//     excepted.
const (
	loginFailures = 10
	lockout       = 15 * time.Minute
	signupsPerIP  = 5
	signupWindow  = time.Minute
	limiterMax    = 100_000 // keys kept before expired ones are dropped
)

type window struct {
	n     int
	start time.Time
}

// counter counts events per key in fixed windows.
type counter struct {
	mu sync.Mutex
	m  map[string]*window
}

// over reports whether key already has max events in its current window.
func (c *counter) over(key string, max int, d time.Duration, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.m[key]
	return w != nil && now.Sub(w.start) < d && w.n >= max
}

// add counts one event for key and reports whether it is within max.
func (c *counter) add(key string, max int, d time.Duration, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*window{}
	}
	if len(c.m) >= limiterMax {
		for k, w := range c.m {
			if now.Sub(w.start) >= d {
				delete(c.m, k)
			}
		}
		if len(c.m) >= limiterMax {
			c.m = map[string]*window{}
		}
	}
	w := c.m[key]
	if w == nil || now.Sub(w.start) >= d {
		w = &window{start: now}
		c.m[key] = w
	}
	w.n++
	return w.n <= max
}
