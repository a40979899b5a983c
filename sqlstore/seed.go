package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// SeedOptions describes the synthetic records Seed writes: Users users
// (uids FirstUID, FirstUID+1, …), each with RecordsPerUser records spread
// evenly over Collections, shaped like Firefox's: 12-character ids,
// encrypted-looking payloads of about PayloadBytes, modified times spread
// over the 30 days before Now, a sortindex, no expiry.
type SeedOptions struct {
	Users          int
	FirstUID       int64 // 0: 1
	RecordsPerUser int
	Collections    []string  // nil: history
	PayloadBytes   int       // 0: 450
	Now            time.Time // zero: time.Now()
	// Append allows seeding a database that already holds records (the
	// uids must be new to it); without it Seed refuses, so that it never
	// mixes synthetic records into real ones by mistake.
	Append bool
	// Progress, when set, is called after each commit with the records
	// written so far.
	Progress func(records int64)
}

// ErrNotEmpty is returned by Seed when the database already holds records
// and SeedOptions.Append is not set.
var ErrNotEmpty = errors.New("sqlstore: the storage database is not empty (seed only fresh databases, or append new uids)")

const (
	seedRowsPerStatement = 500    // 4,000 parameters: under every dialect's limit
	seedRowsPerTx        = 25_000 // big transactions: one commit (and fsync) per 25,000 rows
	seedSpan             = 30 * 24 * time.Hour
)

// Seed writes the records o describes straight into the tables with
// multi-row inserts in large transactions, for benchmarks at scale (issue
// 14: latency from 10 k to 10 M records per shard). It returns the number
// of records written.
func (s *Store) Seed(ctx context.Context, o SeedOptions) (int64, error) {
	if o.Users <= 0 || o.RecordsPerUser < 0 {
		return 0, fmt.Errorf("sqlstore: seed: want users > 0 and records per user >= 0")
	}
	if o.FirstUID == 0 {
		o.FirstUID = 1
	}
	if len(o.Collections) == 0 {
		o.Collections = []string{"history"}
	}
	if o.PayloadBytes <= 0 {
		o.PayloadBytes = 450
	}
	if o.Now.IsZero() {
		o.Now = s.now()
	}
	if !o.Append {
		var one int
		err := s.db.Write.QueryRowContext(ctx, "SELECT 1 FROM user_storage UNION ALL SELECT 1 FROM bsos LIMIT 1").Scan(&one)
		if err == nil {
			return 0, ErrNotEmpty
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, s.db.Classify(err)
		}
	}
	cids := make([]int64, len(o.Collections))
	for i, name := range o.Collections {
		cid, _, err := s.collectionID(ctx, name, true)
		if err != nil {
			return 0, err
		}
		cids[i] = cid
	}
	g := newSeedGen(o, cids)

	// One goroutine builds statements while the database runs the last.
	type stmt struct {
		table string
		cols  int
		args  []any
	}
	work := make(chan []stmt, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(work)
		for {
			var tx []stmt
			n := 0
			for n < seedRowsPerTx {
				args, meta := g.next(seedRowsPerStatement)
				if len(args) == 0 && len(meta.storage) == 0 {
					break
				}
				if len(args) > 0 {
					tx = append(tx, stmt{"bsos", 8, args})
					n += len(args) / 8
				}
				if len(meta.storage) > 0 {
					tx = append(tx, stmt{"user_storage", 2, meta.storage})
				}
				if len(meta.collections) > 0 {
					tx = append(tx, stmt{"user_collections", 3, meta.collections})
				}
			}
			if len(tx) == 0 {
				return
			}
			select {
			case work <- tx:
			case <-ctx.Done():
				return
			}
		}
	}()

	texts := map[[2]int]string{}
	text := func(table string, cols, rows int) string {
		k := [2]int{cols, rows}
		if t, ok := texts[k]; ok {
			return t
		}
		var b strings.Builder
		b.WriteString("INSERT INTO ")
		b.WriteString(table)
		switch table {
		case "bsos":
			b.WriteString(" (uid, collection_id, id, sortindex, payload, payload_size, modified, expiry) VALUES ")
		case "user_storage":
			b.WriteString(" (uid, modified) VALUES ")
		default:
			b.WriteString(" (uid, collection_id, modified) VALUES ")
		}
		repeatTuple(&b, cols, rows)
		t := s.db.Q(b.String())
		texts[k] = t
		return t
	}
	var written int64
	for tx := range work {
		err := func() error {
			t, err := s.db.Write.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer t.Rollback()
			for _, st := range tx {
				if _, err := t.ExecContext(ctx, text(st.table, st.cols, len(st.args)/st.cols), st.args...); err != nil {
					return fmt.Errorf("seed %s: %w", st.table, err)
				}
			}
			return t.Commit()
		}()
		if err != nil {
			return written, s.db.Classify(err)
		}
		for _, st := range tx {
			if st.table == "bsos" {
				written += int64(len(st.args) / 8)
			}
		}
		if o.Progress != nil {
			o.Progress(written)
		}
	}
	return written, ctx.Err()
}

// seedGen produces the rows of SeedOptions in primary-key order, so that
// inserts append to the indexes' right edges per user.
type seedGen struct {
	o     SeedOptions
	cids  []int64
	rng   *rand.Rand
	pool  string // random base64 the payloads are cut from
	now   int64
	user  int // users done
	cidx  int // collection of the current user
	rec   int // next record of the current collection
	ids   []string
	newst []int64 // newest modified per collection of the current user
}

type seedMeta struct{ storage, collections []any }

func newSeedGen(o SeedOptions, cids []int64) *seedGen {
	g := &seedGen{o: o, cids: cids, rng: rand.New(rand.NewPCG(uint64(o.FirstUID), 14)), now: o.Now.UnixMilli()}
	raw := make([]byte, 48<<10)
	for i := range raw {
		raw[i] = byte(g.rng.Uint32())
	}
	g.pool = base64.StdEncoding.EncodeToString(raw)
	g.newst = make([]int64, len(cids))
	return g
}

// perColl is how many records user's collection c gets.
func (g *seedGen) perColl(c int) int {
	n := g.o.RecordsPerUser / len(g.cids)
	if c < g.o.RecordsPerUser%len(g.cids) {
		n++
	}
	return n
}

// next returns up to limit rows' arguments, and the user rows of every user
// finished on the way (a user's rows go in the same statement batch as its
// last records).
func (g *seedGen) next(limit int) ([]any, seedMeta) {
	var args []any
	var meta seedMeta
	for len(args)/8 < limit && g.user < g.o.Users {
		uid := g.o.FirstUID + int64(g.user)
		if g.rec == 0 {
			g.ids = g.ids[:0]
			for range g.perColl(g.cidx) {
				var b [9]byte
				for i := range b {
					b[i] = byte(g.rng.Uint32())
				}
				g.ids = append(g.ids, base64.RawURLEncoding.EncodeToString(b[:]))
			}
			slices.Sort(g.ids)
			g.ids = slices.Compact(g.ids)
		}
		for g.rec < len(g.ids) && len(args)/8 < limit {
			// Spread over the span, on the 10 ms grid of Sync timestamps;
			// records written in one upload share a time.
			age := g.rng.Int64N(int64(seedSpan / time.Millisecond))
			modified := (g.now - age) / 10 * 10
			g.newst[g.cidx] = max(g.newst[g.cidx], modified)
			size := g.o.PayloadBytes/2 + g.rng.IntN(g.o.PayloadBytes+1)
			body := max(size-90, 16)
			at := g.rng.IntN(len(g.pool) - body - 60)
			payload := `{"ciphertext":"` + g.pool[at:at+body] + `","IV":"` + g.pool[at+body:at+body+24] + `","hmac":"` + g.pool[at+1:at+1+44] + `"}`
			args = append(args, uid, g.cids[g.cidx], g.ids[g.rec], g.rng.IntN(2000), payload, len(payload), modified, neverExpires)
			g.rec++
		}
		if g.rec < len(g.ids) {
			break
		}
		g.rec = 0
		g.cidx++
		if g.cidx == len(g.cids) {
			newest := int64(0)
			for i, cid := range g.cids {
				if g.perColl(i) == 0 {
					continue
				}
				meta.collections = append(meta.collections, uid, cid, g.newst[i])
				newest = max(newest, g.newst[i])
				g.newst[i] = 0
			}
			if newest == 0 {
				newest = g.now
			}
			meta.storage = append(meta.storage, uid, newest)
			g.cidx = 0
			g.user++
			if len(meta.storage)/2 >= 100 {
				break
			}
		}
	}
	return args, meta
}
