package push

import (
	"encoding/json"
	"net/http"
)

// Errnos of the Web Push endpoint, autopush's numbers: application servers
// (FxA among them) and their logs know these.
const (
	ErrnoInvalidToken      = 102 // endpoint token undecodable, or unknown API version (404)
	ErrnoNoUser            = 103 // UAID unknown (410)
	ErrnoTooLarge          = 104 // body too large (413)
	ErrnoNoSubscription    = 106 // channel not registered for the UAID (410)
	ErrnoInvalidRouterType = 108 // (400)
	ErrnoUnauthorized      = 109 // any VAPID or JWT problem (401)
	ErrnoInvalidEncryption = 110 // bad Content-Encoding, Encryption or Crypto-Key (400)
	ErrnoNoTTL             = 111 // TTL header missing or unparsable (400)
	ErrnoInvalidTopic      = 113 // Topic header invalid (400)
	ErrnoInvalidTTL        = 114 // TTL negative (400)
	ErrnoUnavailable       = 201 // storage unavailable: retry with back-off (503)
	ErrnoTooManyMessages   = 999 // too many messages waiting for the browser (429); autopush's "unknown error" errno, as it has no such case
)

// MoreInfoURL is the "more_info" of every error body: the page documenting
// these errnos, which is what autopush links to.
const MoreInfoURL = "http://autopush.readthedocs.io/en/latest/http.html#error-codes"

// HTTPError is the JSON error body of the Web Push endpoint, in autopush's
// shape so an application server's error handling sees what it expects:
// {"code", "errno", "error", "message", "more_info"}.
type HTTPError struct {
	Code    int    // HTTP status
	Errno   int    // one of the Errno constants
	Message string // human-readable detail
}

// reasonPhrase is the status's canonical reason as autopush's HTTP stack
// writes it; Go's differs for 413.
func reasonPhrase(code int) string {
	if code == http.StatusRequestEntityTooLarge {
		return "Payload Too Large"
	}
	return http.StatusText(code)
}

// MarshalJSON writes the five members in autopush's order; "error" is the
// status's reason phrase.
func (e HTTPError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Code     int    `json:"code"`
		Errno    int    `json:"errno"`
		Error    string `json:"error"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
	}{e.Code, e.Errno, reasonPhrase(e.Code), e.Message, MoreInfoURL})
}
