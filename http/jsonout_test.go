package http

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// refAppendString is appendString's contract spelled out one rune at a
// time: the oracle for the word-at-a-time fast path.
func refAppendString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\ufffd`)
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	b.WriteByte('"')
	return b.String()
}

func checkAppendString(t *testing.T, s string) {
	t.Helper()
	got := string(appendString([]byte("prefix"), s))
	if want := "prefix" + refAppendString(s); got != want {
		t.Fatalf("appendString(%q)\n got  %s\n want %s", s, got, want)
	}
	var back string
	if err := json.Unmarshal([]byte(got[len("prefix"):]), &back); err != nil {
		t.Fatalf("appendString(%q) = %s: not JSON: %v", s, got, err)
	}
	if utf8.ValidString(s) && back != s {
		t.Fatalf("appendString(%q) decodes to %q", s, back)
	}
}

// TestAppendString puts every byte value at every position of an
// eight-byte word, and multi-byte runes across word boundaries.
func TestAppendString(t *testing.T) {
	base := "eyJjaXBoZXJ0ZXh0IjoiQUJDRCJ9" // base64, nothing to escape
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			s := base[:pos] + string([]byte{byte(c)}) + base[pos:]
			checkAppendString(t, s)
		}
	}
	for _, s := range []string{
		"", "a", "1234567", "12345678", "123456789",
		`{"ciphertext":"abc","IV":"def","hmac":"0123"}`,
		"1234567é", "123456é78", "1234567€89", "123456\U0001F600xyz",
		"\xff\xfe12345678", "1234567\xe2\x82", "\u2028\u2029 stay as they are",
		strings.Repeat("\\", 17), strings.Repeat("\x1f", 9), strings.Repeat("\x7f", 16),
	} {
		checkAppendString(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain payload of some length", `{"a":"b\\c"}`, "x\ny\tz\x00\x1f", "\xff\xc3(", "é€\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAppendString(t, s)
	})
}

func BenchmarkAppendPayload(b *testing.B) {
	p := `{"ciphertext":"` + strings.Repeat("eyJjaXBoZXJ0ZXh0", 25) + `","IV":"0123456789abcdefABCDEF==","hmac":"` + strings.Repeat("0f", 32) + `"}`
	buf := make([]byte, 0, 2*len(p))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendString(buf[:0], p)
	}
}
