package tokenserver

import (
	"net/http"
	"strconv"
	"time"
)

// apiError is an error response in the Cornice shape every token server
// client knows (tokenserver-1.0.md §10):
//
//	{"status": "<status>", "errors": [{"location": …, "name": …, "description": …}]}
type apiError struct {
	code        int
	status      string // "error", "invalid-credentials", …
	location    string // "body", "header", "url", "internal"
	name        string
	description string
	retryAfter  time.Duration // Retry-After on 503
	allow       string        // Allow on 405
	// cause is logged, never sent.
	cause error
	// kind names a 503's cause for metrics when status is the generic "error".
	kind string
}

// refusalReason is a short, bounded label of why a token was refused (for
// metrics): the Cornice status when it is specific, else a kind by cause.
func (e *apiError) refusalReason() string {
	switch {
	case e.kind != "":
		return e.kind
	case e.status != "error":
		return e.status
	case e.code == http.StatusUnauthorized:
		return "unauthorized"
	case e.code >= 500:
		return "backend-unavailable"
	}
	return "bad-request"
}

type errorDetail struct {
	Location    string `json:"location"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type errorBody struct {
	Status string        `json:"status"`
	Errors []errorDetail `json:"errors"`
}

func (e *apiError) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(e.retryAfter/time.Second), 10))
	}
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	writeJSON(w, e.code, errorBody{
		Status: e.status,
		Errors: []errorDetail{{Location: e.location, Name: e.name, Description: e.description}},
	})
}

// The error responses, one constructor per row of spec §10 (statuses and
// descriptions as the Rust token server sends them, so that clients and
// dashboards see the same strings).

func errUnauthorized() *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "error", location: "body", description: "Unauthorized"}
}

func errUnsupportedScheme() *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "error", location: "body", description: "Unsupported"}
}

func errInvalidCredentials(cause error) *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "invalid-credentials", location: "body", description: "Unauthorized", cause: cause}
}

func errInvalidKeyID(description string) *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "invalid-key-id", location: "header", name: "X-KeyID", description: description}
}

func errInvalidGeneration() *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "invalid-generation", location: "body", description: "Unauthorized"}
}

func errInvalidKeysChangedAt() *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "invalid-keysChangedAt", location: "body", description: "Unauthorized"}
}

func errInvalidClientState(description string) *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "invalid-client-state", location: "header", name: "X-Client-State",
		description: "Unacceptable client-state value " + description}
}

// errClientStateMismatch is the answer to an X-Client-State that disagrees
// with X-KeyID: syncstorage-rs gives this body, unlike its other
// invalid-client-state answers (header location, "Unacceptable ...").
func errClientStateMismatch() *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "invalid-client-state", location: "body", description: "Unauthorized"}
}

func errBadClientStateFormat() *apiError {
	return &apiError{code: http.StatusBadRequest, status: "error", location: "header", name: "X-Client-State", description: "Invalid client state value"}
}

func errNewUsersDisabled() *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "new-users-disabled", location: "body", description: "New users are not accepted"}
}

func errUnsupportedApp() *apiError {
	return &apiError{code: http.StatusNotFound, status: "error", location: "url", name: "application", description: "Unsupported application"}
}

func errUnsupportedVersion(version string) *apiError {
	return &apiError{code: http.StatusNotFound, status: "error", location: "url", name: version, description: "Unsupported application version"}
}

func errNotFound() *apiError {
	return &apiError{code: http.StatusNotFound, status: "error", location: "url", description: "Not Found"}
}

func errMethodNotAllowed() *apiError {
	return &apiError{code: http.StatusMethodNotAllowed, status: "error", location: "url", description: "Method Not Allowed", allow: "GET"}
}

func errNotAcceptable() *apiError {
	return &apiError{code: http.StatusNotAcceptable, status: "error", location: "header", name: "Accept", description: "Unsupported Accept header: only application/json is available"}
}

// errFxAUnavailable: FxA could not be asked (network, timeout, 5xx).
func errFxAUnavailable(retry time.Duration, cause error) *apiError {
	return &apiError{code: http.StatusServiceUnavailable, status: "error", location: "body", description: "Resource is not available", retryAfter: retry, cause: cause, kind: "fxa-unavailable"}
}

// errBackend: the token database failed; never a 500, so clients back off
// and retry instead of treating the account as broken.
func errBackend(retry time.Duration, cause error) *apiError {
	return &apiError{code: http.StatusServiceUnavailable, status: "error", location: "internal", description: "Resource is not available", retryAfter: retry, cause: cause, kind: "backend-unavailable"}
}

func errNoNode(retry time.Duration, cause error) *apiError {
	return &apiError{code: http.StatusServiceUnavailable, status: "error", location: "internal", description: "Unable to get a node", retryAfter: retry, cause: cause, kind: "no-node"}
}

// errNodeDown: the user's storage node is marked down.
func errNodeDown(retry time.Duration) *apiError {
	return &apiError{code: http.StatusServiceUnavailable, status: "error", location: "internal", description: "Storage node is unavailable", retryAfter: retry, kind: "node-down"}
}
