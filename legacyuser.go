package weave

import (
	"context"
	"errors"
	"strings"
)

// Accounts of the 2011 protocol (User API 1.0 + Storage API 1.1), used by
// Pale Moon, Basilisk and other UXP browsers. A 1.1 user is a username and
// a password (HTTP Basic auth on every request); its storage is an ordinary
// user of the token database, so node assignment, node states, moves and
// drains are those of Sync 1.5.
//
// Separation from 1.5 users: a 1.1 user's token-database records are keyed
// by LegacyTokenEmail(username) = "<username>@" + LegacyEmailDomain. A 1.5
// user's key is "<fxa_uid>@<FxA domain>"; ".invalid" (RFC 2606) can never be
// the domain of an FxA issuer, so the two key spaces are disjoint, and since
// every record gets its own never-reused uid, a 1.1 user and a 1.5 user
// never share a uid and never see each other's data.

// LegacyEmailDomain is the domain of the token-database key of 1.1 users.
const LegacyEmailDomain = "sync-1.1.invalid"

// LegacyTokenEmail is the token-database key of the 1.1 user username.
func LegacyTokenEmail(username string) string { return username + "@" + LegacyEmailDomain }

// IsLegacyTokenEmail reports whether a token-database key belongs to a 1.1
// user, and returns the username.
func IsLegacyTokenEmail(email string) (string, bool) {
	return strings.CutSuffix(email, "@"+LegacyEmailDomain)
}

// MaxLegacyUsernameLen bounds a username (the client's hashed names have 32
// characters; Mozilla's tables allowed 32, FSyncMS 100).
const MaxLegacyUsernameLen = 100

// ValidLegacyUsername reports whether s is a username as the UXP client
// derives them and the 2011 servers routed them: 1 to MaxLegacyUsernameLen
// characters of [a-z0-9._-] (the client lower-cases every account name).
func ValidLegacyUsername(s string) bool {
	if s == "" || len(s) > MaxLegacyUsernameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// LegacyUser is one 1.1 account.
type LegacyUser struct {
	// Username is the account's name in URLs and Basic auth (see
	// ValidLegacyUsername); normally base32(SHA-1(e-mail)), 32 characters.
	Username string
	// Email is the address given at sign-up; "" when unknown (FSyncMS kept
	// none).
	Email string
	// PasswordHash is a self-describing hash string; see LegacyUserStore for
	// the accepted formats and legacy/passwd for verification.
	PasswordHash string
	// CreatedAt and PasswordChangedAt are ms since the epoch.
	CreatedAt         int64
	PasswordChangedAt int64
	// ResetCodeHash is the hex SHA-256 of an outstanding password-reset
	// key ("" when none), valid until ResetExpiresAt (ms since the epoch).
	ResetCodeHash  string
	ResetExpiresAt int64
}

// ErrLegacyUserExists: CreateLegacyUser found the username taken.
var ErrLegacyUserExists = errors.New("weave: 1.1 username already taken")

// LegacyUserStore keeps 1.1 accounts. sqlstore.LegacyUserStore implements it
// on SQLite, MariaDB/MySQL and PostgreSQL (table legacy_users of the
// "tokens" schema set, next to the token database). Every method is one
// transaction; a missing user is ErrNotFound, database failures
// ErrUnavailable or ErrConflict.
//
// PasswordHash formats accepted (verified by legacy/passwd, which also makes
// new hashes; anything else never verifies):
//
//	$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>  weave's own (PHC string, raw base64)
//	$2a$… $2b$… $2y$…                        bcrypt (FSyncMS with BCRYPT on)
//	{MD5-HEX}<32 hex>                        FSyncMS without BCRYPT: hex MD5(password)
//	{SHA1-HEX}<40 hex>                       hex SHA-1(password) (PHP servers of the era)
//	{SSHA}<b64>                              server-core: SHA-1(pw‖salt)‖salt
//	{SSHA-256}<b64>                          server-core / server-reg: SHA-256(pw‖salt)‖salt
//	{SSCRYPT}<b64>                           server-core: scrypt(pw, salt, 16384, 8, 1, 64)‖salt
//
// Importers store old hashes in these forms (passwd.FromFSyncMS and
// passwd.FromServerCore convert the raw column values); the front end
// verifies them at the first login and replaces them with an argon2id hash
// through UpdateLegacyPassword.
type LegacyUserStore interface {
	// CreateLegacyUser inserts u; ErrLegacyUserExists if the username is
	// taken. CreatedAt and PasswordChangedAt are kept as given (0: now).
	CreateLegacyUser(ctx context.Context, u LegacyUser) error

	// LegacyUser returns the user, or ErrNotFound.
	LegacyUser(ctx context.Context, username string) (LegacyUser, error)

	// UpdateLegacyPassword replaces the password hash and clears any reset
	// code. If oldHash is not "", the change happens only while the stored
	// hash still equals oldHash (a hash upgrade or a reset must not undo a
	// concurrent password change), else ErrConflict. ErrNotFound if the
	// user does not exist.
	UpdateLegacyPassword(ctx context.Context, username, oldHash, newHash string) error

	// SetLegacyEmail changes the e-mail address.
	SetLegacyEmail(ctx context.Context, username, email string) error

	// SetLegacyResetCode stores the hash of a password-reset key and its
	// expiry (ms), replacing any earlier one; codeHash "" clears it.
	SetLegacyResetCode(ctx context.Context, username, codeHash string, expiresAt int64) error

	// DeleteLegacyUser removes the account (its storage and token records
	// are the caller's to retire).
	DeleteLegacyUser(ctx context.Context, username string) error

	// ListLegacyUsers returns up to limit users with username > after, by
	// username (paged listing).
	ListLegacyUsers(ctx context.Context, after string, limit int) ([]LegacyUser, error)

	// CountLegacyUsers counts the accounts.
	CountLegacyUsers(ctx context.Context) (int64, error)
}
