package http

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCORS: off by default; with origins configured, preflights of the
// storage and token routes are answered as syncstorage-rs answers them
// (methods, headers, max age) and responses to an allowed origin carry
// Access-Control-Allow-Origin and the exposed protocol headers; other
// origins and other routes get none.
func TestCORS(t *testing.T) {
	token := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	preflight := func(e *env, path, origin string) *httptest.ResponseRecorder {
		return e.do(req{method: "OPTIONS", path: path, noAuth: true, hdr: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "PUT",
			"Access-Control-Request-Headers": "authorization,content-type,x-if-unmodified-since",
		}})
	}

	off := newEnv(t)
	off.mountTokens(token)
	w := preflight(off, off.u("/storage/bookmarks/a"), "https://app.example")
	if w.Code == http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS off: preflight %d, Allow-Origin %q", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
	}
	w = off.get(off.u("/info/collections"), "Origin", "https://app.example")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS off: GET %d, Allow-Origin %q", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
	}

	if _, err := New(Config{Store: off.store, Secrets: []string{testSecret}, CORSOrigins: []string{"https://app.example/path"}}); err == nil {
		t.Fatal("an origin with a path was accepted")
	}

	e := newEnv(t, func(c *Config) {
		c.CORSOrigins = []string{"https://App.example", "http://127.0.0.1:3000"}
	})
	e.mountTokens(token)
	for _, path := range []string{e.u("/storage/bookmarks/a"), "/1.0/sync/1.5"} {
		w := preflight(e, path, "https://app.example")
		h := w.Header()
		if w.Code != http.StatusOK || w.Body.Len() != 0 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			h.Get("Access-Control-Allow-Methods") != "DELETE, GET, POST, PUT" || h.Get("Access-Control-Max-Age") != "1728000" ||
			!strings.Contains(h.Get("Vary"), "Origin") {
			t.Fatalf("preflight of %s: %d %v", path, w.Code, h)
		}
		for _, want := range []string{"Authorization", "Content-Type", "X-If-Unmodified-Since", "X-KeyID", "X-Client-State"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
				t.Errorf("preflight of %s: Allow-Headers %q lacks %s", path, h.Get("Access-Control-Allow-Headers"), want)
			}
		}
		// Another origin gets nothing (the stand-in token server answers
		// every request 200; storage refuses the unauthenticated OPTIONS).
		w = preflight(e, path, "https://evil.example")
		if (path != "/1.0/sync/1.5" && w.Code == http.StatusOK) || w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight of %s from another origin: %d %v", path, w.Code, w.Header())
		}
	}
	w = e.get(e.u("/info/collections"), "Origin", "http://127.0.0.1:3000")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "http://127.0.0.1:3000" ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "X-Weave-Timestamp") ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "X-Last-Modified") {
		t.Fatalf("GET from an allowed origin: %d %v", w.Code, w.Header())
	}
	// An error response carries them too, so a script can read the status.
	w = e.do(req{method: "GET", path: e.u("/info/collections"), noAuth: true, hdr: map[string]string{"Origin": "https://app.example"}})
	if w.Code != http.StatusUnauthorized || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("401 to an allowed origin: %d %v", w.Code, w.Header())
	}
	// Routes other than storage and token get no CORS headers.
	w = e.do(req{method: "GET", path: "/__heartbeat__", noAuth: true, hdr: map[string]string{"Origin": "https://app.example"}})
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("heartbeat got CORS headers: %v", w.Header())
	}

	any := newEnv(t, func(c *Config) { c.CORSOrigins = []string{"*"} })
	w = preflight(any, any.u("/storage/bookmarks"), "https://anything.example")
	if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("any origin: %d %v", w.Code, w.Header())
	}
}
