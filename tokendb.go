package weave

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// The token database maps FxA accounts to storage users (uids) and storage
// users to nodes. Its records follow the token server's data model: a user
// has one row per uid ever issued; the newest live row is the "current
// record", older rows are "replaced" and purged later.

// NodeState is the operator-set state of a storage node.
type NodeState string

const (
	// NodeUp: serving, and open for new users.
	NodeUp NodeState = "up"
	// NodeBackoff: serving its users, who are asked to back off for
	// Node.Backoff (X-Backoff); no new users.
	NodeBackoff NodeState = "backoff"
	// NodeDraining: serving its users while they are migrated elsewhere;
	// no new users.
	NodeDraining NodeState = "draining"
	// NodeDown: out of service; its users get 503 with Retry-After
	// (Node.RetryAfter) and keep their assignment; no new users.
	NodeDown NodeState = "down"
)

// ParseNodeState checks that s names a node state.
func ParseNodeState(s string) (NodeState, error) {
	switch st := NodeState(s); st {
	case NodeUp, NodeBackoff, NodeDraining, NodeDown:
		return st, nil
	}
	return "", fmt.Errorf("weave: unknown node state %q (want up, backoff, draining or down)", s)
}

// AcceptsNewUsers reports whether new users may be assigned to a node in
// this state: only NodeUp does.
func (s NodeState) AcceptsNewUsers() bool { return s == NodeUp }

// Node is a storage node: a public base URL served by one shard database.
type Node struct {
	ID int64
	// URL is the node's public base URL without a trailing slash, e.g.
	// "https://sync1.example.com"; it goes into tokens ("node") and
	// api_endpoint ("<URL>/1.5/<uid>"). Unique per service.
	URL string
	// Capacity is the most users the node should hold.
	Capacity int64
	// CurrentLoad counts user records assigned to the node (live or
	// replaced but not yet purged).
	CurrentLoad int64
	// Available is how many new users may still be assigned before
	// capacity is released again (token server spec §6.1).
	Available int64
	State     NodeState
	// RetryAfter is sent as Retry-After to users of a NodeDown node
	// (whole seconds; 0 lets the token server pick its default).
	RetryAfter time.Duration
	// Backoff is sent as X-Backoff to users of a NodeBackoff node (whole
	// seconds; 0 lets the token server pick its default).
	Backoff time.Duration
	// DatabaseURL is the DSN of the node's shard ("" when the process
	// serving the node has its own configuration).
	DatabaseURL string
	// CreatedAt is when the node was added, in ms since the epoch.
	CreatedAt int64
	// Users is the number of live (not replaced) user records on the node;
	// only TokenDB.Nodes fills it in.
	Users int64
}

// RetiredGeneration is the generation of a retired (deleted) account: no
// credential can ever be newer, so its records never get a token again.
const RetiredGeneration int64 = math.MaxInt64

// TokenUser is one user record of the token database.
type TokenUser struct {
	UID   int64
	Email string // "<fxa_uid>@<domain>"
	// Generation is the highest FxA generation seen (ms);
	// RetiredGeneration for deleted accounts.
	Generation int64
	// ClientState is the lowercase hex fingerprint of the sync key, or "".
	ClientState string
	// KeysChangedAt is the highest key-rotation time seen (ms), 0 if never.
	KeysChangedAt int64
	// CreatedAt and ReplacedAt are ms since the epoch; ReplacedAt is 0
	// while the record is live.
	CreatedAt  int64
	ReplacedAt int64
	// NodeID is the node the record is assigned to; Node is that node,
	// nil if it was removed.
	NodeID int64
	Node   *Node
	// OldClientStates are the distinct client states of the account's
	// other records that differ from ClientState, and FirstSeenAt the
	// oldest CreatedAt among them (filled by GetUser and AllocateUser).
	OldClientStates []string
	FirstSeenAt     int64
}

// Retired reports whether the account was deleted.
func (u TokenUser) Retired() bool { return u.Generation == RetiredGeneration }

// NodeURL is the URL of the user's node, "" if the node was removed.
func (u TokenUser) NodeURL() string {
	if u.Node == nil {
		return ""
	}
	return u.Node.URL
}

// NewTokenUser is what a new user record starts with.
type NewTokenUser struct {
	Generation    int64
	ClientState   string
	KeysChangedAt int64
	// NodeID, if not 0, is the preferred node: it is used when it still
	// exists and is NodeUp or NodeBackoff (a client-state change keeps the
	// user's node). Otherwise the best node is chosen as for a new user.
	NodeID int64
}

var (
	// ErrNoNode: no node can take a new user (all full, not up, or none).
	ErrNoNode = errors.New("weave: no storage node available for new users")
	// ErrNodeExists: a node with that URL already exists.
	ErrNodeExists = errors.New("weave: node already exists")
)

// TokenDB is the token server's database: users → uids → nodes, and the
// node table. Every method is safe for concurrent use, across processes
// sharing the database too. Records are scoped to one service ("sync-1.5"),
// chosen when the TokenDB is built. Missing users or nodes give ErrNotFound;
// database failures ErrUnavailable or ErrConflict (retry later).
type TokenDB interface {
	// GetUser returns the current record of email: among its 20 newest
	// records, the one with the highest (generation, created_at), with
	// OldClientStates and FirstSeenAt taken from the others. Older records
	// still marked live (left by creation races) are marked replaced as of
	// the current record's creation. The current record may itself be
	// replaced (unassigned, retired) or on a removed node (Node nil): the
	// caller then allocates (token server spec §5.2). ErrNotFound if the
	// account has no record.
	GetUser(ctx context.Context, email string) (TokenUser, error)

	// AllocateUser gives email a new record (a new uid) with the values of
	// nu, on nu.NodeID if usable, else on the best node, and marks every
	// other live record of email replaced. The best node is the NodeUp
	// node with free slots and the lowest current_load/capacity (ties: the
	// lowest id); when none has free slots, capacity is released (§6.1)
	// and, if that frees nothing, ErrNoNode is returned.
	//
	// Allocations are serialised, so that concurrent requests converge:
	// if, once serialised, the current record of email is live, on an
	// existing node, and has nu.ClientState — or is retired — it is
	// returned unchanged instead (another request allocated it first).
	AllocateUser(ctx context.Context, email string, nu NewTokenUser) (TokenUser, error)

	// UpdateUser raises the generation and keys_changed_at of a live record
	// in place. It never moves either backwards: if the stored generation
	// is above generation, or the stored keys_changed_at above
	// keysChangedAt (0 keeps the stored value), or the record was
	// replaced, nothing changes and no error is returned.
	UpdateUser(ctx context.Context, uid int64, generation, keysChangedAt int64) error

	// RetireUser marks every live record of email retired (generation
	// RetiredGeneration, replaced now): the account was deleted.
	RetireUser(ctx context.Context, email string) error

	// ReplaceUserRecords marks every live record of email replaced, so the
	// next token request allocates a new uid.
	ReplaceUserRecords(ctx context.Context, email string) error

	// UnassignNode marks every live record on the node replaced, so each of
	// its users gets a new uid on another node at their next token request.
	// It returns the number of records replaced.
	UnassignNode(ctx context.Context, nodeID int64) (int64, error)

	// UserByUID returns one record (without OldClientStates/FirstSeenAt).
	UserByUID(ctx context.Context, uid int64) (TokenUser, error)

	// DeleteUser deletes one record (purge of a replaced record), giving
	// its slot back to its node.
	DeleteUser(ctx context.Context, uid int64) error

	// AddNode adds a node. Zero fields take defaults: State NodeUp,
	// Available ceil(Capacity × release rate) (at most Capacity).
	// ErrNodeExists if the URL is taken.
	AddNode(ctx context.Context, n Node) (Node, error)

	// EnsureNode returns the node with n.URL, adding it as AddNode does if
	// it does not exist. An existing node is returned unchanged: an
	// operator's later changes win over start-up configuration.
	EnsureNode(ctx context.Context, n Node) (Node, error)

	// NodeByURL and NodeByID return one node, or ErrNotFound.
	NodeByURL(ctx context.Context, url string) (Node, error)
	NodeByID(ctx context.Context, id int64) (Node, error)

	// Nodes lists every node with its count of live users, by id.
	Nodes(ctx context.Context) ([]Node, error)

	// SetNodeState sets a node's state and the Retry-After (for NodeDown)
	// and X-Backoff (for NodeBackoff) hints, in whole seconds.
	SetNodeState(ctx context.Context, id int64, state NodeState, retryAfter, backoff time.Duration) error

	// SetNodeCapacity changes a node's capacity; available slots are
	// clamped to what the new capacity leaves.
	SetNodeCapacity(ctx context.Context, id int64, capacity int64) error

	// RemoveNode deletes the node and unassigns its users (UnassignNode).
	RemoveNode(ctx context.Context, id int64) error

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
