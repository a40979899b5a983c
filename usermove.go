package weave

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"slices"
	"strconv"
	"strings"
)

// Moving users between stores (shards). A user's move is driven by an
// operator tool (fleet.Migrator): lock the user on the old store, export,
// import into the new store, verify, re-point the user in the token
// database, mark the user moved on the old store and purge the old copy.

// ErrUserMoved: the user's data left this store for another node; the
// client holds a stale token and must fetch a new one (401).
var ErrUserMoved = errors.New("weave: user moved to another node")

// MoveState is the state of a user on a store being moved out.
type MoveState string

const (
	// MoveNone: the user is not being moved.
	MoveNone MoveState = ""
	// MoveLocked: the user is being copied away; writes are refused with
	// an *UnavailableError (503 + Retry-After), reads still served.
	MoveLocked MoveState = "locked"
	// MoveMoved: the user lives on another node; this store answers
	// ErrUserMoved and its copy of the data is (or will be) purged.
	MoveMoved MoveState = "moved"
)

// MoveStep is the last completed step of a user move, as journaled in the
// token database (the operator's tool resumes a crashed move from it).
type MoveStep string

const (
	MoveStepStarted   MoveStep = "started"
	MoveStepLocked    MoveStep = "locked"
	MoveStepCopied    MoveStep = "copied"
	MoveStepRepointed MoveStep = "repointed"
)

// UserMigration is one journaled user move.
type UserMigration struct {
	UID       int64
	FromNode  int64
	ToNode    int64
	Step      MoveStep
	StartedAt int64 // ms since the epoch
	UpdatedAt int64 // ms since the epoch
}

// ErrMoveTaken: another process holds the user's journaled move (it renewed
// the move's journal row recently, or took it over since the caller did).
var ErrMoveTaken = errors.New("weave: the user's move is held by another process")

// MoveJournal is the token database's journal of user moves in progress,
// one per user. Every method is safe for concurrent use, across processes
// too.
//
// A move is held by one process at a time: the holder knows the row's
// updated_at (the hold), and every journal write of the move succeeds only
// while the row still has it, replacing it with a newer one. A mover renews
// its hold while it works, so a row whose updated_at is old belongs to a
// mover that died; ClaimMigration takes it over, and the old holder (if it
// was only stalled) fails its next journal write and stops.
type MoveJournal interface {
	// StartMigration journals a move of uid from one node to another, or
	// returns the move already journaled for uid (whatever its nodes: a
	// crashed move is finished before a new one starts).
	StartMigration(ctx context.Context, uid, from, to int64) (UserMigration, error)
	// Migration returns uid's journaled move, or ErrNotFound.
	Migration(ctx context.Context, uid int64) (UserMigration, error)
	// Migrations lists every journaled move, by uid.
	Migrations(ctx context.Context) ([]UserMigration, error)
	// ClaimMigration takes uid's journaled move for the caller if its
	// updated_at is before staleBefore (ms since the epoch; math.MaxInt64
	// takes it whatever its age) and returns it, its UpdatedAt the
	// caller's hold; ErrMoveTaken if it is newer, ErrNotFound if there is
	// none.
	ClaimMigration(ctx context.Context, uid, staleBefore int64) (UserMigration, error)
	// SetMigrationStep records the last completed step of uid's move (or,
	// step "", only renews the hold) if held is still the move's hold, and
	// returns the new hold; ErrMoveTaken otherwise.
	SetMigrationStep(ctx context.Context, uid, held int64, step MoveStep) (int64, error)
	// FinishMigration removes uid's move from the journal if held is
	// still its hold; ErrMoveTaken otherwise.
	FinishMigration(ctx context.Context, uid, held int64) error
	// RepointUser moves the record uid from node from to node to (same
	// uid) and journals MoveStepRepointed in the same transaction, if held
	// is still the move's hold (ErrMoveTaken otherwise, and nothing
	// changes); it returns the new hold. A record already on to is left
	// alone (a resumed move).
	RepointUser(ctx context.Context, uid, from, to, held int64) (int64, error)
}

// UserBSO is a stored BSO of an exported user, with its raw expiry.
type UserBSO struct {
	ID        string
	SortIndex *int64
	Payload   string
	Modified  Timestamp
	// Expires is the absolute expiry time, as in BSO; 0 means never.
	Expires Timestamp
	// ParentID and PredecessorID are the Sync 1.1 fields, "" when unset.
	ParentID, PredecessorID string
}

// UserCollection is one collection of an exported user.
type UserCollection struct {
	Name     string
	Modified Timestamp
	BSOs     []UserBSO // ordered by ID
}

// StagedItem is one staged row of an open batch, exactly as stored: the
// composition of the batch's updates for one BSO id.
type StagedItem struct {
	ID          string
	Payload     string
	PayloadSet  bool
	SortIndex   *int64
	SortIndexOK bool // sortindex_set
	TTL         *int64
	TTLSet      bool
}

// UserBatch is one open (or expired, not yet purged) batch upload.
type UserBatch struct {
	// ID is the store's numeric batch id; importing keeps it so that a
	// client's batch id stays valid on the new node.
	ID         int64
	Collection string
	Expiry     int64        // ms since the epoch
	Items      []StagedItem // ordered by ID
}

// UserData is everything a store holds for one user.
type UserData struct {
	UID      int64
	Modified Timestamp // storage timestamp; 0 with no collections if the user has no row
	// Exists is false when the store has no storage row for the user.
	Exists      bool
	Collections []UserCollection // ordered by Name
	Batches     []UserBatch      // ordered by ID
}

// CollectionDigest summarises one collection for verification.
type CollectionDigest struct {
	Modified Timestamp
	Count    int64
	// Sum is a hex SHA-256 over every BSO (id, modified, sortindex,
	// expiry, payload, parentid, predecessorid) in id order.
	Sum string
}

// UserMover is implemented by stores whose users can be moved to another
// store. Every method is safe for concurrent use, across processes too.
type UserMover interface {
	// LockUser marks the user MoveLocked (target names the destination,
	// for operators), atomically with respect to the user's writes: once
	// it returns, no write of the user commits on this store until
	// UnlockUser. Locking a locked user is a no-op; locking a moved user
	// gives ErrUserMoved.
	LockUser(ctx context.Context, uid int64, target string) error
	// UnlockUser removes a MoveLocked mark (an aborted move).
	UnlockUser(ctx context.Context, uid int64) error
	// MoveState returns the user's move state on this store.
	MoveState(ctx context.Context, uid int64) (MoveState, string, error)
	// MoveStates returns the users whose move state was set at or after
	// since (ms since the epoch; 0 for all).
	MoveStates(ctx context.Context, since int64) (map[int64]MoveState, error)
	// ExportUser reads all of the user's data from one snapshot,
	// including expired rows not yet purged.
	ExportUser(ctx context.Context, uid int64) (UserData, error)
	// ImportUser replaces whatever the store holds for d.UID with d in one
	// transaction, and clears any move state of the uid (a user moving
	// back).
	ImportUser(ctx context.Context, d UserData) error
	// DigestUser summarises the user's collections, read from one snapshot.
	DigestUser(ctx context.Context, uid int64) (map[string]CollectionDigest, error)
	// MarkMoved sets the user MoveMoved (target: the new node).
	MarkMoved(ctx context.Context, uid int64, target string) error
	// PurgeUser deletes the user's data, keeping the move state.
	PurgeUser(ctx context.Context, uid int64) error
	// ClearMoveState forgets the uid's move state (the marker of a user
	// deleted for good).
	ClearMoveState(ctx context.Context, uid int64) error
}

// SortUserData puts d's collections, BSOs, batches and staged items in
// their canonical order.
func SortUserData(d *UserData) {
	slices.SortFunc(d.Collections, func(a, b UserCollection) int { return strings.Compare(a.Name, b.Name) })
	for i := range d.Collections {
		slices.SortFunc(d.Collections[i].BSOs, func(a, b UserBSO) int { return strings.Compare(a.ID, b.ID) })
	}
	slices.SortFunc(d.Batches, func(a, b UserBatch) int { return cmp.Compare(a.ID, b.ID) })
	for i := range d.Batches {
		slices.SortFunc(d.Batches[i].Items, func(a, b StagedItem) int { return strings.Compare(a.ID, b.ID) })
	}
}

// DigestUserData summarises every collection of d (and open batches, under
// the key "batch:<id>") for verification of a copy.
func DigestUserData(d UserData) map[string]CollectionDigest {
	SortUserData(&d)
	out := make(map[string]CollectionDigest, len(d.Collections)+len(d.Batches)+1)
	out[""] = CollectionDigest{Modified: d.Modified, Count: int64(len(d.Collections)), Sum: strconv.FormatBool(d.Exists)}
	field := func(h hash.Hash, s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	opt := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	for _, c := range d.Collections {
		h := sha256.New()
		for _, b := range c.BSOs {
			field(h, b.ID)
			field(h, strconv.FormatInt(int64(b.Modified), 10))
			field(h, opt(b.SortIndex))
			field(h, strconv.FormatInt(int64(b.Expires), 10))
			field(h, b.Payload)
			field(h, b.ParentID)
			field(h, b.PredecessorID)
		}
		out[c.Name] = CollectionDigest{Modified: c.Modified, Count: int64(len(c.BSOs)), Sum: hex.EncodeToString(h.Sum(nil))}
	}
	for _, b := range d.Batches {
		h := sha256.New()
		field(h, b.Collection)
		field(h, strconv.FormatInt(b.Expiry, 10))
		for _, it := range b.Items {
			field(h, it.ID)
			field(h, it.Payload)
			field(h, strconv.FormatBool(it.PayloadSet))
			field(h, opt(it.SortIndex))
			field(h, strconv.FormatBool(it.SortIndexOK))
			field(h, opt(it.TTL))
			field(h, strconv.FormatBool(it.TTLSet))
		}
		out["batch:"+strconv.FormatInt(b.ID, 10)] = CollectionDigest{Count: int64(len(b.Items)), Sum: hex.EncodeToString(h.Sum(nil))}
	}
	return out
}
