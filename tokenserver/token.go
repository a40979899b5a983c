package tokenserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/weave-sync/weave/tokenlib"
)

// Origin is the tokenserver_origin written into every token. Storage nodes
// only use it as a metrics tag, but syncstorage-rs decodes it into an enum
// of "python" and "rust" and rejects the whole token for any other value;
// "rust" keeps weave's tokens valid on Mozilla's storage nodes.
const Origin = "rust"

// Payload is the content of a token (spec §8.1). Its fields are declared in
// the order syncstorage-rs serialises them, so that for the same inputs weave
// signs byte-identical tokens (spec vector T1 checks this).
type Payload struct {
	Node              string `json:"node"`
	FxAKid            string `json:"fxa_kid"`
	FxAUID            string `json:"fxa_uid"`
	HashedDeviceID    string `json:"hashed_device_id"`
	HashedFxAUID      string `json:"hashed_fxa_uid"`
	Expires           int64  `json:"expires"`
	UID               int64  `json:"uid"`
	TokenserverOrigin string `json:"tokenserver_origin"`
	Salt              string `json:"salt"`
}

// NewPayload fills a payload for a user: fxa_kid from keysChangedAt (or
// generation when keys_changed_at is unknown, as FxA does) and the client
// state; the telemetry hashes from metricsSecret with device "none" (OAuth
// carries no device id); a random salt.
func NewPayload(uid int64, node, fxaUID string, generation, keysChangedAt int64, clientState, metricsSecret string, expires int64) (Payload, error) {
	kidTime := keysChangedAt
	if kidTime == 0 {
		kidTime = generation
	}
	kid, err := tokenlib.FxAKid(kidTime, clientState)
	if err != nil {
		return Payload{}, err
	}
	hashed := tokenlib.HashedFxAUID(metricsSecret, fxaUID)
	var salt [3]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return Payload{}, err
	}
	return Payload{
		Node:              node,
		FxAKid:            kid,
		FxAUID:            fxaUID,
		HashedDeviceID:    tokenlib.HashedDeviceID(metricsSecret, hashed, "none"),
		HashedFxAUID:      hashed,
		Expires:           expires,
		UID:               uid,
		TokenserverOrigin: Origin,
		Salt:              hex.EncodeToString(salt[:]),
	}, nil
}

// Sign serialises p (compact JSON, no HTML escaping, as serde_json writes
// it) and returns the token id and its derived Hawk key.
func (p Payload) Sign(secret string) (id, key string, err error) {
	if p.Salt == "" {
		return "", "", fmt.Errorf("tokenserver: payload without salt")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return "", "", err
	}
	id = tokenlib.SignBytes(secret, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return id, tokenlib.DeriveKey(secret, id, p.Salt), nil
}
