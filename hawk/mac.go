package hawk

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Artifacts are the request facts a Hawk MAC covers (hawk.md §2).
type Artifacts struct {
	TS            string // verbatim from the header
	Nonce         string
	Method        string // uppercased when normalized
	RequestTarget string // raw path and query as on the wire, including any public path prefix
	Host          string // lowercased when normalized; IPv6 without brackets
	Port          string // decimal
	Hash          string // payload hash or ""
	Ext           string
	App           string // Oz only; adds app/dlg lines when non-empty
	Dlg           string
}

// NormalizedString is the exact text that is MACed: one field per line,
// each line newline-terminated.
func NormalizedString(a Artifacts) string {
	return string(appendNormalized(nil, a))
}

// appendNormalized appends NormalizedString(a) to b.
func appendNormalized(b []byte, a Artifacts) []byte {
	for _, f := range [...]string{"hawk.1.header", a.TS, a.Nonce, strings.ToUpper(a.Method), a.RequestTarget,
		strings.ToLower(a.Host), a.Port, a.Hash, a.Ext} {
		b = append(b, f...)
		b = append(b, '\n')
	}
	// Standard Hawk appends Oz fields only when app is present; Mozilla's
	// servers ignore them, but no Sync client sends them either.
	if a.App != "" {
		b = append(b, a.App...)
		b = append(b, '\n')
		b = append(b, a.Dlg...)
		b = append(b, '\n')
	}
	return b
}

// MAC returns base64(HMAC-SHA256(key, NormalizedString(a))). The key is the
// ASCII text of the token server's "key" field, not its decoded bytes.
func MAC(key string, a Artifacts) string {
	var buf macBuf
	sum := buf.sum(key, a)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// macMatches reports, in time independent of where they differ, whether
// mac is MAC(key, a).
func macMatches(key string, a Artifacts, mac string) bool {
	var buf macBuf
	sum := buf.sum(key, a)
	var want, got [macLen]byte
	base64.StdEncoding.Encode(want[:], sum[:])
	if len(mac) != macLen {
		return false // the length of a MAC is no secret
	}
	copy(got[:], mac)
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// macLen is the length of a MAC as sent: 32 bytes in padded base64.
const macLen = 44

// macBuf holds the inner block of an HMAC on the stack: the padded key
// followed by the normalized string of a typical request, so that
// verifying one allocates nothing (a request's MAC is computed on every
// authenticated request).
type macBuf [sha256.BlockSize + 448]byte

// sum is HMAC-SHA256(key, NormalizedString(a)) (RFC 2104): the SHA-256 of
// the key XOR opad followed by the SHA-256 of the key XOR ipad followed by
// the message. Keys longer than a block and messages longer than the
// buffer take crypto/hmac.
func (buf *macBuf) sum(key string, a Artifacts) [sha256.Size]byte {
	msg := appendNormalized(buf[sha256.BlockSize:sha256.BlockSize], a)
	var out [sha256.Size]byte
	if len(key) > sha256.BlockSize || &msg[0] != &buf[sha256.BlockSize] {
		// Not msg: handing buf to the hash would move it to the heap.
		m := hmac.New(sha256.New, []byte(key))
		m.Write(appendNormalized(nil, a))
		copy(out[:], m.Sum(nil))
		return out
	}
	var pad [sha256.BlockSize]byte
	copy(pad[:], key)
	for i, k := range pad {
		buf[i] = k ^ 0x36
	}
	inner := sha256.Sum256(buf[:sha256.BlockSize+len(msg)])
	var outer [sha256.BlockSize + sha256.Size]byte
	for i, k := range pad {
		outer[i] = k ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

func macString(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// PayloadHash returns the Hawk payload hash of a body (hawk.md §4). The
// content type is reduced to its lowercased media type, since clients sign
// "application/json" even when they send "; charset=utf-8".
func PayloadHash(contentType string, body []byte) string {
	h := sha256.New()
	h.Write([]byte("hawk.1.payload\n"))
	h.Write([]byte(MediaType(contentType)))
	h.Write([]byte("\n"))
	h.Write(body)
	h.Write([]byte("\n"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// MediaType lowercases a Content-Type and strips its parameters, the way
// Hawk clients do before hashing (no full MIME parsing, so a sloppy header
// still hashes as the client computed it).
func MediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// TimestampMAC is the tsm of a stale-timestamp challenge: it proves to the
// client that the server time came from a holder of the key.
func TimestampMAC(key string, ts int64) string {
	return macString(key, "hawk.1.ts\n"+strconv.FormatInt(ts, 10)+"\n")
}

// StaleTimestampChallenge is the WWW-Authenticate value sent with a 401 for
// a timestamp outside the window, so clients can correct their clock.
func StaleTimestampChallenge(key string, now time.Time) string {
	ts := now.Unix()
	return `Hawk ts="` + strconv.FormatInt(ts, 10) + `", tsm="` + TimestampMAC(key, ts) + `", error="Stale timestamp"`
}
