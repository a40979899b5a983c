package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"

	"github.com/weave-sync/weave"
)

var _ weave.PushStatsReader = (*PushStore)(nil)

// Stats implements weave.PushStatsReader: a handful of counting reads (each
// its own snapshot, so totals taken while the service runs may disagree by
// the messages that moved in between; fine for an operator's view).
func (s *PushStore) Stats(ctx context.Context, now int64) (weave.PushStats, error) {
	st := weave.PushStats{At: now, Waiting: make([]int64, len(weave.PushAgeBuckets)+1)}
	one := func(dst *int64, q string, args ...any) error {
		return s.queryRow(ctx, func(r *sql.Row) error { return r.Scan(dst) }, q, args...)
	}
	// Waiting messages by age: one SUM(CASE …) per bucket in one scan.
	var cases []string
	var args []any
	lo := int64(math.MaxInt64) // "younger than b" is created > now - b; a clock ahead of ours counts as young
	for _, b := range weave.PushAgeBuckets {
		hi := now - b.Milliseconds()
		cases = append(cases, `COALESCE(SUM(CASE WHEN created < ? AND created > ? THEN 1 ELSE 0 END), 0)`)
		args = append(args, lo, hi)
		lo = hi + 1
	}
	cases = append(cases, `COALESCE(SUM(CASE WHEN created < ? THEN 1 ELSE 0 END), 0)`, `COALESCE(MIN(created), 0)`)
	args = append(args, lo, now)
	dst := make([]any, 0, len(st.Waiting)+1)
	for i := range st.Waiting {
		dst = append(dst, &st.Waiting[i])
	}
	dst = append(dst, &st.Oldest)
	err := errors.Join(
		one(&st.UAIDs, `SELECT COUNT(*) FROM push_users`),
		one(&st.Channels, `SELECT COUNT(*) FROM push_channels`),
		one(&st.Expired, `SELECT COUNT(*) FROM push_messages WHERE expires <= ?`, now),
		one(&st.Wakeups, `SELECT COUNT(*) FROM push_wakeups`),
		s.queryRow(ctx, func(r *sql.Row) error { return r.Scan(dst...) },
			`SELECT `+strings.Join(cases, ", ")+` FROM push_messages WHERE expires > ?`, args...),
	)
	if err != nil {
		return weave.PushStats{}, err
	}
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT node_id, COUNT(*), MAX(connected) FROM push_users WHERE node_id <> '' GROUP BY node_id ORDER BY COUNT(*) DESC, node_id`))
	if err != nil {
		return weave.PushStats{}, s.db.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n weave.PushNodeConns
		if err := rows.Scan(&n.Node, &n.Connections, &n.LastConnect); err != nil {
			return weave.PushStats{}, s.db.Classify(err)
		}
		st.Nodes = append(st.Nodes, n)
	}
	return st, s.db.Classify(rows.Err())
}
