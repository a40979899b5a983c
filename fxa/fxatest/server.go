// Package fxatest fakes the parts of Firefox Accounts the token server talks
// to: a Server on 127.0.0.1 serving /v1/jwks and /v1/verify, for the keys of
// an issuer.Issuer (which mints the tokens). Tests only: production code
// must not import it.
package fxatest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/weave-sync/weave/fxa/issuer"
)

// VerifyResponse is what the fake /v1/verify returns for a known opaque
// token (the shape of FxA's answer).
type VerifyResponse struct {
	User             string   `json:"user"`
	ClientID         string   `json:"client_id"`
	Scope            []string `json:"scope"`
	Generation       int64    `json:"generation,omitempty"`
	ProfileChangedAt int64    `json:"profile_changed_at,omitempty"`
}

// Server is a fake FxA OAuth server on 127.0.0.1. All methods are safe for
// concurrent use with requests in flight.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234 (no trailing slash).
	URL string

	srv *http.Server
	ln  net.Listener

	mu          sync.Mutex
	jwks        []byte
	opaque      map[string]VerifyResponse
	delay       time.Duration
	jwksFetches int
	verifyCalls int
}

// NewServer starts a fake server publishing jwks at /v1/jwks.
func NewServer(jwks []byte) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String(), ln: ln, jwks: jwks, opaque: map[string]VerifyResponse{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/jwks", s.serveJWKS)
	mux.HandleFunc("POST /v1/verify", s.serveVerify)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) // returns ErrServerClosed after Close
	return s, nil
}

// Serve starts a fake server publishing i's key. It panics if it cannot
// listen on 127.0.0.1 (use NewServer to get the error instead).
func Serve(i *issuer.Issuer) *Server {
	s, err := NewServer(i.JWKS())
	if err != nil {
		panic("fxatest: " + err.Error())
	}
	return s
}

// Close stops the server and drops open connections; clients then see
// connection errors, as when FxA is down.
func (s *Server) Close() { s.srv.Close() }

// SetJWKS replaces the published key set (key rotation).
func (s *Server) SetJWKS(jwks []byte) {
	s.mu.Lock()
	s.jwks = jwks
	s.mu.Unlock()
}

// AddOpaque makes /v1/verify accept token with the given answer. Other
// tokens get FxA's 400 "invalid token" error.
func (s *Server) AddOpaque(token string, r VerifyResponse) {
	s.mu.Lock()
	s.opaque[token] = r
	s.mu.Unlock()
}

// SetDelay makes every response wait d first (to test client timeouts).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// JWKSFetches counts GET /v1/jwks requests so far.
func (s *Server) JWKSFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksFetches
}

// VerifyCalls counts POST /v1/verify requests so far.
func (s *Server) VerifyCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verifyCalls
}

// wait applies the configured delay, giving up when the client does.
func (s *Server) wait(ctx context.Context) bool {
	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.jwksFetches++
	doc := s.jwks
	s.mu.Unlock()
	if !s.wait(r.Context()) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc)
}

func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.verifyCalls++
	s.mu.Unlock()
	if !s.wait(r.Context()) {
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req)
	s.mu.Lock()
	resp, ok := s.opaque[req.Token]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err != nil || !ok {
		// FxA's shape for an unknown or bad token (errno 108).
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"code": 400, "errno": 108, "error": "Bad Request", "message": "Invalid token"})
		return
	}
	json.NewEncoder(w).Encode(resp)
}
