package accounts

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// FxA errnos (fxa-auth-server lib/error.js).
const (
	ErrnoAccountExists            = 101
	ErrnoAccountUnknown           = 102
	ErrnoIncorrectPassword        = 103
	ErrnoInvalidJSON              = 106
	ErrnoInvalidParameter         = 107
	ErrnoMissingParameter         = 108
	ErrnoInvalidSignature         = 109
	ErrnoInvalidToken             = 110
	ErrnoInvalidTimestamp         = 111
	ErrnoRequestTooLarge          = 113
	ErrnoThrottled                = 114
	ErrnoInvalidNonce             = 115
	ErrnoEndpointNotSupported     = 116
	ErrnoIncorrectEmailCase       = 120
	ErrnoDeviceUnknown            = 123
	ErrnoRequestBlocked           = 125
	ErrnoUnavailableDeviceCommand = 157
	ErrnoInvalidUnblockCode       = 127
	ErrnoUnknownClientID          = 162
	ErrnoInvalidScopes            = 163
	ErrnoIncorrectRedirectURI     = 167
	ErrnoInvalidResponseType      = 168
	ErrnoMissingPKCE              = 169
	ErrnoUnknownAuthCode          = 172
	ErrnoMismatchAuthCode         = 173
	ErrnoExpiredAuthCode          = 174
	ErrnoInvalidPKCEChallenge     = 175
	ErrnoRefreshTokenUnknown      = 182
	ErrnoServerBusy               = 201
	ErrnoUnexpected               = 999
)

// Error is an FxA-shaped error response:
// {"code":…,"errno":…,"error":…,"message":…} plus optional extra members.
type Error struct {
	Code    int
	Errno   int
	Message string
	Extra   map[string]any
	// RetryAfter, when positive, is sent as Retry-After (seconds).
	RetryAfter int
}

func (e *Error) Error() string {
	return "accounts: " + e.Message + " (errno " + strconv.Itoa(e.Errno) + ")"
}

func newErr(code, errno int, msg string) *Error {
	return &Error{Code: code, Errno: errno, Message: msg}
}

func (e *Error) with(k string, v any) *Error {
	c := *e
	c.Extra = map[string]any{k: v}
	for k2, v2 := range e.Extra {
		c.Extra[k2] = v2
	}
	return &c
}

func (e *Error) write(w http.ResponseWriter) {
	body := map[string]any{"code": e.Code, "errno": e.Errno, "error": http.StatusText(e.Code), "message": e.Message}
	for k, v := range e.Extra {
		body[k] = v
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b)
}

var (
	errInvalidJSON    = newErr(400, ErrnoInvalidJSON, "Invalid JSON in request body")
	errTooLarge       = newErr(413, ErrnoRequestTooLarge, "Request body too large")
	errUnknownAccount = newErr(400, ErrnoAccountUnknown, "Unknown account")
	errAccountExists  = newErr(400, ErrnoAccountExists, "Account already exists")
	errBadPassword    = newErr(400, ErrnoIncorrectPassword, "Incorrect password")
	errInvalidToken   = newErr(401, ErrnoInvalidToken, "Invalid authentication token in request signature")
	errInvalidSig     = newErr(401, ErrnoInvalidSignature, "Invalid request signature")
	errInvalidNonce   = newErr(401, ErrnoInvalidNonce, "Invalid nonce in request signature")
	errUnknownClient  = newErr(400, ErrnoUnknownClientID, "Unknown client_id")
	errInvalidScopes  = newErr(400, ErrnoInvalidScopes, "Requested scopes are not allowed")
	errBadRedirect    = newErr(400, ErrnoIncorrectRedirectURI, "Incorrect redirect_uri")
	errResponseType   = newErr(400, ErrnoInvalidResponseType, "Invalid response_type")
	errMissingPKCE    = newErr(400, ErrnoMissingPKCE, "Public clients require PKCE OAuth parameters")
	errUnknownCode    = newErr(400, ErrnoUnknownAuthCode, "Unknown authorization code")
	errMismatchCode   = newErr(400, ErrnoMismatchAuthCode, "Mismatched authorization code")
	errExpiredCode    = newErr(400, ErrnoExpiredAuthCode, "Expired authorization code")
	errPKCE           = newErr(400, ErrnoInvalidPKCEChallenge, "Public clients require PKCE OAuth parameters")
	errUnknownRefresh = newErr(400, ErrnoRefreshTokenUnknown, "Unknown refresh token")
	errUnknownDevice  = newErr(400, ErrnoDeviceUnknown, "Unknown device")
	errNotFound       = newErr(404, ErrnoEndpointNotSupported, "Not Found")
	errMethod         = newErr(405, ErrnoEndpointNotSupported, "Method Not Allowed")
	errMediaType      = newErr(415, ErrnoUnexpected, "Unsupported Media Type")
	errServerBusy     = &Error{Code: 503, Errno: ErrnoServerBusy, Message: "Service unavailable", RetryAfter: 30}
	errUnexpected     = newErr(500, ErrnoUnexpected, "Unspecified error")
)

func errMissing(param string) *Error {
	return newErr(400, ErrnoMissingParameter, "Missing parameter in request body: "+param).with("param", param)
}

func errInvalid(param string) *Error {
	return newErr(400, ErrnoInvalidParameter, "Invalid parameter in request body").with("validation", map[string]any{"keys": []string{param}})
}

func errThrottled(retryAfter int) *Error {
	e := newErr(429, ErrnoThrottled, "Client has sent too many requests").with("retryAfter", retryAfter)
	e.RetryAfter = retryAfter
	return e
}
