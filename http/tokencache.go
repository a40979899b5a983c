package http

import (
	"errors"
	"sync"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/tokenlib"
)

// tokenCache remembers tokens that verified, so the many requests a client
// makes with one token (it lives an hour) skip the HKDF and HMAC work of
// tokenlib.Parse, a quarter of the CPU of a cheap request. Only tokens whose
// signature checked out are stored, keyed by the exact id string, and expiry
// is still checked on every use. Two generations bound the memory: when the
// current one is full it becomes the old one and the old one is dropped.
type tokenCache struct {
	mu       sync.RWMutex
	cur, old map[string]cachedToken
	limit    int
}

type cachedToken struct {
	payload tokenlib.Payload
	node    string // weave.NodeURLKey(payload.Node)
	key     string
}

// tokenCacheSize is entries per generation: ~1 KB each (id, key, payload).
const tokenCacheSize = 8192

func newTokenCache(limit int) *tokenCache {
	return &tokenCache{cur: make(map[string]cachedToken), limit: limit}
}

// parse returns the token's payload, normalised node URL and Hawk key, or
// tokenlib's error. Like tokenlib.Parse, an expired token gives
// tokenlib.ErrExpired together with its payload and key.
func (c *tokenCache) parse(secrets []string, id string, now time.Time) (tokenlib.Payload, string, string, error) {
	c.mu.RLock()
	t, ok := c.cur[id]
	if !ok {
		t, ok = c.old[id]
	}
	c.mu.RUnlock()
	if !ok {
		p, key, err := tokenlib.Parse(secrets, id, now)
		if err != nil && !errors.Is(err, tokenlib.ErrExpired) {
			return p, "", key, err
		}
		t = cachedToken{payload: p, node: weave.NodeURLKey(p.Node), key: key}
		c.mu.Lock()
		if len(c.cur) >= c.limit {
			c.old, c.cur = c.cur, make(map[string]cachedToken, c.limit)
		}
		c.cur[id] = t
		c.mu.Unlock()
	}
	if t.payload.Expires <= now.Unix() {
		return t.payload, t.node, t.key, tokenlib.ErrExpired
	}
	return t.payload, t.node, t.key, nil
}
