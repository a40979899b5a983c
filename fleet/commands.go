package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weave-sync/weave/internal/cli"
)

// NodeFlags are the flags of `weave node`, and what it needs of the
// database adapter.
type NodeFlags struct {
	DSN        string // node add: the shard database
	Capacity   int64
	RetryAfter string
	Backoff    string
	To         string // node drain: comma-separated node URLs
	Parallel   int

	// CheckShard opens a shard, its schema brought up to date, and
	// describes it for node add's report (its kind and redacted URL).
	CheckShard func(ctx context.Context, dsn string) (string, error)
	// Redact hides a database URL's secrets; Health reports whether a
	// shard answers (node list).
	Redact func(dsn string) string
	Health func(ctx context.Context, dsn string) string
}

// RegisterFlags registers the flags of `weave node`.
func (f *NodeFlags) RegisterFlags(c *cli.Command) {
	// Not read from WEAVE_DATABASE_URL: that names the storage database
	// of `weave serve`, not a new node's.
	c.SecretNoEnv(&f.DSN, "database-url", "", "node add: the node's shard database (sqlite:///abs/path.db, mysql://… or postgres://…)")
	c.Int64(&f.Capacity, "capacity", 100000, "node add: users the node takes").Min(0)
	c.String(&f.RetryAfter, "retry-after", "", "node set-state: Retry-After sent to the users of a down node, in seconds (default: keep the node's; 0 means 300)")
	c.String(&f.Backoff, "backoff", "", "node set-state: X-Weave-Backoff sent to the users of a backoff node, in seconds (default: keep the node's; 0 means 300)")
	c.String(&f.To, "to", "", "node drain: comma-separated URLs of the nodes that take the users (default: every other node that is up)")
	c.Int(&f.Parallel, "parallel", 4, "node drain: users moved at once").Min(1)
}

// RunNode runs `weave node add|list|set-state|drain` with its positional
// arguments.
func (a *Admin) RunNode(ctx context.Context, args []string, f *NodeFlags) error {
	if len(args) == 0 {
		return errors.New("want add, list, set-state or drain (see `weave node --help`)")
	}
	switch args[0] {
	case "add":
		if len(args) != 2 {
			return errors.New("usage: weave node add URL --database-url DSN [--capacity N]")
		}
		return a.AddNode(ctx, args[1], f.DSN, f.Capacity, f.CheckShard)
	case "list":
		return a.ListNodes(ctx, f.Redact, f.Health)
	case "set-state":
		if len(args) != 3 {
			return errors.New("usage: weave node set-state URL up|backoff|draining|down [--retry-after S] [--backoff S]")
		}
		return a.SetState(ctx, args[1], args[2], f.RetryAfter, f.Backoff)
	case "drain":
		if len(args) != 2 {
			return errors.New("usage: weave node drain URL [--to URL,...] [--parallel N]")
		}
		return a.Drain(ctx, args[1], cli.List(f.To), f.Parallel)
	}
	return fmt.Errorf("unknown node command %q: want add, list, set-state or drain", args[0])
}

// UserFlags are the flags of `weave user`.
type UserFlags struct {
	To     string // user migrate: the node that takes the user
	Retire bool
	Yes    bool
}

// RegisterFlags registers the flags of `weave user`.
func (f *UserFlags) RegisterFlags(c *cli.Command) {
	c.String(&f.To, "to", "", "user migrate: URL of the node that takes the user")
	c.Bool(&f.Retire, "retire", false, "user delete: also retire the account for good (it never gets a token again); without it the next sync starts afresh under a new uid")
	c.Bool(&f.Yes, "yes", false, "user delete: confirm the deletion")
}

// RunUser runs `weave user show|migrate|delete` with its positional
// arguments.
func (a *Admin) RunUser(ctx context.Context, args []string, f *UserFlags) error {
	if len(args) != 2 {
		return errors.New("want show EMAIL|UID, migrate UID --to URL or delete UID (see `weave user --help`)")
	}
	switch args[0] {
	case "show":
		return a.Migrator.ShowUser(ctx, a.Out, args[1])
	case "migrate":
		return a.MigrateUser(ctx, args[1], f.To)
	case "delete":
		return a.DeleteUser(ctx, args[1], f.Retire, f.Yes)
	}
	return fmt.Errorf("unknown user command %q: want show, migrate or delete", args[0])
}

// ServeFlags are the flags of `weave serve` that say which nodes it serves
// and how it keeps them.
type ServeFlags struct {
	Nodes         string        // see AddNodes
	StateRefresh  time.Duration // see NewWatcher and Follow
	PurgeInterval time.Duration // see NodeSetConfig.PurgeEvery
	// ResumeMovesAfter is the Resumer's After (0: this process resumes
	// no moves).
	ResumeMovesAfter time.Duration
}

// RegisterFlags registers --nodes, --state-refresh, --purge-interval and
// --resume-moves-after.
func (f *ServeFlags) RegisterFlags(c *cli.Command) {
	c.String(&f.Nodes, "nodes", "", "other storage nodes this process serves besides its own: \"all\" (every node of the token database with a database URL) or comma-separated node URLs; requests are routed by Host and path prefix (see weave node --help)")
	c.Duration(&f.StateRefresh, "state-refresh", time.Second, "how often node states and user move marks are re-read from the databases").Min(10 * time.Millisecond)
	c.Duration(&f.PurgeInterval, "purge-interval", 15*time.Minute, "how often expired records and batches are purged (0: never; see `weave db purge`)").Min(0)
	c.Duration(&f.ResumeMovesAfter, "resume-moves-after", DefaultResumeAfter, "finish a journaled user move (weave user migrate, weave node drain) whose mover has not renewed it for this long: it died, and its user's writes are refused until the move ends (0: never; keep it well above the movers' 10 s heartbeat)").Min(0)
}
