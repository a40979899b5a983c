// Package passwd makes and verifies the password hashes of 1.1 accounts
// (weave.LegacyUser.PasswordHash): weave's own argon2id hashes, and the
// formats of the servers people import from — FSyncMS (hex MD5, bcrypt),
// Mozilla's server-core/server-reg ({SSHA}, {SSHA-256}, {SSCRYPT}) — so that
// an imported account logs in with its old password and is upgraded to
// argon2id on that first login (NeedsUpgrade).
package passwd

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Params are argon2id costs.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// Default is OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane):
// about 25 ms of one core. Basic auth sends the password on every request,
// so the front end caches successful verifications rather than raising
// this.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Limits on what Verify accepts from a stored hash, so that a corrupt or
// hostile row cannot make one login cost gigabytes or minutes.
const (
	maxMemory = 256 * 1024 // KiB
	maxTime   = 16
	saltLen   = 16
	keyLen    = 32
)

// ErrFormat: the stored hash is in no format this package knows.
var ErrFormat = errors.New("passwd: unknown password hash format")

// Hash returns a new argon2id hash of password with Default costs.
func Hash(password string) (string, error) { return HashWith(password, Default) }

// HashWith returns a new argon2id hash with the given costs (tests use
// cheap ones).
func HashWith(password string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return encodeArgon2(password, salt, p), nil
}

func encodeArgon2(password string, salt []byte, p Params) string {
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify reports whether password matches the stored hash. A hash in an
// unknown or malformed format gives false and ErrFormat.
func Verify(stored, password string) (bool, error) {
	switch {
	case strings.HasPrefix(stored, "$argon2id$"):
		return verifyArgon2(stored, password)
	case strings.HasPrefix(stored, "$2a$"), strings.HasPrefix(stored, "$2b$"), strings.HasPrefix(stored, "$2y$"):
		// PHP's crypt() wrote $2a$ (FSyncMS) or $2y$; the algorithm is the
		// same for valid UTF-8 passwords.
		h := []byte(stored)
		if stored[2] == 'y' {
			h = append([]byte("$2a$"), stored[4:]...)
		}
		err := bcrypt.CompareHashAndPassword(h, []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		return true, nil
	case strings.HasPrefix(stored, "{MD5-HEX}"):
		return hexDigest(md5.New(), stored[len("{MD5-HEX}"):], password)
	case strings.HasPrefix(stored, "{SHA1-HEX}"):
		return hexDigest(sha1.New(), stored[len("{SHA1-HEX}"):], password)
	case strings.HasPrefix(stored, "{SSHA}"):
		return saltedDigest(sha1.New(), stored[len("{SSHA}"):], password)
	case strings.HasPrefix(stored, "{SSHA-256}"):
		return saltedDigest(sha256.New(), stored[len("{SSHA-256}"):], password)
	case strings.HasPrefix(stored, "{SSCRYPT}"):
		return verifySScrypt(stored[len("{SSCRYPT}"):], password)
	}
	return false, ErrFormat
}

// NeedsUpgrade reports whether a stored hash should be replaced by a new
// Hash after a successful login: every format but argon2id at (or above)
// Default costs.
func NeedsUpgrade(stored string) bool { return NeedsUpgradeFor(stored, Default) }

// NeedsUpgradeFor is NeedsUpgrade against the costs p.
func NeedsUpgradeFor(stored string, p Params) bool {
	got, _, _, err := parseArgon2(stored)
	if err != nil {
		return true
	}
	return got.Memory < p.Memory || got.Time < p.Time
}

// FromFSyncMS converts the users.md5 column of an FSyncMS database: a
// bcrypt string stays as it is, anything else is hex MD5.
func FromFSyncMS(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "$2") {
		return raw, nil
	}
	if len(raw) != 2*md5.Size || !isHex(raw) {
		return "", fmt.Errorf("%w: FSyncMS hash is neither bcrypt nor hex MD5", ErrFormat)
	}
	return "{MD5-HEX}" + strings.ToLower(raw), nil
}

// FromServerCore converts a password column of Mozilla's server-core user
// tables (users.password_hash, user.password): {SSHA}, {SSHA-256} and
// {SSCRYPT} stay; a value without a scheme is {SSHA}, as server-core read it.
func FromServerCore(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	for _, p := range []string{"{SSHA}", "{SSHA-256}", "{SSCRYPT}"} {
		if strings.HasPrefix(raw, p) {
			return raw, nil
		}
	}
	if strings.HasPrefix(raw, "{") || raw == "" {
		return "", fmt.Errorf("%w: server-core hash scheme not supported", ErrFormat)
	}
	return "{SSHA}" + raw, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func hexDigest(h hash.Hash, want, password string) (bool, error) {
	w, err := hex.DecodeString(want)
	if err != nil || len(w) != h.Size() {
		return false, ErrFormat
	}
	h.Write([]byte(password))
	return subtle.ConstantTimeCompare(h.Sum(nil), w) == 1, nil
}

// saltedDigest checks server-core's H(password ‖ salt) ‖ salt, base64.
// server-core took the last 8 bytes as the salt; early versions used 32
// bytes: everything after the digest is the salt, which covers both.
func saltedDigest(h hash.Hash, b64, password string) (bool, error) {
	blob, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(blob) <= h.Size() {
		return false, ErrFormat
	}
	h.Write([]byte(password))
	h.Write(blob[h.Size():])
	return subtle.ConstantTimeCompare(h.Sum(nil), blob[:h.Size()]) == 1, nil
}

// verifySScrypt checks server-core's scrypt(password, salt, N=16384, r=8,
// p=1, 64 bytes) ‖ salt.
func verifySScrypt(b64, password string) (bool, error) {
	blob, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(blob) <= 64 {
		return false, ErrFormat
	}
	key, err := scrypt.Key([]byte(password), blob[64:], 16384, 8, 1, 64)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, blob[:64]) == 1, nil
}

func parseArgon2(stored string) (p Params, salt, key []byte, err error) {
	// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
	parts := strings.Split(stored, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrFormat
	}
	var m, t, th uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, ErrFormat
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			th = n
		default:
			return p, nil, nil, ErrFormat
		}
	}
	if m == 0 || m > maxMemory || t == 0 || t > maxTime || th == 0 || th > 255 || m < 8*th {
		return p, nil, nil, ErrFormat
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, ErrFormat
	}
	return Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th)}, salt, key, nil
}

func verifyArgon2(stored, password string) (bool, error) {
	p, salt, key, err := parseArgon2(stored)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
