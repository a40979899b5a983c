package accounts_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/weave-sync/weave/accounts"
)

func b64d(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConcatKDFVector is RFC 7518 Appendix C: ECDH-ES between Alice's
// ephemeral key and Bob's key, then Concat KDF with apu "Alice", apv "Bob"
// for A128GCM.
func TestConcatKDFVector(t *testing.T) {
	alice, err := ecdh.P256().NewPrivateKey(b64d(t, "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := accounts.ParseJWK(accounts.JWK{Kty: "EC", Crv: "P-256",
		X: "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ", Y: "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"})
	if err != nil {
		t.Fatal(err)
	}
	if j := accounts.PublicJWK(alice.PublicKey()); j.X != "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0" || j.Y != "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps" {
		t.Fatalf("Alice's public key %+v", j)
	}
	z, err := alice.ECDH(bob)
	if err != nil {
		t.Fatal(err)
	}
	wantZ := []byte{158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196}
	if !bytes.Equal(z, wantZ) {
		t.Fatalf("Z = %v", z)
	}
	if k := accounts.ConcatKDF(z, "A128GCM", []byte("Alice"), []byte("Bob"), 128); base64.RawURLEncoding.EncodeToString(k) != "VqqN6vgjbSBcIijNcacQGg" {
		t.Fatalf("derived key %x", k)
	}
}

func TestJWERoundTripAndTampering(t *testing.T) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	msg := []byte(`{"https://identity.mozilla.com/apps/oldsync":{"kid":"1-a","k":"b","kty":"oct","scope":"https://identity.mozilla.com/apps/oldsync"}}`)
	jwe, err := accounts.EncryptJWE(priv.PublicKey(), msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := accounts.DecryptJWE(jwe, priv)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %v %s", err, got)
	}
	if !accounts.ValidJWE(jwe) {
		t.Error("own JWE fails the shape check")
	}
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := accounts.DecryptJWE(jwe, other); err != accounts.ErrBadJWE {
		t.Errorf("wrong key: %v", err)
	}
	parts := strings.Split(jwe, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[2] == 'A' {
			b[2] = 'B'
		} else {
			b[2] = 'A'
		}
		return string(b)
	}
	header := func(mod func(map[string]any)) string {
		var h map[string]any
		json.Unmarshal(b64d(t, parts[0]), &h)
		mod(h)
		raw, _ := json.Marshal(h)
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	join := func(p ...string) string { return strings.Join(p, ".") }
	for name, bad := range map[string]string{
		"header bit":     join(flip(parts[0]), parts[1], parts[2], parts[3], parts[4]),
		"iv bit":         join(parts[0], parts[1], flip(parts[2]), parts[3], parts[4]),
		"ciphertext bit": join(parts[0], parts[1], parts[2], flip(parts[3]), parts[4]),
		"tag bit":        join(parts[0], parts[1], parts[2], parts[3], flip(parts[4])),
		"encrypted key":  join(parts[0], "AAAA", parts[2], parts[3], parts[4]),
		"four parts":     join(parts[0], parts[1], parts[2], parts[3]),
		"alg":            join(header(func(h map[string]any) { h["alg"] = "ECDH-ES+A256KW" }), parts[1], parts[2], parts[3], parts[4]),
		"enc":            join(header(func(h map[string]any) { h["enc"] = "A128GCM" }), parts[1], parts[2], parts[3], parts[4]),
		"apu":            join(header(func(h map[string]any) { h["apu"] = "QWxpY2U" }), parts[1], parts[2], parts[3], parts[4]),
		"epk off curve": join(header(func(h map[string]any) {
			h["epk"].(map[string]any)["y"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		}), parts[1], parts[2], parts[3], parts[4]),
		"epk other curve": join(header(func(h map[string]any) { h["epk"].(map[string]any)["crv"] = "P-384" }), parts[1], parts[2], parts[3], parts[4]),
		"short iv":        join(parts[0], parts[1], "AAAA", parts[3], parts[4]),
		"not base64":      join(parts[0], parts[1], parts[2], "!!!!", parts[4]),
	} {
		if _, err := accounts.DecryptJWE(bad, priv); err != accounts.ErrBadJWE {
			t.Errorf("%s: %v", name, err)
		}
	}
	for s, want := range map[string]bool{
		jwe:                                   true,
		"a.b.c":                               false,
		"a..c.d.e":                            true,
		"..c.d.e":                             false,
		"a.b.c.d.e":                           true,
		"a..c.d.e=":                           false,
		"a..c.d.e.f":                          false,
		strings.Repeat("a", 1021) + "..c.d.e": false,
	} {
		if accounts.ValidJWE(s) != want {
			t.Errorf("ValidJWE(%.30q) = %v", s, !want)
		}
	}
}
