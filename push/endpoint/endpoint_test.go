package endpoint

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"
)

const (
	uaid = "0123456789abcdef0123456789abcdef"
	chid = "87ca7290-4cdd-434e-8f9c-b76514cd3977"
)

func key(t testing.TB) []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

func codec(t testing.TB, keys ...[]byte) *Codec {
	t.Helper()
	c, err := NewCodec(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func split(t testing.TB, path string) (string, string) {
	t.Helper()
	v, tok, ok := strings.Cut(path, "/")
	if !ok {
		t.Fatalf("path %q has no version", path)
	}
	return v, tok
}

func TestRoundTrip(t *testing.T) {
	c := codec(t, key(t))
	hash := sha256.Sum256([]byte("a VAPID key"))
	for _, sub := range []Subscription{
		{UAID: uaid, ChannelID: chid},
		{UAID: uaid, ChannelID: chid, KeyHash: hash[:]},
	} {
		p1, err := c.Path(sub)
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := c.Path(sub)
		if p1 == p2 {
			t.Error("two tokens for one subscription are equal; the nonce is not fresh")
		}
		wantV := V1
		if sub.Restricted() {
			wantV = V2
		}
		for _, p := range []string{p1, p2} {
			v, tok := split(t, p)
			got, err := c.Parse(v, tok)
			if v != wantV || err != nil || got.UAID != sub.UAID || got.ChannelID != sub.ChannelID || !bytes.Equal(got.KeyHash, sub.KeyHash) {
				t.Errorf("%s: Parse = %+v, %v; want %+v", p, got, err, sub)
			}
		}
		// FxA keeps pushCallback in 255 characters; leave room for a long host.
		if url := "https://push.a-rather-long-hostname.example.org:8443/wpush/" + p1; len(url) > 200 {
			t.Errorf("endpoint URL is %d characters", len(url))
		}
	}
	// An upper-case channel ID names the same channel; it comes back canonical.
	p, err := c.Path(Subscription{UAID: uaid, ChannelID: strings.ToUpper(chid)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Parse(split(t, p)); err != nil || got.ChannelID != chid {
		t.Errorf("upper-case channel ID: %+v, %v", got, err)
	}
}

// Only tokens this service minted are accepted: every single-character
// change, truncation, other key, or other version fails the same way.
func TestParseRejects(t *testing.T) {
	c := codec(t, key(t))
	hash := sha256.Sum256([]byte("k"))
	p1, _ := c.Path(Subscription{UAID: uaid, ChannelID: chid})
	p2, _ := c.Path(Subscription{UAID: uaid, ChannelID: chid, KeyHash: hash[:]})
	_, t1 := split(t, p1)
	_, t2 := split(t, p2)
	other, _ := codec(t, key(t)).Path(Subscription{UAID: uaid, ChannelID: chid})
	_, tOther := split(t, other)
	cases := map[string][2]string{
		"other key":         {V1, tOther},
		"empty":             {V1, ""},
		"truncated":         {V1, t1[:len(t1)-1]},
		"extended":          {V1, t1 + "A"},
		"v2 token as v1":    {V1, t2},
		"v1 token as v2":    {V2, t1},
		"unknown version":   {"v3", t1},
		"no version":        {"", t1},
		"padded":            {V1, t1 + "=="},
		"standard alphabet": {V1, "+" + t1[1:]},
		"not base64":        {V1, strings.Repeat("!", len(t1))},
	}
	for i := range t1 {
		b := []byte(t1)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		cases["changed char "+strconv.Itoa(i)] = [2]string{V1, string(b)}
	}
	for name, c2 := range cases {
		if got, err := c.Parse(c2[0], c2[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse = %+v, %v", name, got, err)
		}
	}
}

// Rotation: tokens minted under the old key keep working while it is
// listed, new tokens use the new key, and dropping the old key retires them.
func TestKeyRotation(t *testing.T) {
	oldK, newK := key(t), key(t)
	p, _ := codec(t, oldK).Path(Subscription{UAID: uaid, ChannelID: chid})
	v, tok := split(t, p)
	rotated := codec(t, newK, oldK)
	if _, err := rotated.Parse(v, tok); err != nil {
		t.Errorf("old token after rotation: %v", err)
	}
	p2, _ := rotated.Path(Subscription{UAID: uaid, ChannelID: chid})
	if _, err := codec(t, newK).Parse(split(t, p2)); err != nil {
		t.Errorf("new token not minted with the new key: %v", err)
	}
	if _, err := codec(t, newK).Parse(v, tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("retired key still accepted: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	for name, keys := range map[string][][]byte{
		"no key":    nil,
		"short key": {make([]byte, 16)},
		"one bad":   {make([]byte, 32), make([]byte, 31)},
	} {
		if _, err := NewCodec(keys...); err == nil {
			t.Errorf("NewCodec %s: accepted", name)
		}
	}
	c := codec(t, key(t))
	for name, sub := range map[string]Subscription{
		"upper UAID":     {UAID: strings.ToUpper(uaid), ChannelID: chid},
		"short UAID":     {UAID: uaid[:30], ChannelID: chid},
		"dashed UAID":    {UAID: formatUUID(make([]byte, 16)), ChannelID: chid},
		"chid no dashes": {UAID: uaid, ChannelID: strings.ReplaceAll(chid, "-", "")},
		"chid not hex":   {UAID: uaid, ChannelID: "zzca7290-4cdd-434e-8f9c-b76514cd3977"},
		"chid braces":    {UAID: uaid, ChannelID: "{" + chid[1:35] + "}"},
		"short hash":     {UAID: uaid, ChannelID: chid, KeyHash: make([]byte, 16)},
	} {
		if p, err := c.Path(sub); err == nil {
			t.Errorf("Path %s: %q", name, p)
		}
	}
}

func FuzzParse(f *testing.F) {
	c := codec(f, make([]byte, KeySize))
	p, _ := c.Path(Subscription{UAID: uaid, ChannelID: chid})
	v, tok := split(f, p)
	f.Add(v, tok)
	f.Add("v2", tok+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("v1", "")
	f.Fuzz(func(t *testing.T, version, token string) {
		s, err := c.Parse(version, token)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatal(err)
			}
			return
		}
		if len(s.UAID) != 32 || len(s.ChannelID) != 36 {
			t.Fatalf("parsed %+v", s)
		}
	})
}
