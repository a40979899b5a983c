package http

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/weave-sync/weave"
)

// This file holds a small, strict JSON scanner specialised for BSO bodies.
// encoding/json would need a map or RawMessage per field to tell "absent"
// from "null" and to reject non-scalar values, which costs several
// allocations per record on the hottest write path; the scanner allocates
// only the strings it keeps.

// errSyntax means the body is not valid JSON (weave code 6).
var errSyntax = errors.New("invalid JSON")

// bsoInput is one BSO object as sent by a client, with the reason it is
// invalid ("" when valid).
type bsoInput struct {
	weave.Update
	// hasID is false when the object has no "id" key; idString is false
	// when "id" is present but not a string.
	hasID, idString bool
	// invalid is a client-facing reason for rejecting this record.
	invalid string
}

// bsoLimits are the per-record checks applied while scanning.
type bsoLimits struct {
	maxPayload int64 // max_record_payload_bytes; 0 means unchecked
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or 0 at EOF.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errSyntax
	}
	s.i++
	return nil
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errSyntax
	}
	s.i += len(lit)
	return nil
}

// str scans a JSON string (the opening quote is next) and returns its
// decoded value. Raw bytes must be valid UTF-8: a body that is not UTF-8 is
// not JSON as the protocol defines it. Escaped lone surrogates become
// U+FFFD, as encoding/json does.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", errSyntax
	}
	s.i++
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			seg := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(seg) {
				return "", errSyntax
			}
			return string(seg), nil
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return "", errSyntax
		case c >= 0x80:
			ascii = false
		}
		s.i++
	}
	return "", errSyntax
}

// strSlow decodes a string with escapes; s.i is at the first backslash.
func (s *scanner) strSlow(start int) (string, error) {
	out := make([]byte, 0, s.i-start+16)
	out = append(out, s.b[start:s.i]...)
	if !utf8.Valid(out) {
		return "", errSyntax
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(out), nil
		case c < 0x20:
			return "", errSyntax
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return "", errSyntax
			}
			e := s.b[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return "", errSyntax
				}
				if utf16.IsSurrogate(r) {
					// A valid pair is high then low; anything else is a lone
					// surrogate, which encoding/json turns into U+FFFD.
					save := s.i
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						s.i += 2
						if r2, ok := s.hex4(); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								out = utf8.AppendRune(out, dec)
								continue
							}
						}
					}
					s.i = save
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", errSyntax
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", errSyntax
			}
			out = append(out, s.b[s.i:s.i+n]...)
			s.i += n
		}
	}
	return "", errSyntax
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// number scans a JSON number and reports whether it is an integer literal
// (no fraction, no exponent).
func (s *scanner) number() (raw []byte, integer bool, err error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
	default:
		return nil, false, errSyntax
	}
	integer = true
	if s.i < len(s.b) && s.b[s.i] == '.' {
		integer = false
		s.i++
		if !s.digits() {
			return nil, false, errSyntax
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		integer = false
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return nil, false, errSyntax
		}
	}
	return s.b[start:s.i], integer, nil
}

func (s *scanner) digits() bool {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n > 0
}

// valueKind is what skipValue found.
type valueKind int

const (
	kindString valueKind = iota
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

// maxDepth bounds nesting so that a hostile body cannot exhaust the stack.
const maxDepth = 64

// skipElements skips the comma-separated elements of an object or array,
// from its opening byte to its closing one, each with elem.
func (s *scanner) skipElements(closing byte, elem func() error) error {
	s.i++
	if s.peek() == closing {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case closing:
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// skipValue validates and skips any JSON value.
func (s *scanner) skipValue(depth int) (valueKind, error) {
	if depth > maxDepth {
		return 0, errSyntax
	}
	switch s.peek() {
	case '"':
		_, err := s.skipString()
		return kindString, err
	case '{':
		return kindObject, s.skipElements('}', func() error {
			if _, err := s.skipString(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			_, err := s.skipValue(depth + 1)
			return err
		})
	case '[':
		return kindArray, s.skipElements(']', func() error {
			_, err := s.skipValue(depth + 1)
			return err
		})
	case 't':
		return kindBool, s.literal("true")
	case 'f':
		return kindBool, s.literal("false")
	case 'n':
		return kindNull, s.literal("null")
	default:
		_, _, err := s.number()
		return kindNumber, err
	}
}

// skipString validates a string without keeping it.
func (s *scanner) skipString() (valueKind, error) {
	// Strings we skip are rare (unknown or ignored keys); reuse the
	// decoder for exact validation rules.
	_, err := s.str()
	return kindString, err
}

// object scans one JSON object into a bsoInput. Syntax errors abort with
// errSyntax; semantic problems are recorded in in.invalid (first wins) so
// that a POST can report them per record.
func (s *scanner) object(lim bsoLimits) (bsoInput, error) {
	var in bsoInput
	if err := s.expect('{'); err != nil {
		return in, err
	}
	if s.peek() == '}' {
		s.i++
		return in, nil
	}
	var seen uint8
	fail := func(reason string) {
		if in.invalid == "" {
			in.invalid = reason
		}
	}
	for {
		key, err := s.str()
		if err != nil {
			return in, err
		}
		if err := s.expect(':'); err != nil {
			return in, err
		}
		var bit uint8
		switch key {
		case "id":
			bit = 1
		case "payload":
			bit = 2
		case "sortindex":
			bit = 4
		case "ttl":
			bit = 8
		case "modified":
			bit = 16
		case "collection":
			bit = 32
		}
		if bit != 0 && seen&bit != 0 {
			fail("duplicate field '" + key + "'")
		}
		seen |= bit
		c := s.peek()
		switch {
		case key == "id" && c == '"':
			v, err := s.str()
			if err != nil {
				return in, err
			}
			in.ID, in.hasID, in.idString = v, true, true
			if !validID(v) {
				fail("invalid id")
			}
		case key == "payload" && c == '"':
			v, err := s.str()
			if err != nil {
				return in, err
			}
			in.Payload = weave.Some(v)
			if lim.maxPayload > 0 && int64(len(v)) > lim.maxPayload {
				fail("payload too large")
			}
			// PostgreSQL text cannot hold NUL; refuse it everywhere so
			// every backend behaves alike (Firefox payloads never have it).
			if strings.IndexByte(v, 0) >= 0 {
				fail("invalid payload")
			}
		case (key == "sortindex" || key == "ttl") && c != 'n' && c != '"' && c != '{' && c != '[' && c != 't' && c != 'f':
			raw, integer, err := s.number()
			if err != nil {
				return in, err
			}
			v, ok := int64(0), false
			if integer && len(raw) <= 11 { // "-999999999" fits; longer is out of range
				v, err = strconv.ParseInt(string(raw), 10, 64)
				ok = err == nil
			}
			if key == "sortindex" {
				if !ok || v < weave.MinSortIndex || v > weave.MaxSortIndex {
					fail("invalid sortindex")
				}
				in.SortIndex = weave.Some(v)
			} else {
				if !ok || v < 0 || v > weave.MaxTTL {
					fail("invalid ttl")
				}
				in.TTL = weave.Some(v)
			}
		case c == 'n' && (key == "payload" || key == "sortindex" || key == "ttl" || key == "id"):
			if err := s.literal("null"); err != nil {
				return in, err
			}
			switch key {
			case "payload":
				in.Payload = weave.Optional[string]{Set: true, Null: true}
			case "sortindex":
				in.SortIndex = weave.Optional[int64]{Set: true, Null: true}
			case "ttl":
				in.TTL = weave.Optional[int64]{Set: true, Null: true}
			case "id":
				in.hasID = true
				fail("invalid id")
			}
		default:
			kind, err := s.skipValue(1)
			if err != nil {
				return in, err
			}
			switch {
			case bit == 0:
				fail("unknown field '" + key + "'")
			case kind == kindObject || kind == kindArray:
				fail("invalid " + key)
			case key == "id":
				in.hasID = true
				fail("invalid id")
			case key == "modified" || key == "collection":
				// Server-assigned; clients echo them back and they are ignored.
			default:
				fail("invalid " + key)
			}
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return in, nil
		default:
			return in, errSyntax
		}
	}
}

// end checks that only whitespace follows the parsed value.
func (s *scanner) end() error {
	if s.peek() != 0 || s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

// bodyError is a whole-request rejection of a BSO body: code 6 for bad JSON,
// 8 for a well-formed body of the wrong shape.
type bodyError struct {
	code   int
	reason string
}

func (e *bodyError) Error() string { return e.reason }

var (
	errBadJSON      = &bodyError{codeInvalidJSON, "invalid JSON"}
	errNotObject    = &bodyError{codeInvalidBSO, "body is not a JSON object"}
	errNotList      = &bodyError{codeInvalidBSO, "body is not a JSON list of objects"}
	errMissingID    = &bodyError{codeInvalidBSO, "a record has no valid id"}
	errDuplicateIDs = &bodyError{codeInvalidBSO, "duplicate ids in one request"}
)

// parseBSO parses a PUT body: exactly one JSON object.
func parseBSO(body []byte, lim bsoLimits) (bsoInput, error) {
	s := scanner{b: body}
	c := s.peek()
	if c != '{' {
		if _, err := s.skipValue(0); err != nil || s.end() != nil {
			return bsoInput{}, errBadJSON
		}
		return bsoInput{}, errNotObject
	}
	in, err := s.object(lim)
	if err != nil || s.end() != nil {
		return bsoInput{}, errBadJSON
	}
	return in, nil
}

// parseBSOList parses a POST body in JSON form: a list of objects. A list
// element that is not an object rejects the whole body (code 8), but only
// after the whole body was found to be valid JSON (else code 6).
func parseBSOList(body []byte, lim bsoLimits) ([]bsoInput, error) {
	s := scanner{b: body}
	if s.peek() != '[' {
		if _, err := s.skipValue(0); err != nil || s.end() != nil {
			return nil, errBadJSON
		}
		return nil, errNotList
	}
	s.i++
	var out []bsoInput
	shapeErr := false
	if s.peek() == ']' {
		s.i++
	} else {
		out = make([]bsoInput, 0, 16)
		for {
			if s.peek() == '{' {
				in, err := s.object(lim)
				if err != nil {
					return nil, errBadJSON
				}
				out = append(out, in)
			} else {
				if _, err := s.skipValue(1); err != nil {
					return nil, errBadJSON
				}
				shapeErr = true
			}
			c := s.peek()
			s.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return nil, errBadJSON
			}
		}
	}
	if s.end() != nil {
		return nil, errBadJSON
	}
	if shapeErr {
		return nil, errNotList
	}
	return out, nil
}

// parseBSOLines parses a POST body in application/newlines form: one JSON
// object per line; blank lines between records are skipped. A body that is
// not empty but holds only blank lines is bad JSON, as on both of Mozilla's
// servers (which parse every line, blank ones included).
func parseBSOLines(body []byte, lim bsoLimits) ([]bsoInput, error) {
	var out []bsoInput
	shapeErr := false
	blankOnly := len(body) > 0
	for len(body) > 0 {
		line := body
		rest := []byte(nil)
		for i, c := range body {
			if c == '\n' {
				line, rest = body[:i], body[i+1:]
				break
			}
		}
		body = rest
		s := scanner{b: line}
		switch s.peek() {
		case 0:
			if s.i != len(line) {
				return nil, errBadJSON // NUL byte
			}
			continue
		case '{':
			in, err := s.object(lim)
			if err != nil || s.end() != nil {
				return nil, errBadJSON
			}
			out = append(out, in)
		default:
			if _, err := s.skipValue(0); err != nil || s.end() != nil {
				return nil, errBadJSON
			}
			shapeErr = true
		}
		blankOnly = false
	}
	if blankOnly {
		return nil, errBadJSON
	}
	if shapeErr {
		return nil, errNotList
	}
	return out, nil
}
