package vapid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// RFC 8292 §2.4's example: a token for https://push.example.net expiring at
// 1453523768, signed by the published key. It is a third party's signature,
// so accepting it shows the verifier reads real ES256 JWTs, not only its own.
const (
	rfcToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA"
	rfcKey   = "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs"
	rfcAud   = "https://push.example.net"
	rfcExp   = 1453523768
)

func at(unix int64) func() time.Time { return func() time.Time { return time.Unix(unix, 0) } }

func TestRFC8292Example(t *testing.T) {
	h, err := ParseAuthorization("vapid t="+rfcToken+", k="+rfcKey, "")
	if err != nil {
		t.Fatal(err)
	}
	if h.Scheme != "vapid" || h.Token != rfcToken || len(h.Key) != 65 {
		t.Fatalf("header = %+v", h)
	}
	v := &Verifier{Origin: rfcAud, Now: at(rfcExp - 3600), RequireSubject: true}
	c, err := v.Verify(h)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != rfcAud || c.Subject != "mailto:push@example.com" || c.Expiry.Unix() != rfcExp {
		t.Errorf("claims = %+v", c)
	}
	for name, tc := range map[string]struct {
		v    Verifier
		want error
	}{
		"other origin":          {Verifier{Origin: "https://push.example.com", Now: at(rfcExp - 3600)}, ErrInvalidAudience},
		"origin with path":      {Verifier{Origin: rfcAud + "/", Now: at(rfcExp - 3600)}, ErrInvalidAudience},
		"expired":               {Verifier{Origin: rfcAud, Now: at(rfcExp + 61)}, ErrExpired},
		"expired within leeway": {Verifier{Origin: rfcAud, Now: at(rfcExp + 59)}, nil},
		"exp 24h ahead":         {Verifier{Origin: rfcAud, Now: at(rfcExp - 24*3600)}, nil},
		"exp over 24h ahead":    {Verifier{Origin: rfcAud, Now: at(rfcExp - 24*3600 - 1)}, ErrExpiryTooLong},
	} {
		_, err := tc.v.Verify(h)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// autopush still takes the pre-RFC forms: "WebPush <JWT>" or "Bearer <JWT>"
// with the key in Crypto-Key's p256ecdsa parameter.
func TestLegacySchemes(t *testing.T) {
	v := &Verifier{Origin: rfcAud, Now: at(rfcExp - 60)}
	for _, c := range []struct{ auth, cryptoKey string }{
		{"WebPush " + rfcToken, "p256ecdsa=" + rfcKey},
		{"webpush " + rfcToken, `keyid="p256dh";dh="BDw9T0eImd4ax818VcYqDK_DOhcu",p256ecdsa="` + rfcKey + `"`},
		{"Bearer " + rfcToken, "dh=abc; p256ecdsa=" + rfcKey + "=="},
		{"VAPID t=" + rfcToken + ",k=" + rfcKey, ""},
		{"vapid k=" + rfcKey + " , t=" + rfcToken, "p256ecdsa=ignored"},
	} {
		h, err := ParseAuthorization(c.auth, c.cryptoKey)
		if err != nil {
			t.Errorf("%q / %q: %v", c.auth, c.cryptoKey, err)
			continue
		}
		if _, err := v.Verify(h); err != nil {
			t.Errorf("%q: Verify: %v", c.auth, err)
		}
	}
	// Standard base64 with padding for the key: wrong per RFC 8292, but
	// autopush accepts it and so do we.
	raw, _ := base64.RawURLEncoding.DecodeString(rfcKey)
	if h, err := ParseAuthorization("vapid t="+rfcToken+", k="+base64.StdEncoding.EncodeToString(raw), ""); err != nil || !h.Matches(raw) {
		t.Errorf("standard base64 key: %v", err)
	}
}

func TestParseAuthorizationRejects(t *testing.T) {
	compressed := base64.RawURLEncoding.EncodeToString(append([]byte{2}, make([]byte, 32)...))
	raw, _ := base64.RawURLEncoding.DecodeString(rfcKey)
	offCurve := append([]byte(nil), raw...)
	offCurve[64] ^= 1
	for name, c := range map[string]struct {
		auth, cryptoKey string
		want            error
	}{
		"empty":                  {"", "", ErrUnknownScheme},
		"basic":                  {"Basic dXNlcjpwYXNz", "", ErrUnknownScheme},
		"scheme only":            {"vapid", "", ErrMissingToken},
		"scheme and blank":       {"vapid   ", "", ErrMissingToken},
		"no t":                   {"vapid k=" + rfcKey, "", ErrMissingToken},
		"empty t":                {"vapid t=, k=" + rfcKey, "", ErrMissingToken},
		"no k":                   {"vapid t=" + rfcToken, "", ErrMissingKey},
		"k not base64":           {"vapid t=" + rfcToken + ", k=***", "", ErrInvalidKey},
		"k compressed":           {"vapid t=" + rfcToken + ", k=" + compressed, "", ErrInvalidKey},
		"k off curve":            {"vapid t=" + rfcToken + ", k=" + base64.RawURLEncoding.EncodeToString(offCurve), "", ErrInvalidKey},
		"webpush no crypto-key":  {"WebPush " + rfcToken, "", ErrMissingCryptoKey},
		"webpush only dh":        {"WebPush " + rfcToken, "dh=" + rfcKey, ErrMissingCryptoKey},
		"webpush no token":       {"WebPush ", "p256ecdsa=" + rfcKey, ErrMissingToken},
		"huge header":            {"vapid t=" + strings.Repeat("a", 5000) + ", k=" + rfcKey, "", ErrInvalidToken},
		"bearer bad crypto-key":  {"Bearer " + rfcToken, "p256ecdsa=!!", ErrInvalidKey},
		"vapid key in CryptoKey": {"vapid t=" + rfcToken, "p256ecdsa=" + rfcKey, ErrMissingKey},
	} {
		if _, err := ParseAuthorization(c.auth, c.cryptoKey); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// Every rejection maps to the status and errno autopush answers with; the
// push endpoint renders them, so pin them here.
func TestErrorsCarryAutopushStatus(t *testing.T) {
	for _, e := range []error{ErrUnknownScheme, ErrMissingToken, ErrMissingKey, ErrInvalidKey, ErrInvalidToken,
		ErrInvalidAudience, ErrExpired, ErrExpiryTooLong, ErrSubject, ErrKeyMismatch} {
		var ve *Error
		if !errors.As(e, &ve) || ve.Status != 401 || ve.Errno != 109 || ve.Message == "" {
			t.Errorf("%v: %+v, want 401 errno 109", e, ve)
		}
	}
	var ve *Error
	if !errors.As(ErrMissingCryptoKey, &ve) || ve.Status != 400 || ve.Errno != 110 {
		t.Errorf("missing Crypto-Key: %+v, want 400 errno 110", ve)
	}
	// Wrapped errors still yield the sentinel's status.
	_, err := (&Verifier{Origin: rfcAud}).Verify(Header{Token: "x.y.z", Key: pubOf(mustKey(t))})
	if !errors.As(err, &ve) || ve.Status != 401 || ve.Errno != 109 {
		t.Errorf("bad token: %v → %+v", err, ve)
	}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k *ecdsa.PrivateKey) []byte { b, _ := k.PublicKey.Bytes(); return b }

func TestSignerRoundTrip(t *testing.T) {
	key := mustKey(t)
	now := time.Unix(1_800_000_000, 0)
	s, err := NewSigner(key, "mailto:admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return now }
	auth, err := s.Authorization("https://Push.Example.org:443/wpush/v1/abc?x=1", 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(auth, "vapid t=") || !strings.HasSuffix(auth, ", k="+s.PublicKey()) {
		t.Fatalf("Authorization = %q", auth)
	}
	h, err := ParseAuthorization(auth, "")
	if err != nil {
		t.Fatal(err)
	}
	// The JOSE header is what RFC 8292 §2 shows: ES256, typ JWT.
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(h.Token, ".")[0])
	var jh map[string]string
	if err := json.Unmarshal(hdr, &jh); err != nil || jh["alg"] != "ES256" || jh["typ"] != "JWT" {
		t.Errorf("JOSE header %s", hdr)
	}
	v := &Verifier{Origin: "https://push.example.org", RequireSubject: true, Now: func() time.Time { return now }}
	c, err := v.Verify(h)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "mailto:admin@example.com" || !c.Expiry.Equal(now.Add(12*time.Hour)) {
		t.Errorf("claims = %+v", c)
	}
	if !h.Matches(pubOf(key)) || h.Matches(pubOf(mustKey(t))) {
		t.Error("Matches does not tell the signing key from another")
	}
	for _, ttl := range []time.Duration{0, -time.Second, MaxExpiry + time.Second} {
		if _, err := s.Authorization("https://push.example.org/x", ttl); err == nil {
			t.Errorf("ttl %v accepted", ttl)
		}
	}
	if _, err := s.Authorization("ftp://push.example.org/x", time.Hour); err == nil {
		t.Error("non-http endpoint accepted")
	}
	for _, sub := range []string{"", "admin@example.com", "mailto:", "http://example.com"} {
		if _, err := NewSigner(key, sub); err == nil {
			t.Errorf("subject %q accepted", sub)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewSigner(p384, "mailto:a@b.c"); err == nil {
		t.Error("P-384 key accepted")
	}
}

// token builds a JWT by hand, so tests can produce what no library would:
// other algorithms, bad claim types, a signature by a different key.
func token(t testing.TB, header, claims string, sign func(input string) []byte) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return in + "." + base64.RawURLEncoding.EncodeToString(sign(in))
}

func es256(k *ecdsa.PrivateKey) func(string) []byte {
	return func(in string) []byte {
		sum := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func TestVerifyRejectsHostileTokens(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	pub := pubOf(key)
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Hour).Unix()
	good := func(claims string) string { return token(t, `{"typ":"JWT","alg":"ES256"}`, claims, es256(key)) }
	claims := `{"aud":"https://push.example.org","exp":` + itoa(exp) + `,"sub":"mailto:a@example.org"}`
	v := &Verifier{Origin: "https://push.example.org", Now: func() time.Time { return now }}
	if _, err := v.Verify(Header{Token: good(claims), Key: pub}); err != nil {
		t.Fatalf("control token rejected: %v", err)
	}
	hmacWithPub := func(in string) []byte { m := hmac.New(sha256.New, pub); m.Write([]byte(in)); return m.Sum(nil) }
	flipped := []byte(good(claims))
	flipped[len(flipped)-5] ^= 1
	for name, c := range map[string]struct {
		tok  string
		key  []byte
		want error
	}{
		"alg none":           {token(t, `{"alg":"none"}`, claims, func(string) []byte { return nil }), pub, ErrInvalidToken},
		"HS256 with pub key": {token(t, `{"alg":"HS256"}`, claims, hmacWithPub), pub, ErrInvalidToken},
		"ES384 header":       {token(t, `{"alg":"ES384"}`, claims, es256(key)), pub, ErrInvalidToken},
		"other signer":       {token(t, `{"alg":"ES256"}`, claims, es256(other)), pub, ErrInvalidToken},
		"flipped signature":  {string(flipped), pub, ErrInvalidToken},
		"DER signature": {token(t, `{"alg":"ES256"}`, claims, func(in string) []byte {
			sum := sha256.Sum256([]byte(in))
			d, _ := ecdsa.SignASN1(rand.Reader, key, sum[:])
			return d
		}), pub, ErrInvalidToken},
		"two segments":     {strings.Join(strings.Split(good(claims), ".")[:2], "."), pub, ErrInvalidToken},
		"four segments":    {good(claims) + ".x", pub, ErrInvalidToken},
		"claims not JSON":  {good(`not json`), pub, ErrInvalidToken},
		"exp as string":    {good(`{"aud":"https://push.example.org","exp":"` + itoa(exp) + `"}`), pub, ErrInvalidToken},
		"no exp":           {good(`{"aud":"https://push.example.org"}`), pub, ErrInvalidToken},
		"no aud":           {good(`{"exp":` + itoa(exp) + `}`), pub, ErrInvalidAudience},
		"aud with path":    {good(`{"aud":"https://push.example.org/wpush","exp":` + itoa(exp) + `}`), pub, ErrInvalidAudience},
		"aud other scheme": {good(`{"aud":"http://push.example.org","exp":` + itoa(exp) + `}`), pub, ErrInvalidAudience},
		"aud number":       {good(`{"aud":1,"exp":` + itoa(exp) + `}`), pub, ErrInvalidToken},
		"exp far future":   {good(`{"aud":"https://push.example.org","exp":99999999999}`), pub, ErrExpiryTooLong},
		"exp long ago":     {good(`{"aud":"https://push.example.org","exp":1}`), pub, ErrExpired},
		"key not a point":  {good(claims), pub[:64], ErrInvalidKey},
		"empty token":      {"", pub, ErrInvalidToken},
	} {
		if _, err := v.Verify(Header{Token: c.tok, Key: c.key}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// aud as an array holding the origin is legal JWT and accepted.
	if _, err := v.Verify(Header{Token: good(`{"aud":["x","https://push.example.org"],"exp":` + itoa(exp) + `}`), Key: pub}); err != nil {
		t.Errorf("aud array: %v", err)
	}
	// sub is only checked when required.
	strict := *v
	strict.RequireSubject = true
	for sub, ok := range map[string]bool{
		`"mailto:a@example.org"`: true, `"https://example.org/contact"`: true,
		`"mailto:"`: false, `"a@example.org"`: false, `null`: false, `""`: false,
	} {
		tok := good(`{"aud":"https://push.example.org","exp":` + itoa(exp) + `,"sub":` + sub + `}`)
		_, err := strict.Verify(Header{Token: tok, Key: pub})
		if ok != (err == nil) || (!ok && !errors.Is(err, ErrSubject)) {
			t.Errorf("sub %s required: %v", sub, err)
		}
		if _, err := v.Verify(Header{Token: tok, Key: pub}); err != nil {
			t.Errorf("sub %s not required: %v", sub, err)
		}
	}
	noSub := good(`{"aud":"https://push.example.org","exp":` + itoa(exp) + `}`)
	if _, err := strict.Verify(Header{Token: noSub, Key: pub}); !errors.Is(err, ErrSubject) {
		t.Errorf("missing sub required: %v", err)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://push.example.org/wpush/v1/x": "https://push.example.org",
		"https://PUSH.example.org:443/":       "https://push.example.org",
		"http://127.0.0.1:8080/wpush/v1/x":    "http://127.0.0.1:8080",
		"http://127.0.0.1:80/x":               "http://127.0.0.1",
		"https://[::1]:8443/x":                "https://[::1]:8443",
		"HTTPS://push.example.org:8443":       "https://push.example.org:8443",
	} {
		if got, err := Origin(in); err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "push.example.org", "wss://push.example.org/", "https:///x", "://"} {
		if got, err := Origin(bad); err == nil {
			t.Errorf("Origin(%q) = %q", bad, got)
		}
	}
}

func TestPrivateKeyEncoding(t *testing.T) {
	k := mustKey(t)
	s, err := EncodePrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(s)
	if err != nil || !back.Equal(k) {
		t.Fatalf("round trip: %v", err)
	}
	if len(s) != 43 {
		t.Errorf("encoded key is %d chars, want 43 (32 bytes base64url)", len(s))
	}
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), base64.RawURLEncoding.EncodeToString(make([]byte, 31))} {
		if _, err := ParsePrivateKey(bad); err == nil {
			t.Errorf("ParsePrivateKey(%q) accepted", bad)
		}
	}
}

// FuzzVerify: arbitrary Authorization and Crypto-Key headers never panic and
// every rejection is an *Error with autopush's status.
func FuzzVerify(f *testing.F) {
	f.Add("vapid t="+rfcToken+", k="+rfcKey, "")
	f.Add("WebPush "+rfcToken, "p256ecdsa="+rfcKey)
	f.Add("vapid t=a.b.c, k="+rfcKey, "")
	f.Add("bearer x", `dh="a";p256ecdsa="`+rfcKey+`"`)
	v := &Verifier{Origin: rfcAud, Now: at(rfcExp - 60)}
	f.Fuzz(func(t *testing.T, auth, cryptoKey string) {
		h, err := ParseAuthorization(auth, cryptoKey)
		if err == nil {
			_, err = v.Verify(h)
		}
		var ve *Error
		if err != nil && (!errors.As(err, &ve) || (ve.Status != 401 && ve.Status != 400)) {
			t.Fatalf("%q %q: %v is not an autopush-status error", auth, cryptoKey, err)
		}
	})
}
