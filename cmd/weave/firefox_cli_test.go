package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/internal/testkit"
)

// The Firefox tests check what Firefox stored the way a command-line Sync
// client reads it: with nothing but the account's email and password.

// cliClient reads a user's storage with the token server's Hawk
// credentials.
type cliClient struct {
	t     *testing.T
	hc    *http.Client
	token tokenResponse
}

// signInAsCLI signs in with onepw, derives kB and the oldsync scoped key,
// gets an OAuth token and trades it at the token server. base is the
// public URL (behind a proxy, the proxy's); hc reaches it.
func signInAsCLI(t *testing.T, base string, hc *http.Client, email, password string) (*cliClient, fxaclient.SyncKeys) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := fxaclient.New(base)
	c.HTTP = hc
	s, err := c.SignIn(ctx, email, password)
	if err != nil {
		t.Fatalf("signing in as a CLI client: %v", err)
	}
	// Firefox got its token with the kid of the scoped key the pages sent;
	// a refusal here means the pages derived another key.
	body, keys := accountSyncToken(t, ctx, c, s, hc, base, "for the CLI client")
	cc := &cliClient{t: t, hc: hc}
	if err := json.Unmarshal(body, &cc.token); err != nil {
		t.Fatal(err)
	}
	return cc, keys
}

// get fetches a storage path (below the user's endpoint) into out.
func (c *cliClient) get(path string, out any) {
	c.t.Helper()
	r, err := testkit.HawkDo(c.hc, c.token.Key, c.token.ID, "GET", c.token.APIEndpoint+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if r.Status != 200 {
		c.t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, out); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}

// keyBundle is a Sync key pair: AES-256 key and HMAC-SHA256 key.
type keyBundle struct{ enc, mac []byte }

// defaultKeys decrypts crypto/keys with kSync and returns the default
// bundle Firefox encrypted every collection with.
func defaultKeys(t *testing.T, c *cliClient, keys fxaclient.SyncKeys) keyBundle {
	t.Helper()
	var bso struct{ Payload string }
	c.get("/storage/crypto/keys", &bso)
	var ck struct {
		Default []string `json:"default"`
	}
	if err := json.Unmarshal(decryptPayload(t, keyBundle{keys.KSync[:32], keys.KSync[32:]}, bso.Payload), &ck); err != nil || len(ck.Default) != 2 {
		t.Fatalf("crypto/keys: %v %v", err, ck)
	}
	enc, err1 := base64.StdEncoding.DecodeString(ck.Default[0])
	mac, err2 := base64.StdEncoding.DecodeString(ck.Default[1])
	if err1 != nil || err2 != nil || len(enc) != 32 || len(mac) != 32 {
		t.Fatalf("crypto/keys default bundle malformed")
	}
	return keyBundle{enc, mac}
}

// decryptCollection fetches and decrypts every record of a collection.
func decryptCollection(t *testing.T, c *cliClient, kb keyBundle, coll string) []map[string]any {
	t.Helper()
	var bsos []struct{ ID, Payload string }
	c.get("/storage/"+coll+"?full=1", &bsos)
	var out []map[string]any
	for _, b := range bsos {
		var rec map[string]any
		if err := json.Unmarshal(decryptPayload(t, kb, b.Payload), &rec); err != nil {
			t.Fatalf("%s/%s: %v", coll, b.ID, err)
		}
		if rec["id"] != b.ID {
			t.Fatalf("%s/%s: decrypted record has id %v", coll, b.ID, rec["id"])
		}
		out = append(out, rec)
	}
	return out
}

// decryptPayload opens a Sync 1.5 encrypted payload: HMAC-SHA256 over the
// base64 ciphertext (hex), then AES-256-CBC with PKCS#7 padding.
func decryptPayload(t *testing.T, kb keyBundle, payload string) []byte {
	t.Helper()
	var p struct {
		Ciphertext string `json:"ciphertext"`
		IV         string `json:"IV"`
		HMAC       string `json:"hmac"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		t.Fatalf("payload is not an encrypted record: %v", err)
	}
	m := hmac.New(sha256.New, kb.mac)
	m.Write([]byte(p.Ciphertext))
	if want, err := hex.DecodeString(p.HMAC); err != nil || !hmac.Equal(m.Sum(nil), want) {
		t.Fatal("record HMAC mismatch: wrong keys")
	}
	ct, err1 := base64.StdEncoding.DecodeString(p.Ciphertext)
	iv, err2 := base64.StdEncoding.DecodeString(p.IV)
	if err1 != nil || err2 != nil || len(iv) != aes.BlockSize || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		t.Fatal("malformed ciphertext or IV")
	}
	blk, _ := aes.NewCipher(kb.enc)
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(blk, iv).CryptBlocks(pt, ct)
	n := int(pt[len(pt)-1])
	if n == 0 || n > aes.BlockSize {
		t.Fatal("bad padding")
	}
	return pt[:len(pt)-n]
}

// TestDecryptPayload checks the decryption against a record encrypted
// here the way Firefox encrypts one.
func TestDecryptPayload(t *testing.T) {
	kb := keyBundle{enc: make([]byte, 32), mac: make([]byte, 32)}
	for i := range kb.enc {
		kb.enc[i], kb.mac[i] = byte(i), byte(100+i)
	}
	plain := []byte(`{"id":"abc","type":"bookmark"}`)
	iv := []byte("0123456789abcdef")
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	blk, _ := aes.NewCipher(kb.enc)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(blk, iv).CryptBlocks(ct, padded)
	ct64 := base64.StdEncoding.EncodeToString(ct)
	m := hmac.New(sha256.New, kb.mac)
	m.Write([]byte(ct64))
	payload, _ := json.Marshal(map[string]string{"ciphertext": ct64, "IV": base64.StdEncoding.EncodeToString(iv), "hmac": hex.EncodeToString(m.Sum(nil))})
	if got := decryptPayload(t, kb, string(payload)); string(got) != string(plain) {
		t.Fatalf("decrypted %q", got)
	}
}
