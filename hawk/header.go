// Package hawk implements the header mode of Hawk as Firefox Sync uses it
// (spec: hawk.md): parsing and verifying request Authorization headers on the
// server, and signing requests on the client (tests, load generator).
//
// Sync never uses bewits, Server-Authorization or Oz; the parser still
// accepts app/dlg so the MAC matches standard Hawk clients if one sends them.
package hawk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header is a parsed Authorization: Hawk header. String fields are exactly
// as sent (after unquoting) because the MAC covers them verbatim.
type Header struct {
	ID    string
	TS    string // decimal seconds, verbatim
	Nonce string
	MAC   string
	Hash  string // optional payload hash
	Ext   string // optional application data
	App   string // Oz; unused by Sync
	Dlg   string // Oz; unused by Sync

	// Timestamp is TS as a number.
	Timestamp int64
}

// ErrMalformed reports an Authorization header that is not a usable Hawk
// header: wrong scheme, bad syntax, missing attributes or a non-integer ts.
var ErrMalformed = errors.New("hawk: malformed authorization header")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseHeader parses an Authorization header value. The scheme is matched
// case-insensitively; values may be bare tokens or quoted strings with
// backslash escapes (commas inside quotes are fine); unknown attributes are
// ignored (they are not covered by the MAC) but duplicates are rejected.
func ParseHeader(value string) (Header, error) {
	var h Header
	s := strings.TrimLeft(value, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		i = len(s)
	}
	if !strings.EqualFold(s[:i], "Hawk") {
		return h, malformed("scheme is not Hawk")
	}
	p := parser{s: s[i:]}
	seen := map[string]bool{}
	p.skipSpace()
	for !p.done() {
		if len(seen) > 0 {
			if !p.consume(',') {
				return h, malformed("expected ',' at offset %d", p.pos)
			}
			p.skipSpace()
		}
		key := p.token()
		if key == "" {
			return h, malformed("expected attribute name at offset %d", p.pos)
		}
		p.skipSpace()
		if !p.consume('=') {
			return h, malformed("expected '=' after %q", key)
		}
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return h, err
		}
		if seen[key] {
			return h, malformed("duplicate attribute %q", key)
		}
		seen[key] = true
		switch key {
		case "id":
			h.ID = val
		case "ts":
			h.TS = val
		case "nonce":
			h.Nonce = val
		case "mac":
			h.MAC = val
		case "hash":
			h.Hash = val
		case "ext":
			h.Ext = val
		case "app":
			h.App = val
		case "dlg":
			h.Dlg = val
		}
		p.skipSpace()
	}
	switch {
	case h.ID == "":
		return h, malformed("missing id")
	case h.TS == "":
		return h, malformed("missing ts")
	case h.Nonce == "":
		return h, malformed("missing nonce")
	case h.MAC == "":
		return h, malformed("missing mac")
	}
	ts, err := parseTS(h.TS)
	if err != nil {
		return h, err
	}
	h.Timestamp = ts
	return h, nil
}

// parseTS accepts only plain decimal digits: strconv would also take a sign,
// which no client sends and which would make two spellings of one time.
func parseTS(s string) (int64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, malformed("ts %q is not an integer", s)
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, malformed("ts %q out of range", s)
	}
	return ts, nil
}

type parser struct {
	s   string
	pos int
}

func (p *parser) done() bool { return p.pos >= len(p.s) }

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *parser) consume(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// token reads [A-Za-z0-9_-]*.
func (p *parser) token() string {
	start := p.pos
	for p.pos < len(p.s) && isTokenChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// value reads a bare token or a quoted string. Quoted content must be
// printable ASCII: a control character such as '\n' inside a value would
// shift the lines of the normalized string.
func (p *parser) value() (string, error) {
	if !p.consume('"') {
		v := p.token()
		if v == "" {
			return "", malformed("expected value at offset %d", p.pos)
		}
		return v, nil
	}
	// Fast path: no escapes, so the value is a substring (no allocation).
	for i := p.pos; i < len(p.s); i++ {
		c := p.s[i]
		if c == '"' {
			v := p.s[p.pos:i]
			p.pos = i + 1
			return v, nil
		}
		if c == '\\' || c < 0x20 || c > 0x7e {
			break
		}
	}
	var b strings.Builder
	for {
		if p.done() {
			return "", malformed("unterminated quoted string")
		}
		c := p.s[p.pos]
		p.pos++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.done() {
				return "", malformed("unterminated escape")
			}
			c = p.s[p.pos]
			p.pos++
			if c < 0x20 || c > 0x7e {
				return "", malformed("invalid character in quoted string")
			}
		case c < 0x20 || c > 0x7e:
			return "", malformed("invalid character in quoted string")
		}
		b.WriteByte(c)
	}
}

// String formats h as an Authorization header value, quoting every
// attribute and omitting empty optional ones.
func (h Header) String() string {
	var b strings.Builder
	b.WriteString("Hawk ")
	attr := func(k, v string, always bool) {
		if v == "" && !always {
			return
		}
		if b.Len() > len("Hawk ") {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(quoteEscaper.Replace(v))
		b.WriteByte('"')
	}
	attr("id", h.ID, true)
	attr("ts", h.TS, true)
	attr("nonce", h.Nonce, true)
	attr("hash", h.Hash, false)
	attr("ext", h.Ext, false)
	attr("app", h.App, false)
	attr("dlg", h.Dlg, false)
	attr("mac", h.MAC, true)
	return b.String()
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)
