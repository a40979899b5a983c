package hawk

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"time"
)

// Sign returns an Authorization header value for a request to rawURL, as a
// Sync client would send it. A payload hash is included when contentType is
// non-empty (the body may then be empty). An empty nonce gets 6 random
// bytes. The request target is the URL's escaped path and raw query, so
// sign the same URL string you send.
func Sign(key, id, method, rawURL, contentType string, body []byte, now time.Time, nonce string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", errors.New("hawk: URL has no host")
	}
	host, port, err := SplitHostPort(u.Host, u.Scheme)
	if err != nil {
		return "", err
	}
	a := Artifacts{
		TS: strconv.FormatInt(now.Unix(), 10), Nonce: nonce,
		Method: method, RequestTarget: u.RequestURI(), Host: host, Port: port,
	}
	if contentType != "" {
		a.Hash = PayloadHash(contentType, body)
	}
	return Authorization(key, id, a), nil
}

// Authorization MACs already-assembled artifacts and formats the header,
// for callers that know the host, port and target without a URL. An empty
// a.Nonce gets 6 random bytes.
func Authorization(key, id string, a Artifacts) string {
	if a.Nonce == "" {
		var b [6]byte
		rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
		a.Nonce = base64.StdEncoding.EncodeToString(b[:])
	}
	return Header{
		ID: id, TS: a.TS, Nonce: a.Nonce, Hash: a.Hash, Ext: a.Ext, App: a.App, Dlg: a.Dlg,
		MAC: MAC(key, a),
	}.String()
}
