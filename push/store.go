package push

import "github.com/weave-sync/weave"

// The push domain (the store interface, its records and errors, the
// operator's stats) is at the root, so that the SQL adapter implements it
// without importing this package; these are the short names this package
// uses for it.
type (
	Store       = weave.PushStore
	User        = weave.PushUser
	Message     = weave.PushMessage
	StatsReader = weave.PushStatsReader
	Stats       = weave.PushStats
	NodeConns   = weave.PushNodeConns
)

// Store errors.
var (
	ErrUnknownUser     = weave.ErrPushUnknownUser
	ErrUnknownChannel  = weave.ErrPushUnknownChannel
	ErrTooManyChannels = weave.ErrPushTooManyChannels
)

// AgeBuckets are the age classes of Stats.Waiting (weave.PushAgeBuckets).
var AgeBuckets = weave.PushAgeBuckets
