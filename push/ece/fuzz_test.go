package ece

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecrypt feeds arbitrary bodies to the Web Push decoder with the RFC 8291
// example's receiver key. It must never panic, must fail with one of the two
// decoding errors, and can only succeed with a plaintext shorter than the body.
func FuzzDecrypt(f *testing.F) {
	_, ua := rfcKeys(f)
	auth := b64(f, rfcAuth)
	rfcBody := append(b64(f, rfcHeader), b64(f, rfcCipher)...)
	f.Add(rfcBody)
	f.Add(rfcBody[:86])
	f.Add(rfcBody[:21])
	f.Add(b64(f, "I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg"))
	f.Add(b64(f, "uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKEpgz3SsLWIqS_uA"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		pt, err := Decrypt(ua, auth, body)
		if err != nil {
			if pt != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrDecrypt)) {
				t.Fatalf("Decrypt = %q, %v", pt, err)
			}
			return
		}
		if len(pt) >= len(body) {
			t.Fatalf("plaintext of %d bytes from a body of %d", len(pt), len(body))
		}
	})
}

// FuzzOpenRecords seals arbitrary record contents with a known key, so the
// bodies authenticate and the fuzzer reaches the padding and delimiter rules
// that random bytes never get past AES-GCM to exercise. A body opens exactly
// when every record is data ‖ delimiter ‖ zeros with 0x02 only on the last.
func FuzzOpenRecords(f *testing.F) {
	f.Add([]byte("I am th\x01\x00"), []byte("e walrus\x02"), uint8(25))
	f.Add([]byte("hi\x02"), []byte(nil), uint8(0))
	f.Add([]byte("\x00\x00"), []byte("x\x02"), uint8(18))
	f.Add([]byte("a\x02"), []byte("b\x02"), uint8(20))
	ikm, salt := make([]byte, 16), make([]byte, SaltSize)
	f.Fuzz(func(t *testing.T, r1, r2 []byte, rsOff uint8) {
		if len(r2) > len(r1) {
			t.Skip("a last record longer than rs is split differently by design")
		}
		records := [][]byte{r1}
		if len(r2) > 0 {
			records = append(records, r2)
		}
		// Every record but the last is exactly rs bytes on the wire.
		rs := uint32(len(r1)) + TagSize
		if len(records) == 1 {
			rs += uint32(rsOff)
		}
		body, err := sealRecords(ikm, salt, nil, rs, records)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := Open(body, fixedKey(ikm))
		var want []byte
		valid := rs >= MinRecordSize
		for i, r := range records {
			end := len(bytes.TrimRight(r, "\x00")) - 1
			delim := byte(delimiterRecord)
			if i == len(records)-1 {
				delim = delimiterFinal
			}
			if end < 0 || r[end] != delim {
				valid = false
				break
			}
			want = append(want, r[:end]...)
		}
		if valid != (err == nil) || (valid && !bytes.Equal(pt, want)) {
			t.Fatalf("records %q rs %d: Open = %q, %v; valid=%v want %q", records, rs, pt, err, valid, want)
		}
	})
}
