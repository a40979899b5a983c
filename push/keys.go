package push

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
)

// EndpointKeys derives Config.EndpointKeys from the server's master
// secrets: the first mints, all are accepted, so rotating the master
// secret the usual way (new first, old kept) keeps every endpoint valid.
func EndpointKeys(secrets []string) ([][]byte, error) {
	var keys [][]byte
	for _, s := range secrets {
		k, err := hkdf.Key(sha256.New, []byte(s), nil, "weave push endpoint token key", 32)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("push: no master secret")
	}
	return keys, nil
}
