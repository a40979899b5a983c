package fxa

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// verifyRemote asks FxA about a token we cannot verify locally (POST
// /v1/verify). FxA's verdict decides validity, but we still apply our own
// scope check. A 4xx means the token is bad; a network failure, timeout,
// 5xx or unparseable success response means FxA is the problem.
func (v *Verifier) verifyRemote(ctx context.Context, token string) (Claims, error) {
	reqBody, err := json.Marshal(map[string]string{"token": token})
	if err != nil {
		return Claims{}, invalid("%v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.verifyURL, bytes.NewReader(reqBody))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: reading /v1/verify response: %w", ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return Claims{}, fmt.Errorf("%w: /v1/verify: %s", ErrUnavailable, resp.Status)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return Claims{}, invalid("rejected by /v1/verify: %s", resp.Status)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return Claims{}, fmt.Errorf("%w: bad /v1/verify response: %w", ErrUnavailable, err)
	}
	var c Claims
	bad := func(what string) (Claims, error) {
		return Claims{}, fmt.Errorf("%w: bad /v1/verify response: %s", ErrUnavailable, what)
	}
	if c.FxAUID, err = stringMember(m, "user"); err != nil || !validUID(c.FxAUID) {
		return bad("user")
	}
	if c.ClientID, err = stringMember(m, "client_id"); err != nil {
		return bad("client_id")
	}
	if c.Generation, err = generationMember(m, "generation"); err != nil {
		return bad("generation")
	}
	c.ProfileChangedAt, _, _ = intMember(m, "profile_changed_at")
	if c.Scopes, err = scopeMember(m, "scope"); err != nil {
		return bad("scope")
	}
	return c, v.checkScope(c.Scopes)
}
