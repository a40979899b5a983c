package hawk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseHeader checks that no input panics, that failures are
// ErrMalformed, and that accepted headers survive a format/parse round trip.
func FuzzParseHeader(f *testing.F) {
	f.Add(`Hawk id="dh37fgj492je", ts="1353832234", nonce="j4h3g2", ext="some-app-ext-data", mac="6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE="`)
	f.Add(`hawk id=a,ts=1,nonce=n,mac=m`)
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParseHeader(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if h.ID == "" || h.TS == "" || h.Nonce == "" || h.MAC == "" {
			t.Fatalf("accepted header without required attribute: %+v", h)
		}
		h2, err := ParseHeader(h.String())
		if err != nil || h2 != h {
			t.Fatalf("round trip of %q: %+v, %v", h.String(), h2, err)
		}
	})
}

// FuzzSignVerify signs arbitrary requests the way a client does (Host
// header through SplitHostPort) and checks that the verifier accepts
// exactly those: the signed request passes, the same header on another
// target, method or body fails with the documented error, and every
// failure is one of Verify's errors.
func FuzzSignVerify(f *testing.F) {
	f.Add("POST", "/1.5/42/storage/bookmarks?batch=true", "Example.COM:8443", "https", "application/json; charset=utf-8", []byte(`[{"id":"a"}]`), "id1", "ext-data")
	f.Add("GET", "/1.5/1/info/collections", "[::1]:8000", "http", "", []byte(nil), "x", "")
	f.Add("get", "/", "host", "https", "text/plain", []byte("\x00"), "a b", "\\\"")
	f.Add("PUT", "/a%20b?c=d&e", "h:0080", "http", "application/newlines", []byte("{}\n{}"), "tok", "x,y")
	f.Fuzz(func(t *testing.T, method, target, hostport, scheme, ctype string, body []byte, id, ext string) {
		host, port, err := SplitHostPort(hostport, scheme)
		if err != nil {
			return
		}
		if host == "" || host != strings.ToLower(host) || strings.ContainsAny(port, ":+- ") {
			t.Fatalf("SplitHostPort(%q) = %q, %q", hostport, host, port)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
			t.Fatalf("SplitHostPort(%q) port %q", hostport, port)
		}
		now := time.Unix(1700000000, 0)
		a := Artifacts{TS: "1700000000", Nonce: "n0nce", Method: method, RequestTarget: target, Host: host, Port: port, Ext: ext}
		if ctype != "" {
			a.Hash = PayloadHash(ctype, body)
		}
		const key = "fuzz key"
		authz := Authorization(key, id, a)
		if _, err := ParseHeader(authz); err != nil {
			// Ids or ext a Hawk header cannot carry: nothing to verify.
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		lookup := func(_ context.Context, got string) (string, error) {
			if got != id {
				return "", fmt.Errorf("lookup of %q, signed as %q", got, id)
			}
			return key, nil
		}
		req := Request{Method: method, RequestTarget: target, Host: host, Port: port, Authorization: authz, LookupKey: lookup}
		if ctype != "" {
			req.Payload = &Payload{ContentType: ctype, Body: body}
		}
		v := NewVerifier(Options{Now: func() time.Time { return now }})
		if _, err := v.Verify(context.Background(), req); err != nil {
			t.Fatalf("signed request refused: %v\n%+v", err, req)
		}
		if _, err := v.Verify(context.Background(), req); !errors.Is(err, ErrReplayedNonce) {
			t.Fatalf("replay: %v", err)
		}
		// Any change the MAC covers is refused by a fresh verifier.
		for _, change := range []func(r *Request){
			func(r *Request) { r.RequestTarget += "x" },
			func(r *Request) { r.Method += "X" },
			func(r *Request) { r.Port += "0" },
		} {
			bad := req
			change(&bad)
			_, err := NewVerifier(Options{Now: func() time.Time { return now }}).Verify(context.Background(), bad)
			if !errors.Is(err, ErrBadMAC) {
				t.Fatalf("tampered request: %v", err)
			}
		}
		if ctype != "" {
			bad := req
			bad.Payload = &Payload{ContentType: ctype, Body: append(slices.Clip(body), 'x')}
			if _, err := NewVerifier(Options{Now: func() time.Time { return now }}).Verify(context.Background(), bad); !errors.Is(err, ErrBadPayloadHash) {
				t.Fatalf("tampered body: %v", err)
			}
		}
		late := NewVerifier(Options{Now: func() time.Time { return now.Add(2 * DefaultSkew) }})
		if _, err := late.Verify(context.Background(), req); !errors.Is(err, ErrStaleTimestamp) {
			t.Fatalf("stale request: %v", err)
		}
	})
}
