package http

import (
	"strconv"
	"testing"
	"time"

	"github.com/weave-sync/weave/hawk"
	"github.com/weave-sync/weave/tokenlib"
)

// mintToken issues credentials as the token server does.
func mintToken(t testing.TB, o tokenOpts) creds {
	t.Helper()
	id, key, err := tokenlib.Sign(o.secret, tokenlib.Payload{
		UID: o.uid, Node: o.node, Expires: o.expires.Unix(),
		FxAUID: "a1b2c3d4e5f60718293a4b5c6d7e8f90", FxAKid: "1700000000000-ASNFZ4mrze8BI0VniavN7w",
	})
	if err != nil {
		t.Fatal(err)
	}
	return creds{id: id, key: key}
}

// signHawk builds an Authorization header with the hawk client signer for
// an explicit host, port and request target (to model proxies).
func signHawk(c creds, method, target, host, port string, ts time.Time, nonce, hash string) string {
	return hawk.Authorization(c.key, c.id, hawk.Artifacts{
		TS: strconv.FormatInt(ts.Unix(), 10), Nonce: nonce, Method: method,
		RequestTarget: target, Host: host, Port: port, Hash: hash,
	})
}

func payloadHash(contentType string, body []byte) string { return hawk.PayloadHash(contentType, body) }
