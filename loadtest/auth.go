package loadtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/weave-sync/weave/tokenlib"
)

// keysChangedAt is the fixed FxA key-rotation time (ms) of every simulated
// account; generation equals it, which the token server's rules accept.
const keysChangedAt = 1_600_000_000_000

// metricsSecret keys the telemetry hashes in locally minted tokens; storage
// nodes only carry them along, so any value works.
const metricsSecret = "weave-loadtest"

// jwtLifetime is how long a minted FxA access token is valid; a new one is
// minted for every token request.
const jwtLifetime = time.Hour

// newUser derives a simulated user's fixed identity from its index, so the
// same index is the same account in every run with the same prefix.
func (r *runner) newUser(i int) *user {
	u := &user{index: i, collTS: map[string]string{}}
	sum := sha256.Sum256([]byte(r.cfg.UserPrefix + ":fxa-uid:" + strconv.Itoa(i)))
	u.fxaUID = hex.EncodeToString(sum[:16])
	state := sha256.Sum256([]byte(r.cfg.UserPrefix + ":client-state:" + strconv.Itoa(i)))
	u.clientState = hex.EncodeToString(state[:16])
	u.keyID = strconv.FormatInt(keysChangedAt, 10) + "-" + base64.RawURLEncoding.EncodeToString(state[:16])
	u.generation = keysChangedAt
	u.uid = r.cfg.FirstUID + int64(i)
	if r.cfg.Verify {
		u.track = newTracker(&r.trackBudget)
	}
	if isLegacy(i, r.cfg.LegacyShare) {
		r.setLegacy(u)
	}
	return u
}

// ensureCreds gets u fresh credentials when it has none or they passed half
// their lifetime.
func (r *runner) ensureCreds(ctx context.Context, u *user) error {
	if u.creds != nil && time.Now().Before(u.creds.refreshAt) {
		return nil
	}
	var c *creds
	var err error
	switch {
	case u.legacy:
		c, err = r.legacyCreds(ctx, u)
	case r.cfg.Mode == ModeDirect:
		c, err = r.mintDirect(u)
	default:
		c, err = r.fetchToken(ctx, u)
	}
	if err != nil {
		return err
	}
	r.rec.tokenRefreshes.Add(1)
	u.creds = c
	return nil
}

// mintDirect signs a token for u's uid with the node's secret, as the token
// server would; the storage endpoint is the target itself.
func (r *runner) mintDirect(u *user) (*creds, error) {
	now := time.Now()
	node := r.target.String()
	kid, err := tokenlib.FxAKid(keysChangedAt, u.clientState)
	if err != nil {
		return nil, err
	}
	hashed := tokenlib.HashedFxAUID(metricsSecret, u.fxaUID)
	id, key, err := tokenlib.Sign(r.secret, tokenlib.Payload{
		UID:            u.uid,
		Node:           node,
		Expires:        now.Add(r.cfg.TokenDuration).Unix(),
		FxAUID:         u.fxaUID,
		FxAKid:         kid,
		HashedFxAUID:   hashed,
		HashedDeviceID: tokenlib.HashedDeviceID(metricsSecret, hashed, "none"),
	})
	if err != nil {
		return nil, fmt.Errorf("mint token: %w", err)
	}
	c, err := endpointCreds(id, key, node+"/1.5/"+strconv.FormatInt(u.uid, 10), r.cfg.AllowRemote)
	if err != nil {
		return nil, err
	}
	c.refreshAt = now.Add(r.cfg.TokenDuration / 2)
	return c, nil
}

// tokenResponse is the token server's answer (tokenserver-1.0.md §7).
type tokenResponse struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	UID         int64  `json:"uid"`
	APIEndpoint string `json:"api_endpoint"`
	Duration    int64  `json:"duration"`
}

// fetchToken trades a freshly minted FxA access token for Sync credentials.
// Like the reference client it retries once after a 401, with the clock skew
// re-measured from X-Timestamp.
func (r *runner) fetchToken(ctx context.Context, u *user) (*creds, error) {
	for attempt := 0; ; attempt++ {
		now := time.Now()
		iat := now.Add(time.Duration(u.tokenSkew) * time.Second)
		jwt := r.signer.mint(u.fxaUID, u.generation, iat, iat.Add(jwtLifetime))
		hr, err := http.NewRequestWithContext(ctx, http.MethodGet, r.target.String()+"/1.0/sync/1.5", nil)
		if err != nil {
			return nil, err
		}
		hr.Header.Set("Authorization", "Bearer "+jwt)
		hr.Header.Set("X-KeyID", u.keyID)
		hr.Header.Set("Accept", "application/json")

		start := time.Now()
		resp, err := r.client.Do(hr)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		lat := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return nil, errCut
			}
			label := errTransport
			if isTimeout(err) {
				label = errTimeout
			}
			r.rec.record(KindToken, 0, lat, label, err.Error())
			return nil, &statusError{kind: KindToken, label: label, detail: err.Error()}
		}
		r.noteServerTime(u, resp.Header.Get("X-Timestamp"), true, true)
		hresp := &response{status: resp.StatusCode, header: resp.Header, body: body}
		r.noteBackoff(u, hresp)
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			r.rec.authRetries.Add(1)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			label := strconv.Itoa(resp.StatusCode)
			detail := "GET /1.0/sync/1.5: " + truncate(string(body), 200)
			r.rec.record(KindToken, resp.StatusCode, lat, label, detail)
			return nil, &statusError{kind: KindToken, status: resp.StatusCode, label: label, detail: detail, backoff: u.retryAfter}
		}
		var tr tokenResponse
		c, err := func() (*creds, error) {
			if err := json.Unmarshal(body, &tr); err != nil {
				return nil, fmt.Errorf("unreadable token response: %v", err)
			}
			if tr.ID == "" || tr.Key == "" || tr.APIEndpoint == "" {
				return nil, fmt.Errorf("token response lacks id, key or api_endpoint: %s", truncate(string(body), 200))
			}
			return endpointCreds(tr.ID, tr.Key, tr.APIEndpoint, r.cfg.AllowRemote)
		}()
		if err != nil {
			r.rec.record(KindToken, resp.StatusCode, lat, errBody, err.Error())
			return nil, &statusError{kind: KindToken, status: resp.StatusCode, label: errBody, detail: err.Error()}
		}
		r.rec.record(KindToken, resp.StatusCode, lat, "", "")
		d := time.Duration(tr.Duration) * time.Second
		if d <= 0 {
			d = 5 * time.Minute // the Python token server's default
		}
		c.refreshAt = now.Add(d / 2)
		return c, nil
	}
}
