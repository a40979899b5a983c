// Package ece implements the "aes128gcm" encrypted content coding of
// RFC 8188 and, on top of it, Web Push message encryption (RFC 8291).
//
// weave needs it on one side only: the accounts service encrypts each device
// notice (Send Tab, device connected, password changed, …) to the push key a
// Firefox registered with its device record, and the push service carries the
// result untouched. Decryption exists so that tests, and test clients that play
// the browser, can check exactly what Firefox would accept.
//
// Only the standard library is used: crypto/ecdh, crypto/hkdf and AES-GCM are
// all this needs, and every step is pinned to the RFCs' published vectors.
package ece

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// SaltSize is the size of the random salt in the coding's header.
	SaltSize = 16
	// TagSize is the size of the AES-GCM authentication tag closing each record.
	TagSize = 16
	// MinRecordSize is the smallest legal record size: a tag plus the delimiter.
	MinRecordSize = TagSize + 2
	// headerSize is the fixed part of the header: salt, rs (uint32) and idlen.
	headerSize = SaltSize + 4 + 1
	// maxKeyIDSize is what the one-octet idlen can say.
	maxKeyIDSize = 255

	delimiterRecord = 0x01 // every record but the last ends its content with this
	delimiterFinal  = 0x02 // the last record ends its content with this
)

// Errors returned by Open. Each decoding failure wraps exactly one of them, so
// callers can tell a malformed body from a body for another key.
var (
	// ErrMalformed: the body is not a well-formed aes128gcm stream (short
	// header, bad record size, truncated record, bad padding or delimiter).
	ErrMalformed = errors.New("ece: malformed aes128gcm body")
	// ErrDecrypt: a record failed authentication (wrong key, or tampered).
	ErrDecrypt = errors.New("ece: record authentication failed")
)

// Header is the parsed aes128gcm header that starts every body.
type Header struct {
	Salt       []byte
	RecordSize uint32
	KeyID      []byte
}

// ParseHeader splits body into its header and the records that follow. The
// returned slices alias body.
func ParseHeader(body []byte) (Header, []byte, error) {
	if len(body) < headerSize {
		return Header{}, nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrMalformed, len(body), headerSize)
	}
	h := Header{
		Salt:       body[:SaltSize],
		RecordSize: binary.BigEndian.Uint32(body[SaltSize : SaltSize+4]),
	}
	if h.RecordSize < MinRecordSize {
		return Header{}, nil, fmt.Errorf("%w: record size %d is below %d", ErrMalformed, h.RecordSize, MinRecordSize)
	}
	idlen := int(body[headerSize-1])
	if len(body) < headerSize+idlen {
		return Header{}, nil, fmt.Errorf("%w: key id of %d bytes runs past the body", ErrMalformed, idlen)
	}
	h.KeyID = body[headerSize : headerSize+idlen]
	return h, body[headerSize+idlen:], nil
}

// deriveKeyNonce turns the input keying material and the salt into the
// content-encryption key and the base nonce (RFC 8188 §2.2, §2.3).
func deriveKeyNonce(ikm, salt []byte) (prk, cek, nonce []byte, err error) {
	prk, err = hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, nil, err
	}
	cek, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, nil, nil, err
	}
	nonce, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, nil, nil, err
	}
	return prk, cek, nonce, nil
}

// recordNonce is the base nonce XOR the record's sequence number (RFC 8188 §2.3).
func recordNonce(base []byte, seq uint64) []byte {
	n := make([]byte, len(base))
	copy(n, base)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	for i := range s {
		n[len(n)-8+i] ^= s[i]
	}
	return n
}

func newGCM(cek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encodes plaintext with the aes128gcm coding: a header carrying salt, rs
// and keyID, then records of rs bytes each (the last may be shorter). padding
// zero bytes are added after the plaintext to hide its length; they go into the
// last record and spill into further padding-only records if they do not fit.
//
// Web Push (RFC 8291 §4) wants a single record; Seal itself does not insist, so
// that it serves RFC 8188 in general.
func Seal(ikm, salt, keyID []byte, rs uint32, plaintext []byte, padding int) ([]byte, error) {
	switch {
	case rs < MinRecordSize:
		return nil, fmt.Errorf("ece: record size %d is below %d", rs, MinRecordSize)
	case padding < 0:
		return nil, errors.New("ece: negative padding")
	}
	// Content bytes per record: data, then the delimiter, then padding.
	capacity := int(min(uint64(rs)-TagSize, 1<<30))
	var records [][]byte
	for {
		n := min(len(plaintext), capacity-1)
		rec := make([]byte, 0, min(capacity, n+1+padding))
		rec = append(rec, plaintext[:n]...)
		plaintext = plaintext[n:]
		// Padding fits only after the last data byte and the delimiter.
		p := 0
		if len(plaintext) == 0 {
			p = min(padding, capacity-1-n)
			padding -= p
		}
		last := len(plaintext) == 0 && padding == 0
		if last {
			rec = append(rec, delimiterFinal)
		} else {
			rec = append(rec, delimiterRecord)
		}
		rec = append(rec, make([]byte, p)...)
		records = append(records, rec)
		if last {
			return sealRecords(ikm, salt, keyID, rs, records)
		}
	}
}

// sealRecords writes the header and encrypts each record's content, which
// already holds its data, delimiter and padding. It is separate from Seal so
// tests can reproduce a published layout that puts padding elsewhere.
func sealRecords(ikm, salt, keyID []byte, rs uint32, records [][]byte) ([]byte, error) {
	switch {
	case len(salt) != SaltSize:
		return nil, fmt.Errorf("ece: salt must be %d bytes, not %d", SaltSize, len(salt))
	case len(keyID) > maxKeyIDSize:
		return nil, fmt.Errorf("ece: key id of %d bytes is longer than %d", len(keyID), maxKeyIDSize)
	}
	_, cek, nonce, err := deriveKeyNonce(ikm, salt)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	size := headerSize + len(keyID)
	for _, r := range records {
		size += len(r) + TagSize
	}
	out := make([]byte, 0, size)
	out = append(out, salt...)
	out = binary.BigEndian.AppendUint32(out, rs)
	out = append(out, byte(len(keyID)))
	out = append(out, keyID...)
	for seq, r := range records {
		out = gcm.Seal(out, recordNonce(nonce, uint64(seq)), r, nil)
	}
	return out, nil
}

// Open decodes an aes128gcm body. keyFor maps the header's key id to the input
// keying material (for Web Push it performs the ECDH with the sender's key);
// its error is returned as is.
//
// Open follows the receiver rules of RFC 8188 §2 as Firefox applies them: at
// least one record, every record ends in the right delimiter after its padding,
// the last record is marked as such, and no record follows it. It never panics
// on hostile input and allocates at most the size of body.
func Open(body []byte, keyFor func(keyID []byte) ([]byte, error)) ([]byte, error) {
	h, records, err := ParseHeader(body)
	if err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record after the header", ErrMalformed)
	}
	ikm, err := keyFor(h.KeyID)
	if err != nil {
		return nil, err
	}
	_, cek, nonce, err := deriveKeyNonce(ikm, h.Salt)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	rs := int(min(uint64(h.RecordSize), uint64(len(records))))
	out := make([]byte, 0, len(records))
	for seq := uint64(0); len(records) > 0; seq++ {
		n := min(rs, len(records))
		rec := records[:n]
		records = records[n:]
		if len(rec) <= TagSize {
			return nil, fmt.Errorf("%w: record %d has %d bytes, no room for content", ErrMalformed, seq, len(rec))
		}
		start := len(out)
		out, err = gcm.Open(out, recordNonce(nonce, seq), rec, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: record %d", ErrDecrypt, seq)
		}
		// Strip the padding, then the delimiter, which must say whether this
		// was the last record; a final record followed by more is as bad as a
		// stream that ends without one (truncation).
		content := out[start:]
		i := len(content) - 1
		for i >= 0 && content[i] == 0 {
			i--
		}
		if i < 0 {
			return nil, fmt.Errorf("%w: record %d has no delimiter", ErrMalformed, seq)
		}
		final := len(records) == 0
		switch d := content[i]; {
		case d == delimiterFinal && final, d == delimiterRecord && !final:
		case d == delimiterRecord:
			return nil, fmt.Errorf("%w: stream is truncated after record %d", ErrMalformed, seq)
		case d == delimiterFinal:
			return nil, fmt.Errorf("%w: data after the final record %d", ErrMalformed, seq)
		default:
			return nil, fmt.Errorf("%w: record %d ends in %#x, not a delimiter", ErrMalformed, seq, d)
		}
		out = out[:start+i]
	}
	return out, nil
}
