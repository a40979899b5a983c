package fxa

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// keyCache holds the JWKS fetched from FxA. One fetch runs at a time and
// concurrent callers wait for it. Refetches (for an unknown kid or failed
// signature) are rate-limited; while no keys are held every use fetches,
// since without keys no token can be verified anyway.
type keyCache struct {
	url      string
	client   *http.Client
	interval time.Duration
	now      func() time.Time

	mu       sync.Mutex
	keys     *KeySet
	lastTry  time.Time     // start of the most recent fetch
	lastErr  error         // result of the most recent fetch
	inflight chan struct{} // closed when the running fetch ends
}

// get returns the current keys, fetching them if none are held.
func (c *keyCache) get(ctx context.Context) (*KeySet, error) {
	c.mu.Lock()
	ks := c.keys
	c.mu.Unlock()
	if ks != nil {
		return ks, nil
	}
	return c.fetch(ctx, nil, false)
}

// refresh returns keys newer than seen, fetching them unless the last fetch
// was less than interval ago. It returns nil, nil when rate-limited.
func (c *keyCache) refresh(ctx context.Context, seen *KeySet) (*KeySet, error) {
	return c.fetch(ctx, seen, true)
}

func (c *keyCache) fetch(ctx context.Context, seen *KeySet, limited bool) (*KeySet, error) {
	c.mu.Lock()
	if c.keys != nil && c.keys != seen {
		ks := c.keys // someone else already fetched newer keys
		c.mu.Unlock()
		return ks, nil
	}
	if ch := c.inflight; ch != nil {
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.keys != nil && c.keys != seen {
			return c.keys, nil
		}
		return nil, c.lastErr
	}
	if limited && c.keys != nil && c.now().Sub(c.lastTry) < c.interval {
		c.mu.Unlock()
		return nil, nil
	}
	ch := make(chan struct{})
	c.inflight, c.lastTry = ch, c.now()
	c.mu.Unlock()

	ks, err := c.download(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.keys = ks // a failed fetch keeps the old keys
	}
	c.lastErr, c.inflight = err, nil
	close(ch)
	return ks, err
}

func (c *keyCache) download(ctx context.Context) (*KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", c.url, resp.Status)
	}
	return ParseJWKS(body)
}
