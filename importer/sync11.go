package importer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// LegacyOptions configure RunLegacy, the import of 1.1 accounts (User API
// 1.0 + Storage API 1.1) from FSyncMS or Mozilla's server-storage.
type LegacyOptions struct {
	// Storage is the source database (FSyncMS's, or server-storage's),
	// SQLite or MySQL/MariaDB; Schema, if set, is the schema it must have
	// (default: recognised from its tables).
	Storage *sqlstore.DB
	Schema  Schema
	// Users, for server-storage, is the database of its users (server-core
	// and server-reg's users or user table) when it is not Storage.
	Users *sqlstore.DB
	// Dest is weave's token database, Accounts its 1.1 accounts, Node the
	// weave node (in Dest) that receives the users and Shard that node's
	// store.
	Dest     weave.TokenDB
	Accounts weave.LegacyUserStore
	Node     weave.Node
	Shard    weave.UserMover
	// Limit, if positive, is how many accounts to handle at most (by
	// username).
	Limit int
	// Reimport and Progress as in Options.
	Reimport bool
	Progress func(Progress)
}

// RunLegacy imports the 1.1 accounts of an FSyncMS or server-storage
// database into weave. Per account, in username order: the account gets
// (or keeps, on a re-run after an interruption) a token-database record on
// o.Node keyed weave.LegacyTokenEmail(username), its records are copied
// into the node's shard with their timestamps (1.1's two-decimal seconds,
// in ms) and expiries and verified, and only then is the 1.1 account
// created with the source's password hash, which the front end verifies at
// the first login and replaces. An account that exists in weave was
// imported before: it is skipped if the source has not changed since, and
// otherwise handled as in Run (named in a *ChangedError, or imported again
// with Reimport). Disabled accounts of server-storage are not imported
// (Report.Disabled); accounts weave cannot take (a username the client
// would never send, a hash in no known format) are named in the error
// once the others are imported. An imported account whose password was
// changed at the source, and that has not signed in to weave since, takes
// the new one (Report.Passwords). It stops at the first account that fails
// otherwise.
func RunLegacy(ctx context.Context, o LegacyOptions) (Report, error) {
	var rep Report
	if o.Storage == nil || o.Dest == nil || o.Accounts == nil || o.Shard == nil || o.Node.ID == 0 {
		return rep, errors.New("importer: Storage, Dest, Accounts, Node and Shard are required")
	}
	if o.Schema != "" && o.Schema != FSyncMS && o.Schema != ServerStorage {
		return rep, fmt.Errorf("importer: %q is not a 1.1 source schema (%s or %s)", o.Schema, FSyncMS, ServerStorage)
	}
	src, err := openLegacySource(ctx, o.Storage, o.Users, o.Schema)
	if err != nil {
		return rep, err
	}
	rep.Source = src.Describe()
	accounts, err := src.accounts(ctx)
	if err != nil {
		return rep, err
	}
	if o.Limit > 0 && len(accounts) > o.Limit {
		accounts = accounts[:o.Limit]
	}
	seen := map[string]string{}
	var refused []string
	for i, a := range accounts {
		p := Progress{Done: i + 1, Total: len(accounts), Email: a.username}
		var why string
		switch {
		case !weave.ValidLegacyUsername(a.username):
			why = "not a username a 1.1 client sends (1 to 100 of a-z 0-9 . _ -)"
		case seen[a.username] != "":
			why = fmt.Sprintf("the same name as %q once lower-cased, as clients send it", seen[a.username])
		case a.hashErr != nil:
			why = a.hashErr.Error()
		}
		seen[a.username] = a.srcName
		rep.Accounts++
		switch {
		case why != "":
			refused = append(refused, fmt.Sprintf("%q (%s)", a.srcName, why))
			p.Err = errors.New(why)
		case a.disabled:
			rep.Disabled++
			p.Skipped, p.Changed = true, "disabled at the source: not imported"
		default:
			err = importLegacyAccount(ctx, o, src, a, &p, &rep)
			if err != nil {
				err = fmt.Errorf("importer: account %s: %w", a.username, err)
				p.Err = err
			}
		}
		if o.Progress != nil {
			o.Progress(p)
		}
		if err != nil {
			return rep, err
		}
	}
	if len(refused) > 0 {
		return rep, fmt.Errorf("importer: %d account(s) not imported: %s", len(refused), strings.Join(refused, "; "))
	}
	if len(rep.Changed) > 0 {
		return rep, &ChangedError{Accounts: rep.Changed}
	}
	return rep, nil
}

func importLegacyAccount(ctx context.Context, o LegacyOptions, src *legacySource, a legacyAccount, p *Progress, rep *Report) error {
	email := weave.LegacyTokenEmail(a.username)
	cur, err := o.Accounts.LegacyUser(ctx, a.username)
	imported := err == nil
	if err != nil && !errors.Is(err, weave.ErrNotFound) {
		return err
	}
	if imported && cur.PasswordHash != a.hash && !strings.HasPrefix(cur.PasswordHash, "$argon2id$") {
		// The password was changed at the old server after the import,
		// and the account has not signed in to weave since (its hash
		// would be weave's own then): the old server's is the current one.
		// Conditional on the hash read, so a concurrent first login wins.
		switch err := o.Accounts.UpdateLegacyPassword(ctx, a.username, cur.PasswordHash, a.hash); {
		case err == nil:
			rep.Passwords++
			p.Password = true
		case !errors.Is(err, weave.ErrConflict):
			return fmt.Errorf("update the password: %w", err)
		}
	}
	// The account's token record: kept from an earlier, interrupted or
	// finished, run, else allocated on the node.
	rec, err := o.Dest.GetUser(ctx, email)
	switch {
	case err == nil && rec.ReplacedAt == 0 && !rec.Retired() && rec.NodeID == o.Node.ID:
	case err == nil && imported:
		return fmt.Errorf("its storage (uid %d) is on node %s now, not %s: import into that node", rec.UID, rec.NodeURL(), o.Node.URL)
	case err == nil, errors.Is(err, weave.ErrNotFound):
		if imported {
			return errors.New("it exists in weave without a storage record")
		}
		if rec, err = o.Dest.AllocateUser(ctx, email, weave.NewTokenUser{NodeID: o.Node.ID}); err != nil {
			return err
		}
		if rec.NodeID != o.Node.ID {
			return fmt.Errorf("node %s takes no new users (its state, or capacity): its storage went to node %s; set the node up and run again", o.Node.URL, rec.NodeURL())
		}
		rep.Records++
	default:
		return err
	}
	p.UIDs = []int64{rec.UID}
	d, n, err := src.readUser(ctx, a, rec.UID)
	if err != nil {
		return err
	}
	if imported {
		why, err := legacyChanged(ctx, o.Shard, d)
		switch {
		case err != nil:
			return err
		case why == "":
			p.Skipped = true
			rep.Skipped++
			return nil
		case !o.Reimport:
			p.Changed = why
			rep.Changed = append(rep.Changed, fmt.Sprintf("%s (%s)", a.username, why))
			return nil
		}
		p.Changed = why
	}
	if err := o.Shard.ImportUser(ctx, d); err != nil {
		return fmt.Errorf("uid %d: write to shard: %w", rec.UID, err)
	}
	if err := verify(ctx, o.Shard, d); err != nil {
		return fmt.Errorf("uid %d: %w", rec.UID, err)
	}
	for _, c := range d.Collections {
		p.BSOs += len(c.BSOs)
	}
	rep.Collections += len(d.Collections)
	rep.BSOs += p.BSOs
	rep.Bytes += n
	if imported {
		p.Reimported = true
		rep.Reimported++
		return nil
	}
	// Last: from now on the account exists in weave and can log in.
	err = o.Accounts.CreateLegacyUser(ctx, weave.LegacyUser{Username: a.username, Email: a.email, PasswordHash: a.hash,
		CreatedAt: time.Now().UnixMilli()})
	if err != nil {
		return fmt.Errorf("create the account: %w", err)
	}
	rep.Imported++
	return nil
}

// legacyChanged is sourceChanged for a 1.1 source's user d: a collection
// newer at the source than in weave holds a write weave lacks.
func legacyChanged(ctx context.Context, shard weave.UserMover, d weave.UserData) (string, error) {
	got, err := shard.DigestUser(ctx, d.UID)
	if err != nil {
		return "", fmt.Errorf("uid %d: read weave's copy: %w", d.UID, err)
	}
	return newerAtSource(d, got), nil
}
