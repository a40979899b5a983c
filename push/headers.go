package push

import (
	"net/http"
	"strconv"
	"strings"
)

// MaxTTL caps a message's TTL: 30 days, as autopush does. A larger TTL is not
// an error; it is lowered and the effective value echoed in the response.
const MaxTTL = 30 * 24 * 60 * 60

// MaxBodySize is the largest push body accepted. RFC 8030 §7.2 forbids
// refusing 4096 bytes; autopush takes up to 5630 (its max_data_bytes, room for
// 4096 bytes of aesgcm payload in base64), and answers 413 errno 104 above.
const MaxBodySize = 5630

// PushHeaders is what the endpoint keeps of a push request's headers.
type PushHeaders struct {
	TTL   int64  // seconds, 0..MaxTTL; 0 means deliver now or never
	Topic string // "" when absent; a newer message with the same topic replaces the stored one
	// Crypto is passed to the browser as the notification's "headers":
	// "encoding" and, for legacy aesgcm, "encryption" and "crypto_key".
	// Empty for a message without a body.
	Crypto map[string]string
}

// ParsePushHeaders checks a Web Push request's headers (RFC 8030 §5) the way
// autopush does, in its order, so senders get the same error: TTL missing or
// not an integer → 400/111; a body without a known Content-Encoding, aes128gcm
// with aesgcm's salt/dh parameters, or aesgcm without a salt → 400/110; a
// negative TTL → 400/114; a Topic longer than 32 characters or outside the
// base64url alphabet → 400/113. Urgency is accepted and ignored, as autopush
// does. hasBody says whether the request carries a payload.
func ParsePushHeaders(h http.Header, hasBody bool) (PushHeaders, *HTTPError) {
	ttl, err := strconv.ParseInt(strings.TrimSpace(h.Get("TTL")), 10, 64)
	if err != nil {
		return PushHeaders{}, &HTTPError{400, ErrnoNoTTL, "TTL header missing or not an integer"}
	}
	ttl = min(ttl, MaxTTL)
	var p PushHeaders
	p.TTL = ttl
	if hasBody {
		c, e := cryptoHeaders(h)
		if e != nil {
			return PushHeaders{}, e
		}
		p.Crypto = c
	}
	if ttl < 0 {
		return PushHeaders{}, &HTTPError{400, ErrnoInvalidTTL, "TTL must not be negative"}
	}
	if topic, ok := h["Topic"]; ok {
		t := ""
		if len(topic) > 0 {
			t = topic[0]
		}
		if len(t) > 32 || !isBase64URL(t) {
			return PushHeaders{}, &HTTPError{400, ErrnoInvalidTopic, "Topic must be at most 32 characters of the base64url alphabet"}
		}
		p.Topic = t
	}
	return p, nil
}

func cryptoHeaders(h http.Header) (map[string]string, *HTTPError) {
	bad := func(msg string) *HTTPError { return &HTTPError{400, ErrnoInvalidEncryption, msg} }
	encoding := h.Get("Content-Encoding")
	out := map[string]string{"encoding": encoding}
	encryption, hasEncryption := headerValue(h, "Encryption")
	cryptoKey, hasCryptoKey := headerValue(h, "Crypto-Key")
	switch encoding {
	case "":
		return nil, bad("Content-Encoding header missing")
	case "aes128gcm":
		// The salt and sender key travel in the body; header copies of them
		// mean the sender mixed up the two codings.
		if hasEncryption && paramValue(encryption, "salt") != "" {
			return nil, bad("aes128gcm does not take a salt in the Encryption header")
		}
		if hasCryptoKey && paramValue(cryptoKey, "dh") != "" {
			return nil, bad("aes128gcm does not take dh in the Crypto-Key header")
		}
	case "aesgcm":
		if !hasEncryption {
			return nil, bad("aesgcm needs an Encryption header")
		}
		if !isBase64URL(paramValue(encryption, "salt")) {
			return nil, bad("aesgcm needs a base64url salt in the Encryption header")
		}
		out["encryption"] = stripPadding(encryption)
		if hasCryptoKey {
			if !isBase64URL(paramValue(cryptoKey, "dh")) {
				return nil, bad("aesgcm needs a base64url dh in the Crypto-Key header")
			}
			out["crypto_key"] = stripPadding(cryptoKey)
		}
	default:
		return nil, bad("Content-Encoding must be aes128gcm (or legacy aesgcm)")
	}
	return out, nil
}

func headerValue(h http.Header, name string) (string, bool) {
	v, ok := h[http.CanonicalHeaderKey(name)]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// paramValue finds name=value in a Crypto-Key/Encryption style header
// (sections split by ",", parameters by ";", values maybe quoted).
func paramValue(header, name string) string {
	for section := range strings.SplitSeq(header, ",") {
		for param := range strings.SplitSeq(section, ";") {
			k, v, ok := strings.Cut(param, "=")
			if ok && strings.TrimSpace(k) == name {
				return strings.Trim(v, ` "`)
			}
		}
	}
	return ""
}

// isBase64URL: at least one base64url character, then only "=" padding.
func isBase64URL(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// stripPadding removes quotes and the "=" padding at the end of each
// parameter's value, the form Firefox's aesgcm decoder is given by autopush.
func stripPadding(v string) string {
	v = strings.ReplaceAll(v, `"`, "")
	var b strings.Builder
	for len(v) > 0 {
		end := strings.IndexAny(v, ",;")
		if end < 0 {
			end = len(v)
		}
		param := v[:end]
		if k, val, ok := strings.Cut(param, "="); ok {
			param = k + "=" + strings.TrimRight(val, "= ")
			if trailing := len(val) - len(strings.TrimRight(val, " ")); trailing > 0 {
				param += val[len(val)-trailing:]
			}
		}
		b.WriteString(param)
		if end < len(v) {
			b.WriteByte(v[end])
			end++
		}
		v = v[end:]
	}
	return b.String()
}
