package weave

import (
	"context"
	"errors"
)

// Accounts of the built-in Firefox Accounts service (package accounts): the
// domain its HTTP API and its SQL store share. The service's handlers, pages
// and crypto stay in package accounts; the SQL adapter needs only this.

// Errors of an AccountStore.
var (
	// ErrAccountNotFound: no such account, token or key.
	ErrAccountNotFound = errors.New("accounts: not found")
	// ErrEmailExists: CreateAccount found the normalised email taken.
	ErrEmailExists = errors.New("accounts: email already registered")
	// ErrCommandQueueFull: PutCommand found the target device's queue at
	// its cap.
	ErrCommandQueueFull = errors.New("accounts: device command queue full")
)

// Account is one stored account. Byte fields are hex on the wire and in
// the database; here they are raw.
type Account struct {
	UID         string // 32 hex digits
	Email       string // as given at sign-up (the client's PBKDF2 salt)
	NormEmail   string // lower-cased: the unique lookup key
	AuthSalt    []byte
	VerifyHash  []byte
	ScryptN     int // server stretch cost (r=8, p=1)
	KA          []byte
	WrapWrapKb  []byte
	CreatedAt   int64 // ms
	VerifierSet int64 // ms; the OAuth "fxa-generation" (bumped by password change/reset)
	KeysChanged int64 // ms; keys_changed_at / keyRotationTimestamp (bumped by reset only)
	Locale      string
}

// Kinds of AccountToken.
const (
	AccountTokenSession  = "session"
	AccountTokenKeyFetch = "keyFetch"
	AccountTokenCode     = "code"    // OAuth authorization code (id = sha256(code))
	AccountTokenRefresh  = "refresh" // OAuth refresh token (id = sha256(token))
	AccountTokenDevice   = "device"  // a registered device (id = device id)
	AccountTokenRevoked  = "revoked" // a revoked access-token jti, kept until it expires
)

// AccountToken is a stored credential or grant. ID is hex; what AuthKey
// and Data hold depends on Kind (Data is kind-specific JSON).
type AccountToken struct {
	ID        string
	Kind      string
	UID       string
	AuthKey   []byte // Hawk key for session / keyFetch tokens
	Data      []byte
	CreatedAt int64 // ms
	ExpiresAt int64 // ms; 0 = never
	LastUsed  int64 // ms
}

// DeviceCommand is one queued device command (FxA's "pushbox" record): what
// POST /v1/account/devices/invoke_command stores for the target device
// and GET /v1/account/device/commands hands it.
type DeviceCommand struct {
	// Index is assigned by PutCommand: it increases with every command
	// stored and is never reused, even after the newest command expired
	// or was deleted, because Firefox skips indexes up to the last one it
	// handled.
	Index     int64
	UID       string
	DeviceID  string // the target device
	Data      []byte // JSON {command, payload, sender}
	CreatedAt int64  // ms
	ExpiresAt int64  // ms
}

// OAuthSigningKey is an OAuth access-token signing key (RSA, PKCS#8 PEM).
type OAuthSigningKey struct {
	KID        string
	PrivatePEM string
	CreatedAt  int64 // ms
}

// AccountStore persists accounts. sqlstore.AccountStore implements it on
// SQLite, MySQL and PostgreSQL (schema set "accounts"). Methods that change
// more than one row do so in one transaction: nothing is ever half-created.
type AccountStore interface {
	// CreateAccount inserts a and the given tokens atomically;
	// ErrEmailExists if a.NormEmail is taken.
	CreateAccount(ctx context.Context, a Account, tokens []AccountToken) error
	AccountByEmail(ctx context.Context, normEmail string) (Account, error)
	AccountByUID(ctx context.Context, uid string) (Account, error)
	// UpdateCredentials replaces the account's password-derived fields
	// (AuthSalt, VerifyHash, ScryptN, KA, WrapWrapKb, VerifierSet,
	// KeysChanged), deletes every token of the account except devices, and
	// inserts the given tokens, atomically.
	UpdateCredentials(ctx context.Context, a Account, tokens []AccountToken) error
	// ListAccounts returns up to limit accounts with uid > afterUID, by uid
	// (operator listing, paged).
	ListAccounts(ctx context.Context, afterUID string, limit int) ([]Account, error)
	// DeleteAccount removes the account, all its tokens and its devices'
	// command queues.
	DeleteAccount(ctx context.Context, uid string) error

	PutToken(ctx context.Context, t AccountToken) error
	Token(ctx context.Context, id string) (AccountToken, error)
	// TakeToken deletes and returns a token atomically (single-use
	// credentials: keyFetch tokens, authorization codes); ErrAccountNotFound if
	// it was not there, so two concurrent takers cannot both win.
	TakeToken(ctx context.Context, id string) (AccountToken, error)
	DeleteToken(ctx context.Context, id string) error
	TouchToken(ctx context.Context, id string, lastUsed int64) error
	// SwapTokenData replaces a token's Data with next if it still is
	// prev, and reports whether it did: a change computed from a read
	// (a device marked pushEndpointExpired) never revives a token deleted
	// meanwhile nor undoes a newer write.
	SwapTokenData(ctx context.Context, id string, prev, next []byte) (bool, error)
	// Tokens lists an account's tokens of one kind.
	Tokens(ctx context.Context, uid, kind string) ([]AccountToken, error)
	// PurgeExpired deletes tokens and commands whose ExpiresAt is before
	// now (ms).
	PurgeExpired(ctx context.Context, now int64) (int64, error)

	// PutCommand appends c to its device's queue and returns the index it
	// got; ErrCommandQueueFull if the device already has maxPending unexpired
	// commands (now is c.CreatedAt).
	PutCommand(ctx context.Context, c DeviceCommand, maxPending int) (int64, error)
	// Commands returns up to limit unexpired commands (ExpiresAt >= now) of
	// the account's device with Index >= from, ascending, and whether they
	// reach the end of the queue.
	Commands(ctx context.Context, uid, deviceID string, from int64, limit int, now int64) (cmds []DeviceCommand, last bool, err error)
	// DeleteCommands drops a device's queue (the device is gone).
	DeleteCommands(ctx context.Context, uid, deviceID string) error
	// RemoveDevice deletes the account's device token deviceID, its
	// session token sessionID (if not ""), and its command queue, and
	// stores revoked (if not nil, replacing a token of its ID), atomically:
	// a failure leaves a device with its session, queue and grants intact.
	// Ids that name nothing of the account are no error.
	RemoveDevice(ctx context.Context, uid, deviceID, sessionID string, revoked *AccountToken) error
	// EndToken deletes the account's session or refresh token id and
	// stores revoked (replacing a token of its ID) atomically: a sign-out
	// never leaves the grant's access tokens valid without its token, or
	// the reverse. An id that names nothing of the account is no error.
	EndToken(ctx context.Context, uid, id string, revoked AccountToken) error

	SigningKeys(ctx context.Context) ([]OAuthSigningKey, error)
	// AddSigningKey stores k unless a key with its KID exists.
	AddSigningKey(ctx context.Context, k OAuthSigningKey) error
}
