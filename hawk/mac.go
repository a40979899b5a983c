package hawk

import (
	"crypto/hmac"
	"crypto/sha256"
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
	var b strings.Builder
	b.Grow(64 + len(a.TS) + len(a.Nonce) + len(a.RequestTarget) + len(a.Host) + len(a.Hash) + len(a.Ext))
	for _, f := range [...]string{"hawk.1.header", a.TS, a.Nonce, strings.ToUpper(a.Method), a.RequestTarget,
		strings.ToLower(a.Host), a.Port, a.Hash, a.Ext} {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	// Standard Hawk appends Oz fields only when app is present; Mozilla's
	// servers ignore them, but no Sync client sends them either.
	if a.App != "" {
		b.WriteString(a.App)
		b.WriteByte('\n')
		b.WriteString(a.Dlg)
		b.WriteByte('\n')
	}
	return b.String()
}

// MAC returns base64(HMAC-SHA256(key, NormalizedString(a))). The key is the
// ASCII text of the token server's "key" field, not its decoded bytes.
func MAC(key string, a Artifacts) string {
	return macString(key, NormalizedString(a))
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
