package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weave-sync/weave"
)

// ShowUser writes what the token database and the user's shard know of a
// user (`weave user show`), given a uid or the account's token-database
// email.
func (m *Migrator) ShowUser(ctx context.Context, w io.Writer, who string) error {
	var u weave.TokenUser
	var err error
	if uid, perr := strconv.ParseInt(who, 10, 64); perr == nil {
		u, err = m.Dir.UserByUID(ctx, uid)
	} else {
		u, err = m.Dir.GetUser(ctx, who)
	}
	if errors.Is(err, weave.ErrNotFound) {
		return fmt.Errorf("no user %s in the token database (give a uid, or the account's email as <fxa uid>@<domain>)", who)
	}
	if err != nil {
		return fmt.Errorf("user %s: %w", who, err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "uid\t%d\n", u.UID)
	fmt.Fprintf(tw, "email\t%s\n", u.Email)
	node := "(removed)"
	if u.Node != nil {
		node = fmt.Sprintf("%s (id %d, %s)", u.Node.URL, u.NodeID, u.Node.State)
	}
	fmt.Fprintf(tw, "node\t%s\n", node)
	status := "live"
	switch {
	case u.Retired():
		status = "retired (account deleted)"
	case u.ReplacedAt != 0:
		status = "replaced at " + msTime(u.ReplacedAt)
	}
	fmt.Fprintf(tw, "record\t%s\n", status)
	if !u.Retired() {
		fmt.Fprintf(tw, "generation\t%d\n", u.Generation)
	}
	fmt.Fprintf(tw, "client state\t%s\n", u.ClientState)
	fmt.Fprintf(tw, "keys changed at\t%s\n", msTime(u.KeysChangedAt))
	fmt.Fprintf(tw, "created\t%s\n", msTime(u.CreatedAt))
	if j, err := m.Dir.Migration(ctx, u.UID); err == nil {
		fmt.Fprintf(tw, "move\tunfinished, node %d → %d, last step %s, last renewed at %s (a serving process finishes it once idle for its --resume-moves-after; or run `weave user migrate %d`)\n", j.FromNode, j.ToNode, j.Step, msTime(j.UpdatedAt), u.UID)
	}
	if u.Node == nil {
		return tw.Flush()
	}
	shard, err := m.Open(ctx, *u.Node)
	if err != nil {
		fmt.Fprintf(tw, "storage\tunavailable: %v\n", err)
		return tw.Flush()
	}
	defer shard.Close()
	if st, target, err := shard.MoveState(ctx, u.UID); err == nil && st != weave.MoveNone {
		fmt.Fprintf(tw, "move mark\t%s (→ %s)\n", st, target)
	}
	d, err := shard.ExportUser(ctx, u.UID)
	if err != nil {
		fmt.Fprintf(tw, "storage\tunavailable: %v\n", err)
		return tw.Flush()
	}
	if !d.Exists {
		fmt.Fprintf(tw, "storage\tempty\n")
		return tw.Flush()
	}
	var total, bytes int64
	for _, c := range d.Collections {
		total += int64(len(c.BSOs))
		for _, b := range c.BSOs {
			bytes += int64(len(b.Payload))
		}
	}
	fmt.Fprintf(tw, "storage\t%d records, %d payload bytes, %d collections, %d open batches, last modified %s\n",
		total, bytes, len(d.Collections), len(d.Batches), d.Modified.Time().UTC().Format(time.RFC3339))
	sort.Slice(d.Collections, func(i, j int) bool { return d.Collections[i].Name < d.Collections[j].Name })
	for _, c := range d.Collections {
		fmt.Fprintf(tw, "  %s\t%d records, modified %s\n", c.Name, len(c.BSOs), c.Modified)
	}
	return tw.Flush()
}

func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// WriteNodes writes the node table of `weave node list`; describe gives a
// node's database as shown (its password redacted) and its health.
func WriteNodes(w io.Writer, nodes []weave.Node, describe func(weave.Node) (database, health string)) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tSTATE\tUSERS\tLOAD/CAPACITY\tAVAILABLE\tRETRY-AFTER\tBACKOFF\tDATABASE\tHEALTH")
	for _, n := range nodes {
		shown, health := describe(n)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d/%d\t%d\t%ds\t%ds\t%s\t%s\n", n.ID, n.URL, n.State, n.Users, n.CurrentLoad, n.Capacity,
			n.Available, int(n.RetryAfter.Seconds()), int(n.Backoff.Seconds()), shown, health)
	}
	return tw.Flush()
}

// Line is the progress line of a drain, written over itself with \r; a
// failed user's error follows on a line of its own.
func (p DrainProgress) Line() string {
	const width = 30
	done := width
	if p.Total > 0 {
		done = p.Done * width / p.Total
	}
	bar := strings.Repeat("#", done) + strings.Repeat(".", width-done)
	line := fmt.Sprintf("\r[%s] %d/%d users, %d failed, %s", bar, p.Done, p.Total, p.Failed, p.Elapsed.Round(time.Second))
	if p.Err != nil {
		line += fmt.Sprintf("\nuid %d: %v\n", p.Last.UID, p.Err)
	}
	return line
}
