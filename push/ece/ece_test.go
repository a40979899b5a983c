package ece

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"
)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func fixedKey(ikm []byte) func([]byte) ([]byte, error) {
	return func([]byte) ([]byte, error) { return ikm, nil }
}

// RFC 8188 §3.1: one record, rs 4096, empty key id. Every intermediate value
// is checked so a failure says which step is wrong.
func TestRFC8188Example1(t *testing.T) {
	ikm := b64(t, "yqdlZ-tYemfogSmv7Ws5PQ")
	salt := b64(t, "I1BsxtFttlv3u_Oo94xnmw")
	const want = "I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg"

	prk, cek, nonce, err := deriveKeyNonce(ikm, salt)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"PRK", enc(prk), "zyeH5phsIsgUyd4oiSEIy35x-gIi4aM7y0hCF8mwn9g"},
		{"CEK", enc(cek), "_wniytB-ofscZDh4tbSjHw"},
		{"NONCE", enc(nonce), "Bcs8gkIRKLI8GeI8"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	body, err := Seal(ikm, salt, nil, 4096, []byte("I am the walrus"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if enc(body) != want {
		t.Errorf("Seal = %s\nwant   %s", enc(body), want)
	}
	pt, err := Open(b64(t, want), fixedKey(ikm))
	if err != nil || string(pt) != "I am the walrus" {
		t.Errorf("Open = %q, %v", pt, err)
	}
}

// RFC 8188 §3.2: rs 25 forces two records and key id "a1"; the first record
// carries one byte of padding.
func TestRFC8188Example2(t *testing.T) {
	ikm := b64(t, "BO3ZVPxUlnLORbVGMpbT1Q")
	const want = "uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKEpgz3SsLWIqS_uA"
	var gotID []byte
	pt, err := Open(b64(t, want), func(id []byte) ([]byte, error) { gotID = id; return ikm, nil })
	if err != nil || string(pt) != "I am the walrus" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if string(gotID) != "a1" {
		t.Errorf("key id = %q, want a1", gotID)
	}
	h, _, err := ParseHeader(b64(t, want))
	if err != nil || h.RecordSize != 25 {
		t.Fatalf("header = %+v, %v", h, err)
	}
	body, err := sealRecords(ikm, h.Salt, []byte("a1"), 25, [][]byte{[]byte("I am th\x01\x00"), []byte("e walrus\x02")})
	if err != nil {
		t.Fatal(err)
	}
	if enc(body) != want {
		t.Errorf("sealRecords = %s\nwant          %s", enc(body), want)
	}
	// Seal's own layout (padding at the end) must decode to the same text.
	body, err = Seal(ikm, h.Salt, []byte("a1"), 25, []byte("I am the walrus"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Open(body, fixedKey(ikm)); err != nil || string(pt) != "I am the walrus" {
		t.Errorf("Open(Seal) = %q, %v", pt, err)
	}
}

// The worked example of RFC 8291 §5 (and its appendix A intermediate
// values): both key pairs and the salt are fixed, so the message must come
// out byte for byte, and each derivation step is compared on its own.
const (
	rfcPlaintext = "When I grow up, I want to be a watermelon"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcASPublic  = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcECDH      = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
	rfcPRKKey    = "Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k"
	rfcKeyInfo   = "V2ViUHVzaDogaW5mbwAEJXGyvs3942BVGq8e0PTNNmwRzr5VX4m8t7GGpTM5FzFo7OLr4BhZe9MEebhuPI-OztV3ylkYfpJGmQ22ggCLDgT-M_SrDepxkU21WCP3O1SUj0EwbZIHMtu5pZpTKGSCIA5Zent7wmC6HCJ5mFgJkuk5cwAvMBKiiujwa7t45ewP"
	rfcIKM       = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"
	rfcPRK       = "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc"
	rfcCEK       = "oIhVW04MRdy2XN9CiKLxTg"
	rfcNonce     = "4h_95klXJ5E_qnoN"
	rfcHeader    = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
	rfcCipher    = "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ"
)

func rfcKeys(t testing.TB) (as, ua *ecdh.PrivateKey) {
	t.Helper()
	as, err := ecdh.P256().NewPrivateKey(b64(t, rfcASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	ua, err = ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if enc(as.PublicKey().Bytes()) != rfcASPublic || enc(ua.PublicKey().Bytes()) != rfcUAPublic {
		t.Fatal("public keys derived from the RFC's private keys differ from the RFC's")
	}
	return as, ua
}

func TestRFC8291WorkedExampleIntermediateValues(t *testing.T) {
	as, ua := rfcKeys(t)
	uaPub, asPub, auth := b64(t, rfcUAPublic), b64(t, rfcASPublic), b64(t, rfcAuth)

	secret, err := as.ECDH(ua.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if enc(secret) != rfcECDH {
		t.Errorf("ecdh_secret = %s, want %s", enc(secret), rfcECDH)
	}
	if info := enc([]byte(webPushInfo(uaPub, asPub))); info != rfcKeyInfo {
		t.Errorf("key_info = %s, want %s", info, rfcKeyInfo)
	}
	// PRK_key is the HKDF-Extract step inside webPushIKM; recompute it with
	// the same primitive to pin it separately.
	prkKey, _, _, err := deriveKeyNonce(secret, auth)
	if err != nil {
		t.Fatal(err)
	}
	if enc(prkKey) != rfcPRKKey {
		t.Errorf("PRK_key = %s, want %s", enc(prkKey), rfcPRKKey)
	}
	ikm, err := webPushIKM(secret, auth, uaPub, asPub)
	if err != nil {
		t.Fatal(err)
	}
	if enc(ikm) != rfcIKM {
		t.Errorf("IKM = %s, want %s", enc(ikm), rfcIKM)
	}
	prk, cek, nonce, err := deriveKeyNonce(ikm, b64(t, rfcSalt))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"PRK", enc(prk), rfcPRK},
		{"CEK", enc(cek), rfcCEK},
		{"NONCE", enc(nonce), rfcNonce},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
}

func TestRFC8291WorkedExampleEncryptDecrypt(t *testing.T) {
	as, ua := rfcKeys(t)
	keys := Keys{P256DH: b64(t, rfcUAPublic), Auth: b64(t, rfcAuth)}
	body, err := encrypt(keys, []byte(rfcPlaintext), 0, as, b64(t, rfcSalt))
	if err != nil {
		t.Fatal(err)
	}
	want := append(b64(t, rfcHeader), b64(t, rfcCipher)...)
	if !bytes.Equal(body, want) {
		t.Fatalf("body = %s\nwant   %s", enc(body), enc(want))
	}
	pt, err := Decrypt(ua, keys.Auth, want)
	if err != nil || string(pt) != rfcPlaintext {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}
}

func newSubscriber(t testing.TB) (*ecdh.PrivateKey, Keys) {
	t.Helper()
	ua, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, AuthSecretSize)
	rand.Read(auth)
	return ua, Keys{P256DH: ua.PublicKey().Bytes(), Auth: auth}
}

// Encrypt must use a fresh key and salt each time (RFC 8291 §3.4 forbids
// reuse), produce exactly one record, and round-trip through Decrypt.
func TestEncryptRoundTripFreshKeysOneRecord(t *testing.T) {
	ua, keys := newSubscriber(t)
	msg := []byte(`{"version":1,"command":"fxaccounts:device_connected","data":{"deviceName":"x"}}`)
	a, err := Encrypt(keys, msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encrypt(keys, msg)
	if err != nil {
		t.Fatal(err)
	}
	ha, recs, err := ParseHeader(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, _, _ := ParseHeader(b)
	if bytes.Equal(ha.Salt, hb.Salt) || bytes.Equal(ha.KeyID, hb.KeyID) {
		t.Error("two messages share a salt or sender key")
	}
	if ha.RecordSize != 4096 || len(ha.KeyID) != PublicKeySize || len(recs) != len(msg)+1+TagSize {
		t.Errorf("header rs=%d idlen=%d, records %d bytes: want rs 4096, idlen 65, one record of %d", ha.RecordSize, len(ha.KeyID), len(recs), len(msg)+1+TagSize)
	}
	for _, body := range [][]byte{a, b} {
		pt, err := Decrypt(ua, keys.Auth, body)
		if err != nil || !bytes.Equal(pt, msg) {
			t.Errorf("Decrypt = %q, %v", pt, err)
		}
	}
}

func TestEncryptSizeLimits(t *testing.T) {
	ua, keys := newSubscriber(t)
	body, err := Encrypt(keys, make([]byte, MaxPlaintextSize))
	if err != nil {
		t.Fatalf("Encrypt of %d bytes: %v", MaxPlaintextSize, err)
	}
	if len(body) != MaxBodySize {
		t.Errorf("largest body = %d bytes, want %d", len(body), MaxBodySize)
	}
	if _, err := Decrypt(ua, keys.Auth, body); err != nil {
		t.Errorf("Decrypt of the largest body: %v", err)
	}
	if _, err := Encrypt(keys, make([]byte, MaxPlaintextSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Encrypt of %d bytes: %v, want ErrTooLarge", MaxPlaintextSize+1, err)
	}
	if _, err := EncryptPadded(keys, make([]byte, 10), MaxPlaintextSize-9); !errors.Is(err, ErrTooLarge) {
		t.Errorf("padding past the limit: %v, want ErrTooLarge", err)
	}
	padded, err := EncryptPadded(keys, []byte("hi"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Decrypt(ua, keys.Auth, padded); err != nil || string(pt) != "hi" {
		t.Errorf("padded Decrypt = %q, %v", pt, err)
	}
}

func TestParseKeys(t *testing.T) {
	_, keys := newSubscriber(t)
	p, a := enc(keys.P256DH), enc(keys.Auth)
	got, err := ParseKeys(p, a)
	if err != nil || !bytes.Equal(got.P256DH, keys.P256DH) || !bytes.Equal(got.Auth, keys.Auth) {
		t.Fatalf("ParseKeys = %v, %v", got, err)
	}
	// Firefox's getKey values may be re-encoded with padding by a client.
	if _, err := ParseKeys(p+"=", a+"=="); err != nil {
		t.Errorf("padded base64url: %v", err)
	}
	offCurve := bytes.Clone(keys.P256DH)
	offCurve[64] ^= 1
	compressed := append([]byte{0x02}, keys.P256DH[1:33]...)
	for name, c := range map[string][2]string{
		"not base64":      {"!!", a},
		"auth not base64": {p, "*"},
		"off curve":       {enc(offCurve), a},
		"compressed":      {enc(compressed), a},
		"infinity":        {enc([]byte{0}), a},
		"empty key":       {"", a},
		"short auth":      {p, enc(keys.Auth[:15])},
		"long auth":       {p, enc(append(keys.Auth, 0))},
	} {
		if _, err := ParseKeys(c[0], c[1]); err == nil {
			t.Errorf("%s: ParseKeys accepted it", name)
		}
		if _, err := Encrypt(Keys{P256DH: b64OrNil(c[0]), Auth: b64OrNil(c[1])}, []byte("x")); err == nil {
			t.Errorf("%s: Encrypt accepted it", name)
		}
	}
}

func b64OrNil(s string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return b
}

// Hostile or broken bodies must give ErrMalformed or ErrDecrypt, never a
// panic and never a plaintext.
func TestDecryptRejects(t *testing.T) {
	ua, keys := newSubscriber(t)
	good, err := Encrypt(keys, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newSubscriber(t)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	withRS := func(rs uint32) []byte {
		return mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[16:20], rs); return b })
	}
	// A body sealed with the right key but a wrong delimiter or padding, so
	// the record authenticates and only the padding rules can catch it.
	sealRaw := func(content []byte) []byte {
		as, _ := ecdh.P256().GenerateKey(rand.Reader)
		secret, _ := as.ECDH(ua.PublicKey())
		ikm, _ := webPushIKM(secret, keys.Auth, keys.P256DH, as.PublicKey().Bytes())
		salt := make([]byte, SaltSize)
		_, cek, nonce, _ := deriveKeyNonce(ikm, salt)
		gcm, _ := newGCM(cek)
		hdr := append(salt, 0, 0, 16, 0, 65)
		hdr = append(hdr, as.PublicKey().Bytes()...)
		return gcm.Seal(hdr, recordNonce(nonce, 0), content, nil)
	}
	cases := map[string]struct {
		body []byte
		want error
		key  *ecdh.PrivateKey
	}{
		"empty":                {nil, ErrMalformed, ua},
		"20 bytes":             {good[:20], ErrMalformed, ua},
		"header only":          {good[:86], ErrMalformed, ua},
		"key id past end":      {good[:50], ErrMalformed, ua},
		"record is only a tag": {good[:86+16], ErrMalformed, ua},
		"truncated record":     {good[:len(good)-1], ErrDecrypt, ua},
		"flipped ciphertext":   {mutate(func(b []byte) []byte { b[90] ^= 1; return b }), ErrDecrypt, ua},
		"flipped salt":         {mutate(func(b []byte) []byte { b[0] ^= 1; return b }), ErrDecrypt, ua},
		"rs 0":                 {withRS(0), ErrMalformed, ua},
		"rs 17":                {withRS(17), ErrMalformed, ua},
		"rs splits the record": {withRS(18), ErrDecrypt, ua},
		"idlen 0":              {mutate(func(b []byte) []byte { b[20] = 0; return b }), ErrMalformed, ua},
		"sender key off curve": {mutate(func(b []byte) []byte { b[21+64] ^= 1; return b }), ErrMalformed, ua},
		"wrong private key":    {good, ErrDecrypt, other},
		"all-zero record":      {sealRaw(make([]byte, 8)), ErrMalformed, ua},
		"non-final delimiter":  {sealRaw([]byte("hi\x01")), ErrMalformed, ua},
		"bad delimiter":        {sealRaw([]byte("hi\x03\x00")), ErrMalformed, ua},
		"padding before delim": {sealRaw([]byte("hi\x00\x00")), ErrMalformed, ua},
	}
	for name, c := range cases {
		pt, err := Decrypt(c.key, keys.Auth, c.body)
		if !errors.Is(err, c.want) || pt != nil {
			t.Errorf("%s: Decrypt = %q, %v; want %v", name, pt, err, c.want)
		}
	}
	if pt, err := Decrypt(ua, keys.Auth, sealRaw([]byte("hi\x02\x00\x00"))); err != nil || string(pt) != "hi" {
		t.Errorf("padded final record: %q, %v", pt, err)
	}
	wrongAuth := bytes.Clone(keys.Auth)
	wrongAuth[0] ^= 1
	if _, err := Decrypt(ua, wrongAuth, good); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong auth secret: %v, want ErrDecrypt", err)
	}
	if _, err := Decrypt(nil, keys.Auth, good); err == nil {
		t.Error("nil key accepted")
	}
}

// Multi-record streams: a final record followed by more data, and a stream
// cut at a record boundary, are both refused (RFC 8188 §2: truncation).
func TestOpenRecordBoundaries(t *testing.T) {
	ikm := make([]byte, 16)
	salt := make([]byte, SaltSize)
	pt := bytes.Repeat([]byte("abcdefgh"), 5) // 40 bytes in records of 8
	body, err := Seal(ikm, salt, nil, 25, pt, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(body, fixedKey(ikm)); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	const hdr = headerSize
	if _, err := Open(body[:hdr+25], fixedKey(ikm)); !errors.Is(err, ErrMalformed) {
		t.Errorf("cut after the first record: %v, want ErrMalformed", err)
	}
	// Drop the middle records: the first then decrypts, the final one is
	// then at the wrong sequence number.
	if _, err := Open(append(bytes.Clone(body[:hdr+25]), body[len(body)-(len(body)-hdr)%25:]...), fixedKey(ikm)); err == nil {
		t.Error("spliced stream accepted")
	}
	one, _ := Seal(ikm, salt, nil, 25, []byte("x"), 0)
	if _, err := Open(append(bytes.Clone(one), one[hdr:]...), fixedKey(ikm)); err == nil {
		t.Error("record after the final record accepted")
	}
	// Padding that overflows into padding-only records still decodes.
	padded, err := Seal(ikm, salt, nil, 20, []byte("abc"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(padded, fixedKey(ikm)); err != nil || string(got) != "abc" {
		t.Errorf("spilled padding: %q, %v", got, err)
	}
	keyErr := errors.New("no such key")
	if _, err := Open(body, func([]byte) ([]byte, error) { return nil, keyErr }); !errors.Is(err, keyErr) {
		t.Errorf("key lookup error = %v", err)
	}
}

func TestSealRejectsBadParameters(t *testing.T) {
	ikm, salt := make([]byte, 16), make([]byte, SaltSize)
	for name, f := range map[string]func() error{
		"short salt": func() error { _, err := Seal(ikm, salt[:15], nil, 4096, nil, 0); return err },
		"rs 17":      func() error { _, err := Seal(ikm, salt, nil, 17, nil, 0); return err },
		"long keyid": func() error { _, err := Seal(ikm, salt, make([]byte, 256), 4096, nil, 0); return err },
		"negative":   func() error { _, err := Seal(ikm, salt, nil, 4096, nil, -1); return err },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The smallest record size still makes progress: one byte per record.
	body, err := Seal(ikm, salt, nil, MinRecordSize, []byte("abc"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(body, fixedKey(ikm)); err != nil || string(got) != "abc" {
		t.Errorf("rs 18: %q, %v", got, err)
	}
}
