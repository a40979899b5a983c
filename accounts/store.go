package accounts

import "github.com/weave-sync/weave"

// The account domain (records, tokens, device commands, keys and the store
// interface) is at the root, so that the SQL adapter implements it without
// importing this package's handlers; these are the short names this package
// uses for it.
type (
	Account    = weave.Account
	Token      = weave.AccountToken
	Command    = weave.DeviceCommand
	SigningKey = weave.OAuthSigningKey
	Store      = weave.AccountStore
)

// Token kinds.
const (
	KindSession  = weave.AccountTokenSession
	KindKeyFetch = weave.AccountTokenKeyFetch
	KindCode     = weave.AccountTokenCode
	KindRefresh  = weave.AccountTokenRefresh
	KindDevice   = weave.AccountTokenDevice
	KindRevoked  = weave.AccountTokenRevoked
)

// Store errors.
var (
	ErrNotFound    = weave.ErrAccountNotFound
	ErrEmailExists = weave.ErrEmailExists
	ErrQueueFull   = weave.ErrCommandQueueFull
)
