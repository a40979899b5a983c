package passwd

import (
	"errors"
	"strings"
	"testing"
)

// The salted vectors were computed with Python's hashlib (sha1, sha256,
// scrypt) the way server-core's util.py builds them; the bcrypt vector is
// from OpenWall's crypt_blowfish test set; the MD5 and SHA-1 ones are
// hashlib's hex digests.
const pw = "pässword 1"

var vectors = []struct{ name, hash, password string }{
	{"ssha", "{SSHA}9nzKzZ2CyuJuICcsfHP/WL9qY4NhYmNkZWZnaA==", pw},
	{"ssha256-salt8", "{SSHA-256}fTvZdKPwtyYDZuNE2vrY8f5rsOnG4Q8nakgcWrUfHEZhYmNkZWZnaA==", pw},
	{"ssha256-salt32", "{SSHA-256}uVzivwGlX4TI1CDIv4ZwUA4uvuWtSZE/IIlJOWEIUKkwMTIzNDU2Nzg5YWJjZGVmZ2hpakFCQ0RFRkdISUprbA==", pw},
	{"sscrypt", "{SSCRYPT}XTz9FuWbOsattMOQ8m/8hCEiQE7xNJGXYgEAIa2hfJrCnIeWScsKzyN2qGNJYOUlRPolh8kjWVb6DwKnQd4B02FiY2RlZmdo", pw},
	{"md5", "{MD5-HEX}ee0a0fa09df7c1e10c13c2792a1c5fba", pw},
	{"sha1", "{SHA1-HEX}c011496188e7879792e447ede49391a5dec6924a", pw},
	{"bcrypt-2a", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
	{"bcrypt-2y", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
	// Pinned from x/crypto/argon2 (itself tested against the RFC 9106
	// vectors) with tiny costs.
	{"argon2id", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$zAXHwuVnL7w7pQePBTUeWLO/ssCDfJ8nAuZnbHhiDII", pw},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			ok, err := Verify(v.hash, v.password)
			if err != nil || !ok {
				t.Fatalf("Verify(right password) = %v, %v", ok, err)
			}
			// Few wrong guesses: scrypt and argon2 are slow under -race.
			for _, wrong := range []string{"", v.password + "x"} {
				if wrong == v.password {
					continue
				}
				if ok, err := Verify(v.hash, wrong); ok || err != nil {
					t.Fatalf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
				}
			}
			if !NeedsUpgrade(v.hash) {
				t.Fatal("an old or cheap hash does not need an upgrade")
			}
		})
	}
}

func TestHash(t *testing.T) {
	h, err := HashWith(pw, Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashWith(pw, Params{Memory: 64, Time: 1, Threads: 1})
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if ok, err := Verify(h, pw); !ok || err != nil {
		t.Fatalf("Verify(own hash) = %v, %v", ok, err)
	}
	if ok, _ := Verify(h, "other"); ok {
		t.Fatal("wrong password verified")
	}
	if !NeedsUpgrade(h) || NeedsUpgradeFor(h, Params{Memory: 64, Time: 1, Threads: 1}) {
		t.Fatal("NeedsUpgradeFor does not compare costs")
	}
	full, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(full, "$argon2id$v=19$m=19456,t=2,p=1$") || NeedsUpgrade(full) {
		t.Fatalf("Hash = %q (NeedsUpgrade %v)", full, NeedsUpgrade(full))
	}
}

func TestMalformed(t *testing.T) {
	for _, h := range []string{
		"", "plain", "{MD5-HEX}zz", "{MD5-HEX}ee0a", "{SSHA}!!!", "{SSHA}AAAA", "{SSCRYPT}AAAA",
		"$2a$05$short", "{CRYPT}abc",
		"$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$zAXHwuVnL7w7pQePBTUeWLO/ssCDfJ8nAuZnbHhiDII", // 4 GiB
		"$argon2id$v=19$m=64,t=100000,p=1$c29tZXNhbHRzb21lc2FsdA$zAXHwuVnL7w7pQePBTUeWLO/ssCDfJ8nAuZnbHhiDII",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$zAXHwuVnL7w7pQePBTUeWLO/ssCDfJ8nAuZnbHhiDII",
		"$argon2id$v=19$m=64,t=1,p=0$c29tZXNhbHRzb21lc2FsdA$zAXHwuVnL7w7pQePBTUeWLO/ssCDfJ8nAuZnbHhiDII",
		"$argon2id$v=19$m=64,t=1,p=1,x=2$c29tZXNhbHRzb21lc2FsdA$zAXHwuVnL7w7pQePBTUeWLO/ssCDfJ8nAuZnbHhiDII",
	} {
		if ok, err := Verify(h, pw); ok || !errors.Is(err, ErrFormat) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrFormat", h, ok, err)
		}
	}
}

func TestImportConversions(t *testing.T) {
	for raw, want := range map[string]string{
		"EE0A0FA09DF7C1E10C13C2792A1C5FBA": "{MD5-HEX}ee0a0fa09df7c1e10c13c2792a1c5fba",
		"$2a$12$abcdefghijklmnopqrstuu":    "$2a$12$abcdefghijklmnopqrstuu",
	} {
		if got, err := FromFSyncMS(raw); err != nil || got != want {
			t.Errorf("FromFSyncMS(%q) = %q, %v", raw, got, err)
		}
	}
	if _, err := FromFSyncMS("notahash"); !errors.Is(err, ErrFormat) {
		t.Errorf("FromFSyncMS(garbage) = %v", err)
	}
	// server-core: no scheme means {SSHA}.
	bare := strings.TrimPrefix(vectors[0].hash, "{SSHA}")
	got, err := FromServerCore(bare)
	if err != nil || got != vectors[0].hash {
		t.Fatalf("FromServerCore(bare) = %q, %v", got, err)
	}
	if ok, _ := Verify(got, pw); !ok {
		t.Fatal("converted bare SSHA does not verify")
	}
	for _, h := range []string{vectors[1].hash, vectors[3].hash} {
		if got, err := FromServerCore(h); err != nil || got != h {
			t.Errorf("FromServerCore(%q) = %q, %v", h, got, err)
		}
	}
	if _, err := FromServerCore("{CRYPT}x"); !errors.Is(err, ErrFormat) {
		t.Errorf("FromServerCore({CRYPT}) = %v", err)
	}
}
