package push

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParsePushHeadersAccepts(t *testing.T) {
	for name, c := range map[string]struct {
		h       http.Header
		hasBody bool
		want    PushHeaders
	}{
		"FxA aes128gcm":            {hdr("TTL", "3600", "Content-Encoding", "aes128gcm"), true, PushHeaders{TTL: 3600, Crypto: map[string]string{"encoding": "aes128gcm"}}},
		"no body":                  {hdr("TTL", "0"), false, PushHeaders{TTL: 0}},
		"no body ignores encoding": {hdr("TTL", "5", "Content-Encoding", "bogus"), false, PushHeaders{TTL: 5}},
		"capped TTL":               {hdr("TTL", "99999999"), false, PushHeaders{TTL: MaxTTL}},
		"TTL with blanks":          {hdr("TTL", " 60 "), false, PushHeaders{TTL: 60}},
		"topic":                    {hdr("TTL", "60", "Topic", "upd-ate_1=="), false, PushHeaders{TTL: 60, Topic: "upd-ate_1=="}},
		"32-char topic":            {hdr("TTL", "60", "Topic", strings.Repeat("a", 32)), false, PushHeaders{TTL: 60, Topic: strings.Repeat("a", 32)}},
		"urgency ignored":          {hdr("TTL", "60", "Urgency", "whenever"), false, PushHeaders{TTL: 60}},
		"aes128gcm with unrelated Crypto-Key": {hdr("TTL", "1", "Content-Encoding", "aes128gcm", "Crypto-Key", "p256ecdsa=BBBB"), true,
			PushHeaders{TTL: 1, Crypto: map[string]string{"encoding": "aes128gcm"}}},
		"aesgcm forwarded, quotes and padding stripped": {hdr("TTL", "1", "Content-Encoding", "aesgcm", "Encryption", `salt="c2FsdA=="; rs=4096`, "Crypto-Key", `dh="BCVx==";p256ecdsa="BA1H="`), true,
			PushHeaders{TTL: 1, Crypto: map[string]string{"encoding": "aesgcm", "encryption": "salt=c2FsdA; rs=4096", "crypto_key": "dh=BCVx;p256ecdsa=BA1H"}}},
		"aesgcm without Crypto-Key": {hdr("TTL", "1", "Content-Encoding", "aesgcm", "Encryption", "salt=abc"), true,
			PushHeaders{TTL: 1, Crypto: map[string]string{"encoding": "aesgcm", "encryption": "salt=abc"}}},
	} {
		got, err := ParsePushHeaders(c.h, c.hasBody)
		if err != nil {
			t.Errorf("%s: %+v", name, *err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, c.want)
		}
	}
}

// Each rejection carries autopush's status and errno; where several rules
// are broken, the first in autopush's order wins (TTL, encryption, then TTL
// sign and topic).
func TestParsePushHeadersRejects(t *testing.T) {
	for name, c := range map[string]struct {
		h         http.Header
		hasBody   bool
		wantErrno int
	}{
		"no TTL":                       {hdr(), false, ErrnoNoTTL},
		"empty TTL":                    {hdr("TTL", ""), false, ErrnoNoTTL},
		"TTL not a number":             {hdr("TTL", "1h"), false, ErrnoNoTTL},
		"TTL float":                    {hdr("TTL", "1.5"), false, ErrnoNoTTL},
		"TTL overflow":                 {hdr("TTL", "99999999999999999999"), false, ErrnoNoTTL},
		"negative TTL":                 {hdr("TTL", "-1"), false, ErrnoInvalidTTL},
		"no TTL beats encoding":        {hdr("Content-Encoding", "x"), true, ErrnoNoTTL},
		"encoding beats TTL sign":      {hdr("TTL", "-1", "Content-Encoding", "x"), true, ErrnoInvalidEncryption},
		"body without encoding":        {hdr("TTL", "1"), true, ErrnoInvalidEncryption},
		"unknown encoding":             {hdr("TTL", "1", "Content-Encoding", "gzip"), true, ErrnoInvalidEncryption},
		"encoding case":                {hdr("TTL", "1", "Content-Encoding", "AES128GCM"), true, ErrnoInvalidEncryption},
		"aes128gcm with salt":          {hdr("TTL", "1", "Content-Encoding", "aes128gcm", "Encryption", "salt=abc"), true, ErrnoInvalidEncryption},
		"aes128gcm with dh":            {hdr("TTL", "1", "Content-Encoding", "aes128gcm", "Crypto-Key", "dh=abc"), true, ErrnoInvalidEncryption},
		"aesgcm no Encryption":         {hdr("TTL", "1", "Content-Encoding", "aesgcm"), true, ErrnoInvalidEncryption},
		"aesgcm no salt":               {hdr("TTL", "1", "Content-Encoding", "aesgcm", "Encryption", "rs=10"), true, ErrnoInvalidEncryption},
		"aesgcm bad salt":              {hdr("TTL", "1", "Content-Encoding", "aesgcm", "Encryption", "salt=a+b"), true, ErrnoInvalidEncryption},
		"aesgcm bad dh":                {hdr("TTL", "1", "Content-Encoding", "aesgcm", "Encryption", "salt=ab", "Crypto-Key", "dh=a/b"), true, ErrnoInvalidEncryption},
		"aesgcm Crypto-Key without dh": {hdr("TTL", "1", "Content-Encoding", "aesgcm", "Encryption", "salt=ab", "Crypto-Key", "p256ecdsa=ab"), true, ErrnoInvalidEncryption},
		"topic too long":               {hdr("TTL", "1", "Topic", strings.Repeat("a", 33)), false, ErrnoInvalidTopic},
		"topic bad char":               {hdr("TTL", "1", "Topic", "a.b"), false, ErrnoInvalidTopic},
		"topic empty":                  {hdr("TTL", "1", "Topic", ""), false, ErrnoInvalidTopic},
		"topic only padding":           {hdr("TTL", "1", "Topic", "=="), false, ErrnoInvalidTopic},
	} {
		_, err := ParsePushHeaders(c.h, c.hasBody)
		if err == nil || err.Code != 400 || err.Errno != c.wantErrno || err.Message == "" {
			t.Errorf("%s: %+v, want 400 errno %d", name, err, c.wantErrno)
		}
	}
}
