package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/weave-sync/weave/fxa"
)

// TokenVerifier checks OAuth access tokens for the token server
// (*fxa.Verifier, tokenserver.Verifier).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (fxa.Claims, error)
}

// RevocationCheck wraps the token server's verifier, which checks JWTs
// offline, so that an access token this service issued is refused as soon
// as it is revoked: its jti or its session or refresh token revoked
// (oauth/destroy, session/destroy, sign-out), its account deleted, or its
// generation older than the account's last password change or reset.
// Tokens of other issuers pass through unchanged. The cost is a few
// primary-key reads per token request (once per client per token
// lifetime), only for tokens next accepted.
func (s *Service) RevocationCheck(next TokenVerifier) TokenVerifier {
	return &revocationCheck{s: s, next: next}
}

type revocationCheck struct {
	s    *Service
	next TokenVerifier
}

func (v *revocationCheck) Verify(ctx context.Context, token string) (fxa.Claims, error) {
	cl, err := v.next.Verify(ctx, token)
	if err != nil {
		return cl, err
	}
	c, ours := v.s.ownToken(token)
	if !ours {
		return cl, nil
	}
	if _, err := v.s.checkRevoked(ctx, c); err != nil {
		if errors.Is(err, errInvalidToken) {
			return fxa.Claims{}, errors.New("accounts: access token revoked")
		}
		return fxa.Claims{}, fmt.Errorf("%w: revocation check: %w", fxa.ErrUnavailable, err)
	}
	return cl, nil
}
