package fxa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// jwt is a compact JWS split into its parts; nothing is verified yet.
type jwt struct {
	signingInput string // header "." payload, what the signature covers
	header       map[string]json.RawMessage
	claims       map[string]json.RawMessage
	sig          []byte
}

// splitJWT reports whether token is shaped like a JWT: three base64url
// segments whose first two are JSON objects. Only tokens failing this go to
// /v1/verify; a JWT-shaped token with bad contents is simply invalid.
func splitJWT(token string) (jwt, bool) {
	h64, rest, ok1 := strings.Cut(token, ".")
	c64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return jwt{}, false
	}
	var t jwt
	if !decodeJSONSegment(h64, &t.header) || !decodeJSONSegment(c64, &t.claims) {
		return jwt{}, false
	}
	// An empty signature ("alg":"none") is still JWT-shaped: it must be
	// rejected locally, not offered to /v1/verify.
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil {
		return jwt{}, false
	}
	t.signingInput, t.sig = token[:len(h64)+1+len(c64)], sig
	return t, true
}

func decodeJSONSegment(seg string, into *map[string]json.RawMessage) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Unmarshal(b, into) == nil
}

func (v *Verifier) verifyJWT(ctx context.Context, t jwt) (Claims, error) {
	alg, err := stringMember(t.header, "alg")
	if err != nil || alg != "RS256" {
		// Only RS256: "none" and HS256 (with the public key as secret) are
		// the classic ways to forge a token.
		return Claims{}, invalid("alg %q not allowed", alg)
	}
	typ, err := stringMember(t.header, "typ")
	if err != nil || typ == "" {
		return Claims{}, invalid("missing typ")
	}
	if !strings.Contains(typ, "/") {
		typ = "application/" + typ // RFC 7515 §4.1.9 implicit prefix
	}
	if !strings.EqualFold(typ, "application/at+jwt") {
		return Claims{}, invalid("typ %q is not an access token", typ)
	}
	if _, ok := t.header["crit"]; ok {
		return Claims{}, invalid("critical header extensions not supported")
	}
	kid, err := stringMember(t.header, "kid")
	if err != nil {
		return Claims{}, invalid("bad kid")
	}

	if err := v.checkSignature(ctx, t, kid); err != nil {
		return Claims{}, err
	}
	return v.claimsFromJWT(t.claims)
}

// checkSignature tries the trusted keys and, when keys are fetched rather
// than pinned, refetches once (rate-limited) if none matched: FxA may have
// rotated to a key we have not seen yet.
func (v *Verifier) checkSignature(ctx context.Context, t jwt, kid string) error {
	digest := sha256.Sum256([]byte(t.signingInput))
	ks := v.static
	if v.remote != nil {
		var err error
		if ks, err = v.remote.get(ctx); err != nil {
			return fmt.Errorf("%w: fetching JWKS: %w", ErrUnavailable, err)
		}
	}
	known := verifyWith(ks, kid, digest[:], t.sig)
	if known == sigOK {
		return nil
	}
	if v.remote != nil {
		fresh, err := v.remote.refresh(ctx, ks)
		switch {
		case err != nil && known == sigUnknownKid:
			// We cannot tell whether the token is good without FxA's keys.
			return fmt.Errorf("%w: fetching JWKS: %w", ErrUnavailable, err)
		case fresh != nil && verifyWith(fresh, kid, digest[:], t.sig) == sigOK:
			return nil
		}
	}
	if known == sigUnknownKid {
		return invalid("unknown signing key %q", kid)
	}
	return invalid("bad signature")
}

type sigResult int

const (
	sigOK sigResult = iota
	sigBad
	sigUnknownKid
)

func verifyWith(ks *KeySet, kid string, digest, sig []byte) sigResult {
	keys, known := ks.candidates(kid)
	for _, k := range keys {
		if rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, digest, sig) == nil {
			return sigOK
		}
	}
	if !known {
		return sigUnknownKid
	}
	return sigBad
}

func (v *Verifier) claimsFromJWT(m map[string]json.RawMessage) (Claims, error) {
	now := float64(v.now().UnixNano()) / 1e9
	leeway := v.leeway.Seconds()
	exp, ok, err := numberMember(m, "exp")
	if err != nil || !ok {
		return Claims{}, invalid("missing or bad exp")
	}
	if !(exp+leeway > now) {
		return Claims{}, invalid("token expired")
	}
	if nbf, ok, err := numberMember(m, "nbf"); err != nil || (ok && nbf-leeway > now) {
		return Claims{}, invalid("token not yet valid")
	}
	var c Claims
	if c.FxAUID, err = stringMember(m, "sub"); err != nil || !validUID(c.FxAUID) {
		return Claims{}, invalid("missing or bad sub")
	}
	if c.ClientID, err = stringMember(m, "client_id"); err != nil {
		return Claims{}, invalid("bad client_id")
	}
	if c.Generation, err = generationMember(m, "fxa-generation"); err != nil {
		return Claims{}, err
	}
	c.ProfileChangedAt, _, _ = intMember(m, "fxa-profileChangedAt") // unused; never fatal
	if c.Scopes, err = scopeMember(m, "scope"); err != nil {
		return Claims{}, err
	}
	return c, v.checkScope(c.Scopes)
}

func (v *Verifier) checkScope(scopes []string) error {
	for _, s := range scopes {
		if ScopeGrants(s, v.scope) {
			return nil
		}
	}
	return invalid("scope %q not granted", v.scope)
}

// validUID applies the storage nodes' check on fxa_uid (tokenserver §8.1);
// FxA uids are 32 hex digits, and the value ends up in an email address.
func validUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
			return false
		}
	}
	return true
}

// absent treats JSON null like a missing member.
func absent(raw json.RawMessage, ok bool) bool {
	return !ok || string(raw) == "null"
}

// stringMember returns "" for a missing member and an error for a
// non-string one.
func stringMember(m map[string]json.RawMessage, name string) (string, error) {
	raw, ok := m[name]
	if absent(raw, ok) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

func numberMember(m map[string]json.RawMessage, name string) (float64, bool, error) {
	raw, ok := m[name]
	if absent(raw, ok) {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64) // fails for strings, objects
	if err != nil {
		return 0, true, fmt.Errorf("%s is not a number", name)
	}
	return f, true, nil
}

// intMember accepts integers and integral floats (1.7e12 from a JSON
// encoder that only knows doubles).
func intMember(m map[string]json.RawMessage, name string) (int64, bool, error) {
	raw, ok := m[name]
	if absent(raw, ok) {
		return 0, false, nil
	}
	if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return i, true, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, true, fmt.Errorf("%s is not an integer", name)
	}
	return int64(f), true, nil
}

// generationMember: optional, a non-negative integer; 0 means absent.
func generationMember(m map[string]json.RawMessage, name string) (int64, error) {
	g, _, err := intMember(m, name)
	if err != nil || g < 0 {
		return 0, invalid("bad %s", name)
	}
	return g, nil
}

// scopeMember accepts the scope as one string or a list of strings and
// splits every element on whitespace and commas.
func scopeMember(m map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := m[name]
	if absent(raw, ok) {
		return nil, invalid("missing %s", name)
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return splitScopes(one), nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("bad %s", name)
	}
	var out []string
	for _, s := range list {
		out = append(out, splitScopes(s)...)
	}
	return out, nil
}
