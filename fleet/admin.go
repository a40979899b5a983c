package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/weave-sync/weave"
)

// Admin runs the operator's node and user commands (`weave node`,
// `weave user`) over a Migrator, whose Dir is the token database, and
// prints what they did to Out (drain progress to Progress).
type Admin struct {
	Migrator      *Migrator
	Out, Progress io.Writer
}

func parseUID(s string) (int64, error) {
	uid, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("uid %q: want a number", s)
	}
	return uid, nil
}

// MigrateUser moves a user to the node at to (`weave user migrate`); an
// empty to finishes an interrupted move.
func (a *Admin) MigrateUser(ctx context.Context, uidText, to string) error {
	uid, err := parseUID(uidText)
	if err != nil {
		return err
	}
	res, err := a.Migrator.MigrateUser(ctx, uid, weave.CleanNodeURL(to))
	if err != nil {
		return fmt.Errorf("%w (run the same command again to finish the move)", err)
	}
	if res.From == res.To {
		fmt.Fprintf(a.Out, "uid %d is already on %s\n", uid, res.To)
		return nil
	}
	verb := "moved"
	if res.Resumed {
		verb = "finished moving"
	}
	fmt.Fprintf(a.Out, "%s uid %d from %s to %s: %d records, writes held for %s\n", verb, uid, res.From, res.To, res.Records, res.Locked.Round(time.Millisecond))
	return nil
}

// DeleteUser deletes a user's data (`weave user delete`): a "deleted" mark
// stays on the node, so clients holding a token for the old uid get 401
// and, with a new token, a new uid; with retire the account never gets a
// token again.
func (a *Admin) DeleteUser(ctx context.Context, uidText string, retire, confirmed bool) error {
	uid, err := parseUID(uidText)
	if err != nil {
		return err
	}
	if !confirmed {
		return errors.New("this deletes all of the user's sync data: add --yes to confirm")
	}
	dir := a.Migrator.Dir
	u, err := dir.UserByUID(ctx, uid)
	if err != nil {
		return fmt.Errorf("uid %d: %w", uid, err)
	}
	if err := a.Migrator.DeleteUser(ctx, u); err != nil {
		return err
	}
	if retire {
		err = dir.RetireUser(ctx, u.Email)
	} else {
		err = dir.ReplaceUserRecords(ctx, u.Email)
	}
	if err != nil {
		return err
	}
	if err := dir.DeleteUser(ctx, uid); err != nil && !errors.Is(err, weave.ErrNotFound) {
		return err
	}
	how := "its next sync starts afresh under a new uid"
	if retire {
		how = "the account is retired"
	}
	fmt.Fprintf(a.Out, "deleted uid %d (%s): data removed from %s, %s\n", uid, u.Email, u.NodeURL(), how)
	return nil
}

// SetState sets a node's state (`weave node set-state`); retryAfter and
// backoff are seconds ("30", "30s" or "5m"), "" keeps the node's.
func (a *Admin) SetState(ctx context.Context, nodeURL, state, retryAfter, backoff string) error {
	st, err := weave.ParseNodeState(state)
	if err != nil {
		return err
	}
	ra, err := parseSeconds("retry-after", retryAfter)
	if err != nil {
		return err
	}
	bo, err := parseSeconds("backoff", backoff)
	if err != nil {
		return err
	}
	dir := a.Migrator.Dir
	n, err := dir.NodeByURL(ctx, weave.CleanNodeURL(nodeURL))
	if err != nil {
		return fmt.Errorf("node %s: %w", nodeURL, err)
	}
	if retryAfter == "" {
		ra = n.RetryAfter
	}
	if backoff == "" {
		bo = n.Backoff
	}
	if err := dir.SetNodeState(ctx, n.ID, st, ra, bo); err != nil {
		return err
	}
	fmt.Fprintf(a.Out, "node %s: %s → %s (retry-after %ds, backoff %ds); serving processes apply it within seconds\n",
		n.URL, n.State, st, int(ra.Seconds()), int(bo.Seconds()))
	return nil
}

// parseSeconds reads "30", "30s" or "5m".
func parseSeconds(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--%s %q: want seconds, e.g. 30 or 5m", name, s)
	}
	return d.Round(time.Second), nil
}

// Drain moves every user off a node (`weave node drain`), showing its
// progress.
func (a *Admin) Drain(ctx context.Context, nodeURL string, to []string, parallel int) error {
	p, err := a.Migrator.Drain(ctx, weave.CleanNodeURL(nodeURL), DrainOptions{
		To:       to,
		Parallel: parallel,
		Progress: func(p DrainProgress) { fmt.Fprint(a.Progress, p.Line()) },
	})
	fmt.Fprintf(a.Progress, "\n")
	fmt.Fprintf(a.Out, "drained %s: %d users moved, %d failed, in %s\n", nodeURL, p.Done-p.Failed, p.Failed, p.Elapsed.Round(time.Millisecond))
	return err
}
