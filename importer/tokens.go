package importer

import (
	"context"
	"fmt"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// Both tokenservers (Python, and syncstorage-rs's on MySQL or PostgreSQL)
// have the same tables: services (id, service), nodes (id, node) and users
// (uid, service, email, generation, client_state, created_at,
// replaced_at, nodeid, keys_changed_at). Python deployments older than
// 2019 lack keys_changed_at, and those older than 2014 have users.node
// (the node URL) instead of nodeid.

type account struct {
	email string
	recs  []weave.TokenUser // ordered by uid
}

// readAccounts lists the service's token records, grouped by account.
func readAccounts(ctx context.Context, db *sqlstore.DB, service, sourceNode string) ([]account, error) {
	switch db.Dialect.Name() {
	case "mysql", "postgres":
	default:
		return nil, fmt.Errorf("importer: source token databases are MySQL/MariaDB or PostgreSQL, not %s", db.Dialect.Name())
	}
	tables, err := listColumns(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("importer: list the source token tables: %w", err)
	}
	users := tables["users"]
	for _, c := range []string{"uid", "service", "email", "generation", "client_state", "created_at", "replaced_at"} {
		if !users[c] {
			return nil, fmt.Errorf("importer: the source token database has no tokenserver users table (uid, service, email, generation, client_state, created_at, replaced_at, nodeid): give the tokenserver's database as --from-token-url")
		}
	}
	if tables["services"] == nil {
		return nil, fmt.Errorf("importer: the source token database has no services table: give the tokenserver's database as --from-token-url")
	}
	kca := "0"
	if users["keys_changed_at"] {
		kca = "COALESCE(u.keys_changed_at, 0)"
	}
	q := `SELECT u.uid, u.email, u.generation, u.client_state, ` + kca + `, u.created_at, COALESCE(u.replaced_at, 0)
		FROM users u JOIN services s ON s.id = u.service`
	where := ` WHERE s.service = ?`
	args := []any{service}
	if sourceNode != "" {
		switch {
		case users["nodeid"] && tables["nodes"] != nil:
			q += ` JOIN nodes n ON n.id = u.nodeid`
			where += ` AND n.node = ?`
		case users["node"]:
			where += ` AND u.node = ?`
		default:
			return nil, fmt.Errorf("importer: the source users table names no node (neither nodeid nor node): import without --from-node")
		}
		args = append(args, sourceNode)
	}
	rows, err := db.Read.QueryContext(ctx, db.Q(q+where+` ORDER BY u.email, u.uid`), args...)
	if err != nil {
		return nil, fmt.Errorf("importer: read tokenserver users: %w", err)
	}
	defer rows.Close()
	var out []account
	// Grouped by exact email: a case-insensitive ORDER BY (MySQL's usual
	// collation) may interleave two accounts that differ in case.
	byEmail := map[string]int{}
	for rows.Next() {
		var r weave.TokenUser
		if err := rows.Scan(&r.UID, &r.Email, &r.Generation, &r.ClientState, &r.KeysChangedAt, &r.CreatedAt, &r.ReplacedAt); err != nil {
			return nil, fmt.Errorf("importer: read tokenserver users: %w", err)
		}
		i, ok := byEmail[r.Email]
		if !ok {
			i = len(out)
			byEmail[r.Email] = i
			out = append(out, account{email: r.Email})
		}
		out[i].recs = append(out[i].recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("importer: read tokenserver users: %w", err)
	}
	if len(out) == 0 {
		// Say why nothing happens rather than succeed silently.
		var n int
		if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT COUNT(*) FROM services WHERE service = ?`), service).Scan(&n); err == nil && n == 0 {
			return nil, fmt.Errorf("importer: the source tokenserver has no service %q (see its services table; set --service)", service)
		}
	}
	return out, nil
}
