package http

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/hawk"
	"github.com/weave-sync/weave/tokenlib"
)

// Authentication follows hawk.md §3: parse the Hawk header; decode the id
// as a tokenlib token signed with one of the node's secrets; check expiry
// and node; verify the MAC over the request as the client addressed it
// (public URL host, port and path prefix); check the timestamp window and
// the nonce (those four steps are hawk.Verifier's); then the payload hash
// when one is sent, and last the uid. Every failure is 401 with
// WWW-Authenticate: Hawk and body 0 (hawk.md §7): Firefox reacts to a
// storage 401 by fetching a new token, which cures everything a legitimate
// client can hit here.

// unauthorized builds a 401.
func unauthorized(cause error) *apiError {
	return &apiError{status: http.StatusUnauthorized, reason: cause.Error(), challenge: "Hawk", cause: cause}
}

func (s *Server) authenticate(rq *request) error {
	r := rq.r
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return unauthorized(ErrMissingAuthorization)
	}
	o := s.origin(r)
	// The header is parsed and its key looked up here rather than in a
	// callback of Verify, which would cost two allocations a request.
	h, err := hawk.ParseHeader(authz)
	if err == nil {
		var key string
		var tok tokenlib.Payload
		if key, tok, err = s.tokenKey(rq, h.ID, o); err != nil {
			err = &hawk.KeyLookupError{Err: err}
		} else if err = s.hawk.VerifyKey(h, key, hawk.Request{
			Method:        r.Method,
			RequestTarget: s.requestTarget(r),
			Host:          o.host,
			Port:          o.port,
		}); err == nil && tok.UID != rq.uid {
			// 401 rather than RS's 400: a new token fixes it (hawk.md §7).
			return unauthorized(ErrUIDMismatch)
		}
	}
	if err != nil {
		e := unauthorized(err)
		var stale *hawk.StaleTimestampError
		if errors.As(err, &stale) {
			// Hawk's stale-timestamp challenge lets the client correct its
			// clock; tsm proves the server time came from a key holder.
			e.challenge = stale.Challenge
		}
		return e
	}
	// Authenticated: the request may now take as long as a transfer that
	// keeps moving needs (uploads of megabytes, full collection reads).
	AllowTransfer(r.Context())
	if h.Hash != "" {
		// The hash is already covered by the MAC; checking it against the
		// body as well (hawk.md §4) needs the body, read within the size
		// limit, after the MAC proved the request genuine.
		body, err := s.readBody(rq)
		if err != nil {
			return err
		}
		sum := hawk.PayloadHash(r.Header.Get("Content-Type"), body)
		if subtle.ConstantTimeCompare([]byte(sum), []byte(h.Hash)) != 1 {
			return unauthorized(hawk.ErrBadPayloadHash)
		}
	}
	return nil
}

// tokenKey decodes the token id of a request's Hawk header (cached) and
// returns its Hawk key and payload, or why it is refused: bad, expired
// (beyond the grace of info/collections) or for another node.
func (s *Server) tokenKey(rq *request, id string, o origin) (string, tokenlib.Payload, error) {
	now := rq.now
	p, node, key, err := s.tokens.parse(s.secrets, id, now)
	if errors.Is(err, tokenlib.ErrExpired) {
		// SPEC lets clients ask /info/collections with a recently
		// expired token, to see whether a sync is needed before
		// refreshing it.
		r := rq.r
		infoColl := rq.route == routeInfoCollections && (r.Method == http.MethodGet || r.Method == http.MethodHead)
		if !infoColl || s.grace < 0 || now.Sub(time.Unix(p.Expires, 0)) > s.grace {
			return "", p, err
		}
	} else if err != nil {
		return "", p, err
	}
	if node != o.base {
		return "", p, fmt.Errorf("token is for node %q, not %q", p.Node, o.base)
	}
	return key, p, nil
}

// origin is how the client addressed this node.
type origin struct {
	host string // lowercase, no brackets, no port
	port string // decimal
	base string // normalised base URL (scheme://host[:port][/prefix]) for the node check
}

// origin reconstructs the client's view of the server: the configured
// public URL if any; else the forwarding headers of a trusted proxy; else
// the request's own Host and TLS state.
func (s *Server) origin(r *http.Request) origin {
	if s.public {
		return s.publicOrigin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	hostport := r.Host
	fwdPort := ""
	if s.trustedPeer(r.RemoteAddr) {
		if v := firstHeaderValue(r.Header, "X-Forwarded-Proto"); v != "" {
			if v = strings.ToLower(v); v == "http" || v == "https" {
				scheme = v
			}
		}
		if v := firstHeaderValue(r.Header, "X-Forwarded-Host"); v != "" {
			hostport = v
		}
		fwdPort = firstHeaderValue(r.Header, "X-Forwarded-Port")
	}
	if fwdPort != "" && !hasPort(hostport) {
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), fwdPort)
	}
	if m := s.lastOrigin.Load(); m != nil && m.hostport == hostport && m.scheme == scheme {
		return m.o
	}
	host, port, err := hawk.SplitHostPort(hostport, scheme)
	if err != nil {
		// An unusable Host cannot match any token's node; keep it as is so
		// the failure says what was received.
		return origin{host: hostport, port: portOr("", scheme), base: scheme + "://" + hostport}
	}
	o := origin{host: host, port: port, base: weave.NodeURL{Scheme: scheme, Host: host, Port: port}.String()}
	s.lastOrigin.Store(&originMemo{scheme: scheme, hostport: hostport, o: o})
	return o
}

// originMemo is an origin and what it was derived from. Clients reach a
// node under one name or very few, so the last one is kept instead of
// parsing the same Host on every request.
type originMemo struct {
	scheme, hostport string
	o                origin
}

// hasPort reports whether a Host value carries an explicit port.
func hasPort(hostport string) bool {
	if i := strings.LastIndexByte(hostport, ']'); i >= 0 {
		return strings.IndexByte(hostport[i:], ':') >= 0
	}
	return strings.IndexByte(hostport, ':') >= 0
}

// requestTarget is the path and query the client signed: the raw request
// URI, with the public URL's path prefix put back when a proxy stripped it.
func (s *Server) requestTarget(r *http.Request) string {
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI() // absolute-form request line
	}
	if s.prefix != "" && !(strings.HasPrefix(target, s.prefix) &&
		(len(target) == len(s.prefix) || target[len(s.prefix)] == '/' || target[len(s.prefix)] == '?')) {
		target = s.prefix + target
	}
	return target
}

func (s *Server) trustedPeer(remoteAddr string) bool {
	if len(s.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	var addr netip.Addr
	if err == nil {
		addr = ap.Addr()
	} else if addr, err = netip.ParseAddr(remoteAddr); err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// firstHeaderValue returns the first element of a possibly comma-joined
// forwarding header (the one the client-facing proxy wrote).
func firstHeaderValue(h http.Header, name string) string {
	v := h.Get(name)
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

func portOr(port, scheme string) string {
	if port != "" {
		return port
	}
	if scheme == "https" {
		return "443"
	}
	return "80"
}
