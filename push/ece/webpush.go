package ece

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const (
	// PublicKeySize is an uncompressed P-256 point (0x04 ‖ X ‖ Y), the form
	// of a subscription's p256dh key and of the sender's key in the header.
	PublicKeySize = 65
	// AuthSecretSize is the subscription's authentication secret (RFC 8291 §3.2).
	AuthSecretSize = 16
	// MaxBodySize is the largest body a push service must accept (RFC 8030
	// §7.2); Encrypt refuses to produce more.
	MaxBodySize = 4096
	// MaxPlaintextSize is what fits in MaxBodySize in one record with no
	// padding: 4096 − 86-byte header − 16-byte tag − 1 delimiter (RFC 8291 §4).
	MaxPlaintextSize = MaxBodySize - (headerSize + PublicKeySize) - TagSize - 1
	// recordSize is the rs every implementation sends (Firefox, web-push).
	// It only has to exceed the single record; 4096 says nothing about length.
	recordSize = 4096
)

// ErrTooLarge is returned by Encrypt when plaintext and padding would not fit
// in one MaxBodySize body.
var ErrTooLarge = errors.New("ece: push message too large")

// Keys are a push subscription's keys as Firefox hands them to the accounts
// server in a device record (pushPublicKey, pushAuthKey).
type Keys struct {
	P256DH []byte // the user agent's public key, PublicKeySize bytes
	Auth   []byte // the authentication secret, AuthSecretSize bytes
}

// ParseKeys decodes a device record's base64url push keys (with or without
// padding) and validates them, so a device registration can be refused with a
// clear error instead of every later push failing.
func ParseKeys(p256dh, auth string) (Keys, error) {
	pub, err := decodeB64URL(p256dh)
	if err != nil {
		return Keys{}, fmt.Errorf("ece: push public key is not base64url: %w", err)
	}
	secret, err := decodeB64URL(auth)
	if err != nil {
		return Keys{}, fmt.Errorf("ece: push auth secret is not base64url: %w", err)
	}
	k := Keys{P256DH: pub, Auth: secret}
	return k, k.Validate()
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Validate reports whether the keys can be encrypted to: the public key is a
// point on P-256 (checked the way FxA checks it, by trying to use it) and the
// auth secret has the size RFC 8291 gives it.
func (k Keys) Validate() error {
	if _, err := uaPublicKey(k.P256DH); err != nil {
		return err
	}
	if len(k.Auth) != AuthSecretSize {
		return fmt.Errorf("ece: push auth secret must be %d bytes, not %d", AuthSecretSize, len(k.Auth))
	}
	return nil
}

func uaPublicKey(b []byte) (*ecdh.PublicKey, error) {
	if len(b) != PublicKeySize || b[0] != 0x04 {
		return nil, fmt.Errorf("ece: push public key must be a %d-byte uncompressed P-256 point", PublicKeySize)
	}
	pub, err := ecdh.P256().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("ece: push public key: %w", err)
	}
	return pub, nil
}

// Encrypt encrypts plaintext for the subscription with keys, as RFC 8291
// requires: a fresh ephemeral P-256 key and random salt per message, one
// record, rs 4096, no padding. The result is the request body to POST to the
// subscription's endpoint with "Content-Encoding: aes128gcm".
func Encrypt(keys Keys, plaintext []byte) ([]byte, error) {
	return EncryptPadded(keys, plaintext, 0)
}

// EncryptPadded is Encrypt with padding zero bytes added inside the record, to
// hide the plaintext's length from the push service.
func EncryptPadded(keys Keys, plaintext []byte, padding int) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encrypt(keys, plaintext, padding, as, salt)
}

// encrypt is EncryptPadded with the ephemeral key and salt given, so the RFC's
// worked example can be reproduced byte for byte.
func encrypt(keys Keys, plaintext []byte, padding int, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if padding < 0 || len(plaintext)+padding > MaxPlaintextSize {
		return nil, fmt.Errorf("%w: %d bytes of plaintext and %d of padding, at most %d fit", ErrTooLarge, len(plaintext), padding, MaxPlaintextSize)
	}
	if len(keys.Auth) != AuthSecretSize {
		return nil, fmt.Errorf("ece: push auth secret must be %d bytes, not %d", AuthSecretSize, len(keys.Auth))
	}
	ua, err := uaPublicKey(keys.P256DH)
	if err != nil {
		return nil, err
	}
	secret, err := as.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPublic := as.PublicKey().Bytes()
	ikm, err := webPushIKM(secret, keys.Auth, keys.P256DH, asPublic)
	if err != nil {
		return nil, err
	}
	return Seal(ikm, salt, asPublic, recordSize, plaintext, padding)
}

// webPushInfo is the HKDF info binding the derived key to both public keys
// (RFC 8291 §3.4).
func webPushInfo(uaPublic, asPublic []byte) string {
	return "WebPush: info\x00" + string(uaPublic) + string(asPublic)
}

// webPushIKM combines the ECDH secret with the subscription's auth secret into
// the input keying material of the aes128gcm coding (RFC 8291 §3.3, §3.4).
func webPushIKM(ecdhSecret, auth, uaPublic, asPublic []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, ecdhSecret, auth, webPushInfo(uaPublic, asPublic), 32)
}

// Decrypt opens a Web Push message body the way a user agent does, with the
// subscription's private key and auth secret. The header's key id must be the
// sender's 65-byte public key. Like Firefox it accepts several records, though
// RFC 8291 senders (and Encrypt) only ever produce one.
func Decrypt(ua *ecdh.PrivateKey, auth, body []byte) ([]byte, error) {
	if ua == nil || ua.Curve() != ecdh.P256() {
		return nil, errors.New("ece: Decrypt needs a P-256 private key")
	}
	return Open(body, func(keyID []byte) ([]byte, error) {
		if len(keyID) != PublicKeySize {
			return nil, fmt.Errorf("%w: key id of %d bytes is not a sender public key", ErrMalformed, len(keyID))
		}
		as, err := ecdh.P256().NewPublicKey(keyID)
		if err != nil {
			return nil, fmt.Errorf("%w: sender public key: %v", ErrMalformed, err)
		}
		secret, err := ua.ECDH(as)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
		}
		return webPushIKM(secret, auth, ua.PublicKey().Bytes(), keyID)
	})
}
