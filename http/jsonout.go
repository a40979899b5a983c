package http

import (
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/weave-sync/weave"
)

// Responses are assembled by hand into pooled buffers: a 1,000-record GET
// through encoding/json reflection costs several times the allocations.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 (possible only in
// data imported from elsewhere) is replaced by U+FFFD so the output stays
// valid JSON. Newlines are always escaped, so every record fits on one line
// of application/newlines output.
func appendString(b []byte, s string) []byte {
	b = slices.Grow(b, len(s)+2)
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Payloads are mostly base64 and need no escape: skip them eight
		// bytes at a time.
		if i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
			continue
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i += n
				start = i
				continue
			}
			i += n
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes of s needs escaping or
// UTF-8 decoding: all are ASCII, none is a control, '"' or '\\'. It tests
// them at once: a byte below 0x20, or zero after XOR with '"' or '\\',
// borrows into its high bit when subtracted from (false borrows only ever
// follow a real one), and non-ASCII bytes have it already.
func plain8(s string) bool {
	w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	return (w|(w-lsb8*0x20)|((w^(lsb8*'"'))-lsb8)|((w^(lsb8*'\\'))-lsb8))&msb8 == 0
}

// appendTimestamp appends t as seconds with two decimals.
func appendTimestamp(b []byte, t weave.Timestamp) []byte {
	ms := int64(t)
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	cs := (ms % 1000) / 10
	return append(b, '.', byte('0'+cs/10), byte('0'+cs%10))
}

// appendBSO appends a BSO as returned to clients: id, modified, payload and
// sortindex (omitted when unset, as both reference servers do); never ttl.
func appendBSO(b []byte, o *weave.BSO) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, o.ID)
	b = append(b, `,"modified":`...)
	b = appendTimestamp(b, o.Modified)
	b = append(b, `,"payload":`...)
	b = appendString(b, o.Payload)
	if o.SortIndex != nil {
		b = append(b, `,"sortindex":`...)
		b = strconv.AppendInt(b, *o.SortIndex, 10)
	}
	return append(b, '}')
}

// appendKB appends bytes as kilobytes (bytes/1024) the way Python renders a
// float: always with a fractional part.
func appendKB(b []byte, bytes int64) []byte {
	kb := float64(bytes) / 1024
	n := len(b)
	b = strconv.AppendFloat(b, kb, 'f', -1, 64)
	for _, c := range b[n:] {
		if c == '.' {
			return b
		}
	}
	return append(b, '.', '0')
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// putBuf returns a buffer to the pool unless it grew very large, so one
// huge response does not pin memory forever.
func putBuf(b *[]byte) {
	if cap(*b) > 4<<20 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
