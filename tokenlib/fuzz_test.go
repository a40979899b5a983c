package tokenlib

import (
	"errors"
	"testing"
	"time"
)

// FuzzParse checks that arbitrary input never panics and that every failure
// is one of the documented error kinds. Each input is parsed twice: as an id
// (exercising decoding and signature checks) and as payload bytes signed with
// a configured secret (exercising the JSON decoder behind a valid signature).
func FuzzParse(f *testing.F) {
	f.Add(t1ID)
	f.Add(SignBytes("fuzz", []byte(`{"uid":1,"node":"n","expires":1.5e9}`)))
	f.Add("")
	f.Add("====")
	now := time.Unix(1700000000, 0)
	f.Add(`{"uid": 1, "node": "n", "expires": 1884968439.0, "unknown": [{}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		for _, id := range []string{in, SignBytes("fuzz", []byte(in))} {
			p, key, err := Parse([]string{t1Secret, "fuzz"}, id, now)
			switch {
			case err == nil, errors.Is(err, ErrExpired):
				if key == "" || p.UID < 0 {
					t.Fatalf("accepted token without key or with negative uid: %+v", p)
				}
			case errors.Is(err, ErrMalformed), errors.Is(err, ErrInvalidSignature):
			default:
				t.Fatalf("undocumented error: %v", err)
			}
		}
	})
}
