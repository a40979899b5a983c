package tokenlib

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Vector T1, tokenserver-1.0.md §8.5.
const (
	t1Secret        = "test-master-secret-0123456789"
	t1MetricsSecret = "test-metrics-secret"
	t1FxAUID        = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	t1Payload       = `{"node":"https://sync1.example.com","fxa_kid":"1700000000000-ASNFZ4mrze8BI0VniavN7w","fxa_uid":"a1b2c3d4e5f60718293a4b5c6d7e8f90","hashed_device_id":"2f8850bcadb6292033bad8a5e5adad14","hashed_fxa_uid":"7627645994c5079c54b5788d364ad9be","expires":1700003600,"uid":42,"tokenserver_origin":"rust","salt":"a1b2c3"}`
	t1ID            = "eyJub2RlIjoiaHR0cHM6Ly9zeW5jMS5leGFtcGxlLmNvbSIsImZ4YV9raWQiOiIxNzAwMDAwMDAwMDAwLUFTTkZaNG1yemU4QkkwVm5pYXZON3ciLCJmeGFfdWlkIjoiYTFiMmMzZDRlNWY2MDcxODI5M2E0YjVjNmQ3ZThmOTAiLCJoYXNoZWRfZGV2aWNlX2lkIjoiMmY4ODUwYmNhZGI2MjkyMDMzYmFkOGE1ZTVhZGFkMTQiLCJoYXNoZWRfZnhhX3VpZCI6Ijc2Mjc2NDU5OTRjNTA3OWM1NGI1Nzg4ZDM2NGFkOWJlIiwiZXhwaXJlcyI6MTcwMDAwMzYwMCwidWlkIjo0MiwidG9rZW5zZXJ2ZXJfb3JpZ2luIjoicnVzdCIsInNhbHQiOiJhMWIyYzMifQKGHx3xDV2wo-ot7vGBPL6RTgRk1qJPDUW9kISvPsB_"
	t1Key           = "3TyKUL9vwm_qxuzSUm1dD6ucJTKO8EBxB7unP_CiDqc="
)

// Vector T2: the syncstorage-rs TestFixture, payload bytes as Python's
// json.dumps wrote them (note the float expires).
const (
	t2Secret  = "Ted Koppel is a robot"
	t2Payload = `{"uid": 1, "node": "http://localhost:5000", "expires": 1884968439.0, "fxa_uid": "319b98f9961ff1dbdd07313cd6ba925a", "fxa_kid": "de697ad66d845b2873c9d7e13b8971af", "hashed_fxa_uid": "0e8df5d41398a389913bd8402435649518af46493da1d4a437a46dc1784c501a", "hashed_device_id": "2bcb92f4d4698c3d7b083a3c698a16ccd78bc2a8d20a96e4bb128ddceaf4e0b6", "salt": "2b307b"}`
	t2Key     = "dSi3EoZyHwgDp-O9OG1jRHtmbGl2M1bwcWsi04C4F58="
)

func TestVectorT1(t *testing.T) {
	if got := hex.EncodeToString(signingKey(t1Secret)); got != "38118c9adb35e673ae4b9e86194fdd8dbd8fa9e2e01ca15124c1a8b981b26479" {
		t.Errorf("sig_key = %s", got)
	}
	full := hmacHexFull(t1MetricsSecret, t1FxAUID)
	if full != "7627645994c5079c54b5788d364ad9be7d831fcd29bd236bc8b603790157a979" {
		t.Errorf("hashed_fxa_uid_full = %s", full)
	}
	hashed := HashedFxAUID(t1MetricsSecret, t1FxAUID)
	if hashed != "7627645994c5079c54b5788d364ad9be" {
		t.Errorf("hashed_fxa_uid = %s", hashed)
	}
	if got := HashedDeviceID(t1MetricsSecret, hashed, "none"); got != "2f8850bcadb6292033bad8a5e5adad14" {
		t.Errorf("hashed_device_id = %s", got)
	}
	kid, err := FxAKid(1700000000000, "0123456789abcdef0123456789abcdef")
	if err != nil || kid != "1700000000000-ASNFZ4mrze8BI0VniavN7w" {
		t.Errorf("fxa_kid = %q, %v", kid, err)
	}
	if kid, _ := FxAKid(1234, "0123456789abcdef0123456789abcdef"); kid != "0000000001234-ASNFZ4mrze8BI0VniavN7w" {
		t.Errorf("fxa_kid(1234) = %q", kid)
	}

	id := SignBytes(t1Secret, []byte(t1Payload))
	if id != t1ID {
		t.Fatalf("id = %s", id)
	}
	raw, _ := base64.URLEncoding.DecodeString(id)
	if sig := hex.EncodeToString(raw[len(raw)-32:]); sig != "02861f1df10d5db0a3ea2deef1813cbe914e0464d6a24f0d45bd9084af3ec07f" {
		t.Errorf("signature = %s", sig)
	}
	if key := DeriveKey(t1Secret, id, "a1b2c3"); key != t1Key {
		t.Errorf("key = %s", key)
	}

	p, key, err := Parse([]string{t1Secret}, t1ID, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := Payload{
		UID: 42, Node: "https://sync1.example.com", Expires: 1700003600,
		FxAUID: t1FxAUID, FxAKid: "1700000000000-ASNFZ4mrze8BI0VniavN7w",
		HashedFxAUID: "7627645994c5079c54b5788d364ad9be", HashedDeviceID: "2f8850bcadb6292033bad8a5e5adad14",
		Salt: "a1b2c3", TokenserverOrigin: "rust",
	}
	if p != want || key != t1Key {
		t.Errorf("Parse = %+v, %q", p, key)
	}
}

func hmacHexFull(secret, msg string) string {
	return hex.EncodeToString(appendMAC(nil, []byte(secret), []byte(msg)))
}

func TestVectorT2(t *testing.T) {
	if got := hex.EncodeToString(signingKey(t2Secret)); got != "ca50531355a39e0d3e20e0d998b389fde44fdb5ad41a300869dec7fdff788784" {
		t.Errorf("sig_key = %s", got)
	}
	// The fixture's id is not reproduced in the spec; signing the same bytes
	// with the same secret reconstructs it exactly (HMAC is deterministic).
	id := SignBytes(t2Secret, []byte(t2Payload))
	if !strings.HasPrefix(id, "eyJ1aWQiOiAx") || !strings.HasSuffix(id, "S5cw=") {
		t.Errorf("id %s does not have the fixture's prefix/suffix", id)
	}
	p, key, err := Parse([]string{"other secret", t2Secret}, id, time.Unix(1569608439, 0))
	if err != nil {
		t.Fatal(err)
	}
	if key != t2Key {
		t.Errorf("key = %s, want %s", key, t2Key)
	}
	if p.UID != 1 || p.Node != "http://localhost:5000" || p.Expires != 1884968439 || p.Salt != "2b307b" || p.TokenserverOrigin != "" {
		t.Errorf("payload = %+v", p)
	}
}

func TestDerivedNodeSecret(t *testing.T) {
	got, err := DerivedNodeSecret("0123456789abcdef0123456789abcdef", "https://sync1.example.com")
	if err != nil || got != "4f607d1514a5372a6a8f4d7d17eb0357" {
		t.Errorf("DerivedNodeSecret = %q, %v", got, err)
	}
	if _, err := DerivedNodeSecret("x", "n"); err == nil {
		t.Error("1-char master accepted")
	}
	if _, err := DerivedNodeSecret(strings.Repeat("a", 2*255*32+2), "n"); err == nil {
		t.Error("oversized master accepted")
	}
	if s, err := DerivedNodeSecret(strings.Repeat("a", 2*255*32), "n"); err != nil || len(s) != 2*255*32 {
		t.Errorf("max master: len %d, %v", len(s), err)
	}
}

func TestFxAKidBadHex(t *testing.T) {
	if _, err := FxAKid(1, "xyz"); err == nil {
		t.Error("non-hex client state accepted")
	}
	if kid, err := FxAKid(0, ""); err != nil || kid != "0000000000000-" {
		t.Errorf("empty client state: %q, %v", kid, err)
	}
}

func TestHKDFRFC5869Case1(t *testing.T) {
	// RFC 5869 Appendix A.1 checks the hand-written HKDF independently.
	ikm, _ := hex.DecodeString("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
	salt, _ := hex.DecodeString("000102030405060708090a0b0c")
	info, _ := hex.DecodeString("f0f1f2f3f4f5f6f7f8f9")
	got := hex.EncodeToString(hkdfSHA256(ikm, salt, string(info), 42))
	if got != "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865" {
		t.Errorf("okm = %s", got)
	}
}

func TestSignParseRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := Payload{UID: 7, Node: "https://n.example", Expires: now.Unix() + 3600, FxAUID: "abc"}
	id, key, err := Sign("s3cret", p)
	if err != nil {
		t.Fatal(err)
	}
	got, gotKey, err := Parse([]string{"s3cret"}, id, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Salt) != 6 || strings.Trim(got.Salt, "0123456789abcdef") != "" {
		t.Errorf("salt %q is not 6 lowercase hex digits", got.Salt)
	}
	p.Salt = got.Salt
	if got != p || gotKey != key {
		t.Errorf("round trip: %+v %q, want %+v %q", got, gotKey, p, key)
	}
	raw, _ := base64.URLEncoding.DecodeString(id)
	if s := string(raw[:len(raw)-32]); strings.Contains(s, "hashed_") || strings.Contains(s, "tokenserver_origin") {
		t.Errorf("empty optional fields serialised: %s", s)
	}
	// A supplied salt is kept, so the key is reproducible.
	p.Salt = "0a0b0c"
	id2, key2, _ := Sign("s3cret", p)
	if key2 != DeriveKey("s3cret", id2, "0a0b0c") {
		t.Error("supplied salt not used")
	}
}

func TestTampering(t *testing.T) {
	now := time.Unix(1700000000, 0)
	raw, _ := base64.URLEncoding.DecodeString(t1ID)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		_, _, err := Parse([]string{t1Secret}, base64.URLEncoding.EncodeToString(b), now)
		if !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("flipped byte %d: err = %v", i, err)
		}
	}
}

func TestWrongSecret(t *testing.T) {
	p, key, err := Parse([]string{"nope", "also nope"}, t1ID, time.Unix(1700000000, 0))
	if !errors.Is(err, ErrInvalidSignature) || key != "" || p != (Payload{}) {
		t.Errorf("got %+v %q %v", p, key, err)
	}
	if _, _, err := Parse(nil, t1ID, time.Unix(1700000000, 0)); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("no secrets: %v", err)
	}
}

func TestKeyring(t *testing.T) {
	secrets := []string{"a", t1Secret}
	k := NewKeyring(secrets)
	secrets[1] = "mutated" // the keyring keeps its own copy
	p, key, err := k.Parse(t1ID, time.Unix(1700000000, 0))
	if err != nil || key != t1Key || p.UID != 42 {
		t.Errorf("Keyring.Parse = %+v %q %v", p, key, err)
	}
	if _, _, err := NewKeyring(nil).Parse(t1ID, time.Unix(1700000000, 0)); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("empty keyring: %v", err)
	}
}

func TestRotation(t *testing.T) {
	now := time.Unix(1700000000, 0)
	p := Payload{UID: 1, Node: "n", Expires: now.Unix() + 10}
	oldID, oldKey, _ := Sign("old", p)
	newID, newKey, _ := Sign("new", p)
	secrets := []string{"old", "new"}
	if _, k, err := Parse(secrets, oldID, now); err != nil || k != oldKey {
		t.Errorf("old-secret token: %q %v", k, err)
	}
	if _, k, err := Parse(secrets, newID, now); err != nil || k != newKey {
		t.Errorf("new-secret token: %q %v", k, err)
	}
	if _, _, err := Parse([]string{"new"}, oldID, now); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("retired secret still accepted: %v", err)
	}
}

func TestExpiryBoundary(t *testing.T) {
	const exp = 1700003600
	cases := []struct {
		now     int64
		expired bool
	}{
		{exp - 1, false},
		{exp, true}, // tokenlib: expires <= now is expired
		{exp + 1, true},
	}
	for _, c := range cases {
		// Sub-second time must not matter: comparison is in whole seconds.
		p, key, err := Parse([]string{t1Secret}, t1ID, time.Unix(c.now, 999_999_999))
		if c.expired != errors.Is(err, ErrExpired) || (!c.expired && err != nil) {
			t.Errorf("now=%d: err = %v", c.now, err)
		}
		// The payload and key come back even when expired.
		if p.UID != 42 || key != t1Key {
			t.Errorf("now=%d: payload/key not returned: %+v %q", c.now, p, key)
		}
	}
}

func TestMalformed(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cases := map[string]string{
		"empty":       "",
		"not base64":  "!!!!",
		"std alpha":   "ab+/",
		"unpadded":    strings.TrimRight(SignBytes("s", []byte(`{"uid":1,"node":"n","expires":9999999999}`)), "="),
		"newline":     t1ID[:10] + "\n" + t1ID[10:],
		"too short":   base64.URLEncoding.EncodeToString(make([]byte, 32)),
		"too long":    strings.Repeat("A", MaxTokenLength+4),
		"trailing ws": t1ID + " ",
	}
	for name, id := range cases {
		if _, _, err := Parse([]string{"s", t1Secret}, id, now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// Correctly signed but unusable payloads.
	bad := []string{
		`not json`,
		`[1,2]`,
		`{"node":"n","expires":9999999999}`,
		`{"uid":1,"expires":9999999999}`,
		`{"uid":1,"node":"n"}`,
		`{"uid":-1,"node":"n","expires":9999999999}`,
		`{"uid":1.5,"node":"n","expires":9999999999}`,
		`{"uid":"1","node":"n","expires":9999999999}`,
		`{"uid":1,"node":2,"expires":9999999999}`,
		`{"uid":1,"node":"n","expires":"9999999999"}`,
		`{"uid":1,"node":"n","expires":1e300}`,
		`{"uid":1,"node":"n","expires":9999999999,"salt":5}`,
		`{"uid":1,"node":"n","expires":9999999999} trailing`,
	}
	for _, b := range bad {
		if _, _, err := Parse([]string{"s"}, SignBytes("s", []byte(b)), now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", b, err)
		}
	}
}

func TestLenientPayload(t *testing.T) {
	now := time.Unix(1700000000, 0)
	// Minimal purge-style token, unknown fields, float expires with fraction.
	id := SignBytes("s", []byte(`{"uid":3,"node":"n","expires":1700000001.75,"extra":{"a":[1]},"fxa_uid":"u"}`))
	p, key, err := Parse([]string{"s"}, id, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != 3 || p.Expires != 1700000001 || p.FxAUID != "u" || p.Salt != "" || key != DeriveKey("s", id, "") {
		t.Errorf("got %+v %q", p, key)
	}
}

// BenchmarkParse is the per-request token cost on a storage node with two
// secrets configured (during rotation).
func BenchmarkParse(b *testing.B) {
	secrets := []string{"older secret", t1Secret}
	now := time.Unix(1700000000, 0)
	b.Run("Keyring", func(b *testing.B) {
		k := NewKeyring(secrets)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := k.Parse(t1ID, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("func", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Parse(secrets, t1ID, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestPayloadJSON(t *testing.T) {
	var p Payload
	if err := json.Unmarshal([]byte(t2Payload), &p); err != nil || p.Expires != 1884968439 || p.UID != 1 {
		t.Errorf("Unmarshal = %+v, %v", p, err)
	}
	if err := json.Unmarshal([]byte(`{"uid":1}`), &p); err == nil {
		t.Error("payload without node/expires accepted")
	}
}
