package tokenserver

import (
	"encoding/base64"
	"encoding/hex"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// bearerToken extracts the credential of "Authorization: Bearer <token>"
// (scheme compared case-insensitively).
func bearerToken(r *http.Request) (string, *apiError) {
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok {
		return "", errUnauthorized()
	}
	if !strings.EqualFold(scheme, "bearer") {
		// BrowserID and everything else: FxA no longer issues assertions.
		return "", errUnsupportedScheme()
	}
	cred = strings.TrimSpace(cred)
	if cred == "" {
		return "", errUnauthorized()
	}
	return cred, nil
}

// validClientState is spec §2's ^[a-zA-Z0-9._-]{1,32}$.
func validClientState(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// keyID is what X-KeyID (and X-Client-State) say about the sync key.
type keyID struct {
	keysChangedAt int64  // 0: absent
	clientState   string // lowercase hex, may be ""
}

// parseKeyID reads X-KeyID: "<keys_changed_at>-<base64url_nopad(client
// state)>", split at the first "-" (spec §4), and checks X-Client-State
// against it. X-KeyID is required: every Firefox that speaks OAuth sends it,
// and without it the key rotation time — which rules 1, 5 and 7 of §5.3
// depend on — is unknown.
func parseKeyID(r *http.Request) (keyID, *apiError) {
	xcs, hasXCS := r.Header["X-Client-State"]
	if hasXCS && (len(xcs) != 1 || !validClientState(xcs[0])) {
		return keyID{}, errBadClientStateFormat()
	}
	vals, ok := r.Header["X-Keyid"]
	if !ok {
		return keyID{}, errInvalidKeyID("Missing X-KeyID header")
	}
	if len(vals) != 1 {
		return keyID{}, errInvalidKeyID("Invalid X-KeyID header")
	}
	left, right, ok := strings.Cut(vals[0], "-")
	if !ok {
		return keyID{}, errInvalidCredentials(errf("X-KeyID %q has no '-'", vals[0]))
	}
	kca, err := strconv.ParseInt(left, 10, 64)
	if err != nil || kca < 0 {
		return keyID{}, errInvalidCredentials(errf("X-KeyID keys_changed_at %q is not an integer", left))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(right)
	if err != nil || len(raw) > 16 {
		// More than 16 bytes cannot be a client state (and would not fit
		// the 32-character column).
		return keyID{}, errInvalidCredentials(errf("X-KeyID client state %q is not unpadded base64url of at most 16 bytes", right))
	}
	k := keyID{keysChangedAt: kca, clientState: hex.EncodeToString(raw)}
	if hasXCS && xcs[0] != k.clientState {
		return keyID{}, errClientStateMismatch()
	}
	return k, nil
}

// acceptsJSON reports whether an Accept header allows an application/json
// response. No header, or one we cannot parse at all, accepts anything.
func acceptsJSON(r *http.Request) bool {
	values := r.Header.Values("Accept")
	if len(values) == 0 {
		return true
	}
	parsed := false
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			parsed = true
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f <= 0 {
					continue
				}
			}
			switch mt {
			case "application/json", "application/*", "*/*":
				return true
			}
		}
	}
	return !parsed
}
