// Package importer moves the users of a Mozilla Sync deployment — a
// syncstorage-rs storage database (MySQL schema) and its tokenserver
// database — into a weave node, keeping every user's uid, token record,
// collections, records and timestamps, so that clients carry on syncing
// without uploading their data again.
//
// Per account, the importer copies the data of each live record into the
// node's shard, checks the copy against the source (counts and a checksum
// per collection), and only then inserts the account's token records. A
// user whose token record already exists in weave was imported before and
// is skipped, so an interrupted import is finished by running it again.
// The source is only read; stop its storage service while importing (or
// import again the users that synced meanwhile, after deleting them in
// weave).
package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// Options configure Run.
type Options struct {
	// Storage is the syncstorage-rs database (tables bso, collections,
	// user_collections), MySQL/MariaDB.
	Storage *sql.DB
	// Tokens is the tokenserver database (tables services, nodes, users),
	// MySQL/MariaDB; it may be the same pool as Storage.
	Tokens *sql.DB
	// Service is the tokenserver service whose users are imported
	// (default "sync-1.5").
	Service string
	// SourceNode, if set, restricts the import to the users the
	// tokenserver assigned to that node URL (one syncstorage database of
	// several).
	SourceNode string
	// Dest is weave's token database and Node the weave node (in Dest)
	// that receives the users; Shard is that node's store.
	Dest  *sqlstore.TokenDB
	Node  weave.Node
	Shard weave.UserMover
	// Users, if positive, is how many accounts to import at most (in
	// email order); accounts skipped as already imported count too.
	Users int
	// Progress, if set, is called after each account.
	Progress func(Progress)
}

// Progress describes the account just handled.
type Progress struct {
	Done, Total int // accounts handled so far, accounts to handle
	Email       string
	UIDs        []int64 // the account's live uids
	Skipped     bool    // already imported
	BSOs        int     // records copied for this account
	Err         error   // the account failed (Run stops)
}

// Report summarises a run.
type Report struct {
	Accounts    int   // accounts handled
	Imported    int   // accounts imported by this run
	Skipped     int   // accounts already imported
	Records     int   // token records inserted
	Collections int   // collections copied
	BSOs        int   // records (BSOs) copied
	Bytes       int64 // payload bytes copied
}

// Run imports the accounts. It stops at the first failing account, which
// is left without a token record in weave (running Run again retries it).
func Run(ctx context.Context, o Options) (Report, error) {
	var rep Report
	if o.Storage == nil || o.Tokens == nil || o.Dest == nil || o.Shard == nil || o.Node.ID == 0 {
		return rep, errors.New("importer: Storage, Tokens, Dest, Node and Shard are required")
	}
	if o.Service == "" {
		o.Service = "sync-1.5"
	}
	expiryCol, err := ExpiryColumn(ctx, o.Storage)
	if err != nil {
		return rep, err
	}
	accounts, err := readAccounts(ctx, o)
	if err != nil {
		return rep, err
	}
	if o.Users > 0 && len(accounts) > o.Users {
		accounts = accounts[:o.Users]
	}
	for i, acc := range accounts {
		p := Progress{Done: i + 1, Total: len(accounts), Email: acc.email}
		for _, r := range acc.recs {
			if r.ReplacedAt == 0 {
				p.UIDs = append(p.UIDs, r.UID)
			}
		}
		err := importAccount(ctx, o, expiryCol, acc, &p, &rep)
		rep.Accounts++
		if err != nil {
			err = fmt.Errorf("importer: account %s: %w", acc.email, err)
			p.Err = err
		}
		if o.Progress != nil {
			o.Progress(p)
		}
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

type account struct {
	email string
	recs  []weave.TokenUser // ordered by uid
}

// readAccounts lists the service's token records, grouped by account.
func readAccounts(ctx context.Context, o Options) ([]account, error) {
	q := `SELECT u.uid, u.email, u.generation, u.client_state, COALESCE(u.keys_changed_at, 0),
		u.created_at, COALESCE(u.replaced_at, 0)
		FROM users u JOIN services s ON s.id = u.service`
	args := []any{o.Service}
	where := ` WHERE s.service = ?`
	if o.SourceNode != "" {
		q += ` JOIN nodes n ON n.id = u.nodeid`
		where += ` AND n.node = ?`
		args = append(args, o.SourceNode)
	}
	rows, err := o.Tokens.QueryContext(ctx, q+where+` ORDER BY u.email, u.uid`, args...)
	if err != nil {
		return nil, fmt.Errorf("importer: read tokenserver users: %w", err)
	}
	defer rows.Close()
	var out []account
	for rows.Next() {
		var r weave.TokenUser
		if err := rows.Scan(&r.UID, &r.Email, &r.Generation, &r.ClientState, &r.KeysChangedAt, &r.CreatedAt, &r.ReplacedAt); err != nil {
			return nil, fmt.Errorf("importer: read tokenserver users: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].email != r.Email {
			out = append(out, account{email: r.Email})
		}
		out[len(out)-1].recs = append(out[len(out)-1].recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("importer: read tokenserver users: %w", err)
	}
	return out, nil
}

func importAccount(ctx context.Context, o Options, expiryCol string, acc account, p *Progress, rep *Report) error {
	// Already imported? Token records are written last, after the data
	// was verified, so an existing record means the account is done.
	done := true
	for _, r := range acc.recs {
		u, err := o.Dest.UserByUID(ctx, r.UID)
		switch {
		case errors.Is(err, weave.ErrNotFound):
			done = false
		case err != nil:
			return err
		case u.Email != acc.email:
			return fmt.Errorf("uid %d is already taken in weave by %s", r.UID, u.Email)
		}
	}
	if done {
		p.Skipped = true
		rep.Skipped++
		return nil
	}
	for _, uid := range p.UIDs {
		d, bytes, err := ReadUser(ctx, o.Storage, expiryCol, uid)
		if err != nil {
			return err
		}
		if err := o.Shard.ImportUser(ctx, d); err != nil {
			return fmt.Errorf("uid %d: write to shard: %w", uid, err)
		}
		if err := verify(ctx, o.Shard, d); err != nil {
			return fmt.Errorf("uid %d: %w", uid, err)
		}
		for _, c := range d.Collections {
			p.BSOs += len(c.BSOs)
		}
		rep.Collections += len(d.Collections)
		rep.Bytes += bytes
	}
	n, err := o.Dest.ImportUserRecords(ctx, o.Node.ID, acc.recs)
	if err != nil {
		return err
	}
	rep.Records += n
	rep.BSOs += p.BSOs
	rep.Imported++
	return nil
}

// verify compares the shard's copy of d.UID with d.
func verify(ctx context.Context, shard weave.UserMover, d weave.UserData) error {
	got, err := shard.DigestUser(ctx, d.UID)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	want := weave.DigestUserData(d)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			return fmt.Errorf("verify: collection %q differs after the copy: %+v, want %+v", k, got[k], want[k])
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("verify: %d collections after the copy, want %d", len(got), len(want))
	}
	return nil
}

// ExpiryColumn returns the name of the bso table's absolute-expiry column
// (ms since the epoch): "ttl" in syncstorage-rs databases migrated past
// 2019-09-11 (the column keeps its legacy name), "expiry" before.
func ExpiryColumn(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM bso WHERE 1 = 0`)
	if err != nil {
		return "", fmt.Errorf("importer: read source bso table: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	for _, want := range []string{"ttl", "expiry"} {
		for _, c := range cols {
			if strings.EqualFold(c, want) {
				return c, nil
			}
		}
	}
	return "", fmt.Errorf("importer: source bso table has neither a ttl nor an expiry column (columns %v)", cols)
}

// ReadUser reads one user's storage from a syncstorage-rs MySQL database
// (collections, their timestamps and every BSO, expired or not), and the
// total payload size. expiryCol is ExpiryColumn's answer. Open batches are
// not read.
func ReadUser(ctx context.Context, db *sql.DB, expiryCol string, uid int64) (weave.UserData, int64, error) {
	d := weave.UserData{UID: uid}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return d, 0, fmt.Errorf("uid %d: read source: %w", uid, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	byID := map[int64]*weave.UserCollection{}
	names := map[int64]string{}
	rows, err := tx.QueryContext(ctx, `SELECT id, name FROM collections`)
	if err != nil {
		return d, 0, fmt.Errorf("uid %d: read source collections: %w", uid, err)
	}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return d, 0, err
		}
		names[id] = name
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, 0, err
	}
	coll := func(id int64) (*weave.UserCollection, error) {
		if c, ok := byID[id]; ok {
			return c, nil
		}
		name, ok := names[id]
		if !ok {
			return nil, fmt.Errorf("uid %d: collection id %d has no name in the collections table", uid, id)
		}
		c := &weave.UserCollection{Name: name}
		byID[id] = c
		return c, nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT collection, last_modified FROM user_collections WHERE userid = ?`, uid)
	if err != nil {
		return d, 0, fmt.Errorf("uid %d: read source user_collections: %w", uid, err)
	}
	for rows.Next() {
		var id, mod int64
		if err := rows.Scan(&id, &mod); err != nil {
			rows.Close()
			return d, 0, err
		}
		c, err := coll(id)
		if err != nil {
			rows.Close()
			return d, 0, err
		}
		c.Modified = weave.Timestamp(mod)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, 0, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT collection, id, sortindex, payload, modified, `+expiryCol+` FROM bso WHERE userid = ?`, uid)
	if err != nil {
		return d, 0, fmt.Errorf("uid %d: read source bso: %w", uid, err)
	}
	var bytes int64
	for rows.Next() {
		var cid, mod, exp int64
		var b weave.UserBSO
		var sortIndex sql.NullInt64
		if err := rows.Scan(&cid, &b.ID, &sortIndex, &b.Payload, &mod, &exp); err != nil {
			rows.Close()
			return d, 0, err
		}
		if sortIndex.Valid {
			b.SortIndex = &sortIndex.Int64
		}
		b.Modified, b.Expiry = weave.Timestamp(mod), exp
		c, err := coll(cid)
		if err != nil {
			rows.Close()
			return d, 0, err
		}
		// A record newer than its collection's timestamp (or with no
		// user_collections row) raises the collection's timestamp.
		c.Modified = max(c.Modified, b.Modified)
		c.BSOs = append(c.BSOs, b)
		bytes += int64(len(b.Payload))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, 0, err
	}
	for _, c := range byID {
		d.Collections = append(d.Collections, *c)
		d.Modified = max(d.Modified, c.Modified)
	}
	d.Exists = len(d.Collections) > 0
	weave.SortUserData(&d)
	return d, bytes, nil
}
