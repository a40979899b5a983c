// Package importer moves the users of a Mozilla Sync deployment into a
// weave node, keeping every user's uid, token records, collections,
// records, timestamps, expiries and open batches, so that clients carry on
// syncing without uploading their data again — even one in the middle of a
// batch upload.
//
// Sources: the storage database of syncstorage-rs (MySQL or PostgreSQL) or
// of the older Python server-syncstorage (MySQL or PostgreSQL, sharded or
// not), recognised from its tables (see OpenSource), and the tokenserver
// database of either (MySQL or PostgreSQL).
//
// RunLegacy imports the Sync 1.1 accounts (Pale Moon, Basilisk) of FSyncMS
// and of Mozilla's 2011 server-storage with server-core's user tables: see
// its doc.
//
// Per account, the importer copies each live uid's data into the node's
// shard, checks the copy against the source (counts and a checksum per
// collection and per open batch), and only then inserts the account's
// token records. A user whose token records already exist in weave was
// imported before and is skipped, so an interrupted import is finished by
// running it again; until its token records exist, an account lives only
// on the source. The source is only read; stop its storage service while
// importing. A run finds the accounts imported before whose data changed at
// the source since (a collection or the storage timestamp newer there than
// in weave), names them in its error, and with Options.Reimport replaces
// their data in weave by the source's.
package importer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/sqlstore"
)

// Options configure Run.
type Options struct {
	// Storage is the source storage database (MySQL/MariaDB or
	// PostgreSQL); Schema, if set, is the schema it must have (default:
	// recognised from its tables).
	Storage *sqlstore.DB
	Schema  Schema
	// Tokens is the source tokenserver database (tables services, nodes,
	// users), MySQL/MariaDB or PostgreSQL; it may be the same as Storage.
	Tokens *sqlstore.DB
	// Service is the tokenserver service whose users are imported
	// (default "sync-1.5").
	Service string
	// SourceNode, if set, restricts the import to the users the
	// tokenserver assigned to that node URL (one storage database of
	// several).
	SourceNode string
	// Dest is weave's token database and Node the weave node (in Dest)
	// that receives the users; Shard is that node's store. Batches keep
	// the ids clients know through sqlstore.ForeignBatchID, so Shard is a
	// sqlstore.Store (or a decorator of one).
	Dest  *sqlstore.TokenDB
	Node  weave.Node
	Shard weave.UserMover
	// Users, if positive, is how many accounts to import at most (in
	// email order); accounts skipped as already imported count too.
	Users int
	// Reimport: an account imported before whose data changed at the
	// source since is imported again, replacing its data in weave (and
	// whatever its clients wrote there since). Without it, Run imports
	// the other accounts and then fails naming those accounts.
	Reimport bool
	// Progress, if set, is called after each account.
	Progress func(Progress)
	// Now is the clock that decides which batches are still open (default
	// time.Now).
	Now func() time.Time
}

// Progress describes the account just handled.
type Progress struct {
	Done, Total int // accounts handled so far, accounts to handle
	Email       string
	UIDs        []int64 // the account's live uids
	Skipped     bool    // already imported, and unchanged at the source
	// Changed says how the source changed since the account was
	// imported; Reimported tells whether its data was imported again.
	Changed    string
	Reimported bool
	Password   bool  // the password changed at the source was updated (1.1)
	BSOs       int   // records copied for this account
	Batches    int   // open batches copied for this account
	Err        error // the account failed (Run stops)
}

// Report summarises a run.
type Report struct {
	Source     string // the recognised source (Source.Describe)
	Accounts   int    // accounts handled
	Imported   int    // accounts imported by this run
	Skipped    int    // accounts already imported and unchanged
	Reimported int    // accounts changed at the source and imported again
	Disabled   int    // accounts disabled at the source, not imported (1.1)
	Passwords  int    // passwords changed at the source, updated in weave (1.1)
	// Changed are the accounts changed at the source since they were
	// imported and left as they are in weave (without Options.Reimport).
	Changed     []string
	Records     int   // token records inserted
	Collections int   // collections copied
	BSOs        int   // records (BSOs) copied
	Batches     int   // open batches copied
	Bytes       int64 // payload bytes copied (records and staged records)
}

// Run imports the accounts. It stops at the first failing account, which
// is left without a token record in weave (running Run again retries it).
// Accounts changed at the source since their import are reported in
// Report.Changed and make Run fail once the others are imported.
func Run(ctx context.Context, o Options) (Report, error) {
	var rep Report
	if o.Storage == nil || o.Tokens == nil || o.Dest == nil || o.Shard == nil || o.Node.ID == 0 {
		return rep, errors.New("importer: Storage, Tokens, Dest, Node and Shard are required")
	}
	if o.Service == "" {
		o.Service = "sync-1.5"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	src, err := OpenSource(ctx, o.Storage, o.Schema)
	if err != nil {
		return rep, err
	}
	rep.Source = src.Describe()
	accounts, err := readAccounts(ctx, o.Tokens, o.Service, o.SourceNode)
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
		err := importAccount(ctx, o, src, acc, &p, &rep)
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
	if len(rep.Changed) > 0 {
		return rep, &ChangedError{Accounts: rep.Changed}
	}
	return rep, nil
}

// ChangedError is Run's error when accounts imported before have changed
// at the source since.
type ChangedError struct{ Accounts []string }

func (e *ChangedError) Error() string {
	return fmt.Sprintf("importer: %d account(s) changed at the source after they were imported and were left as imported: %s; import them again with Options.Reimport (weave import --reimport-changed), which replaces their data in weave with the source's, losing whatever their clients wrote to weave since", len(e.Accounts), strings.Join(e.Accounts, ", "))
}

func importAccount(ctx context.Context, o Options, src *Source, acc account, p *Progress, rep *Report) error {
	// Already imported? Token records are written last, after the data
	// was verified, so existing records mean the account is done.
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
		for _, uid := range p.UIDs {
			why, err := sourceChanged(ctx, o, src, uid)
			if err != nil {
				return err
			}
			if why != "" {
				p.Changed = fmt.Sprintf("uid %d: %s", uid, why)
				break
			}
		}
		switch {
		case p.Changed == "":
			p.Skipped = true
			rep.Skipped++
			return nil
		case !o.Reimport:
			rep.Changed = append(rep.Changed, fmt.Sprintf("%s (%s)", acc.email, p.Changed))
			return nil
		}
	}
	var colls int
	var bytes int64
	for _, uid := range p.UIDs {
		d, n, err := src.ReadUser(ctx, uid, o.Now().UnixMilli())
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
		p.Batches += len(d.Batches)
		colls += len(d.Collections)
		bytes += n
	}
	n, err := o.Dest.ImportUserRecords(ctx, o.Node.ID, acc.recs)
	if err != nil {
		return err
	}
	rep.Records += n
	rep.Collections += colls
	rep.BSOs += p.BSOs
	rep.Batches += p.Batches
	rep.Bytes += bytes
	if done {
		p.Reimported = true
		rep.Reimported++
	} else {
		rep.Imported++
	}
	return nil
}

// sourceChanged compares uid's timestamps at the source with weave's copy
// and says how the source is newer, or "" when it is not. An import copies
// the source's timestamps, and a write at the source moves its collection's
// timestamp (syncstorage-rs's deletion of a collection: its storage
// timestamp) past anything imported, so a source newer than weave holds a
// write weave lacks. A collection absent from weave (never imported, or
// deleted there since) is compared with weave's storage timestamp. Writes
// in weave after the import leave weave newer: not a change at the source.
func sourceChanged(ctx context.Context, o Options, src *Source, uid int64) (string, error) {
	d, _, err := src.ReadUser(ctx, uid, o.Now().UnixMilli())
	if err != nil {
		return "", err
	}
	got, err := o.Shard.DigestUser(ctx, uid)
	if err != nil {
		return "", fmt.Errorf("uid %d: read weave's copy: %w", uid, err)
	}
	return newerAtSource(d, got), nil
}

// newerAtSource says how the source's copy d of a user is newer than
// weave's (got, its digest), or "" when it is not.
func newerAtSource(d weave.UserData, got map[string]weave.CollectionDigest) string {
	stored := got[""].Modified
	for _, c := range d.Collections {
		w, ok := got[c.Name]
		switch {
		case !ok && c.Modified > stored:
			return fmt.Sprintf("collection %q (modified %s at the source) is not in weave, whose storage timestamp is %s", c.Name, c.Modified, stored)
		case ok && c.Modified > w.Modified:
			return fmt.Sprintf("collection %q modified %s at the source, %s in weave", c.Name, c.Modified, w.Modified)
		}
	}
	if d.Modified > stored {
		return fmt.Sprintf("storage timestamp %s at the source, %s in weave", d.Modified, stored)
	}
	return ""
}

// verify compares the shard's copy of d.UID with d: storage timestamp,
// and count and checksum of every collection and open batch.
func verify(ctx context.Context, shard weave.UserMover, d weave.UserData) error {
	got, err := shard.DigestUser(ctx, d.UID)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	want := weave.DigestUserData(d)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			what := fmt.Sprintf("collection %q", k)
			if id, ok := strings.CutPrefix(k, "batch:"); ok {
				what = "open batch " + id
			} else if k == "" {
				what = "the storage timestamp"
			}
			return fmt.Errorf("verify: %s differs after the copy: %+v, want %+v", what, got[k], want[k])
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("verify: %d collections and batches after the copy, want %d", len(got), len(want))
	}
	return nil
}
