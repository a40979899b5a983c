package memcache

import (
	"cmp"
	"encoding/json"
	"maps"
	"strings"
	"time"

	"github.com/weave-sync/weave"
)

// recordFormat is the memcached flags value of records this package writes.
// A record with other flags (another weave version) is never trusted and is
// replaced by writers.
const recordFormat = 0x5701

// record is everything one pool caches for one user, in one item, so that a
// single compare-and-swap covers the write marks and every cached figure.
// A nil part is not cached.
type record struct {
	// Seq increases with every write mark added; a writer that finds it
	// unchanged after its write knows no other write overlapped.
	Seq uint64 `json:"s"`
	// Pending are the marks of writes in progress.
	Pending []pending `json:"p,omitempty"`

	TS     *tsPart             `json:"t,omitempty"`
	Counts *mapPart            `json:"c,omitempty"`
	CUsage *mapPart            `json:"cu,omitempty"`
	Usage  *usagePart          `json:"u,omitempty"`
	BSOs   map[string]*bsoPart `json:"b,omitempty"` // by hotKey
}

// pending marks a write in progress. Until it is removed or Until passes,
// readers do not use the parts the write can change, and nobody fills them.
type pending struct {
	ID    uint64 `json:"i"`
	Until int64  `json:"u"` // unix ms
	// Coll is the collection written; "" for a write to all of them.
	Coll string `json:"c,omitempty"`
}

// Timestamps are stored as integer milliseconds (weave.Timestamp marshals
// to the wire's decimal seconds, which would not read back exactly).

// Every part records when its data was read from the database (At, unix
// ms), so that TTL bounds its age however often the item is rewritten.

type tsPart struct {
	Colls   map[string]int64 `json:"c"`
	Storage int64            `json:"s"`
	At      int64            `json:"a"`
}

type mapPart struct {
	M  map[string]int64 `json:"m"`
	At int64            `json:"a"`
}

type usagePart struct {
	N  int64 `json:"n"`
	At int64 `json:"a"`
}

type bsoPart struct {
	Found     bool   `json:"f"`
	Modified  int64  `json:"m,omitempty"`
	SortIndex *int64 `json:"i,omitempty"`
	Payload   string `json:"p,omitempty"`
	Expires   int64  `json:"e,omitempty"`
	// The Sync 1.1 fields; records cached before they existed have none.
	ParentID      string `json:"pi,omitempty"`
	PredecessorID string `json:"pr,omitempty"`
	At            int64  `json:"a"`
}

// hotBSOs are the records Firefox reads at the start of every sync.
var hotBSOs = map[string]bool{"meta/global": true, "crypto/keys": true}

func hotKey(coll, id string) string { return coll + "/" + id }

func isHot(coll, id string) bool { return hotBSOs[hotKey(coll, id)] }

func decodeRecord(flags uint32, b []byte) (*record, bool) {
	if flags != recordFormat {
		return nil, false
	}
	r := new(record)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, false
	}
	return r, true
}

func (r *record) encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Only maps of strings and numbers: cannot fail.
		panic(err)
	}
	return b
}

func msOf(t time.Time) int64 { return t.UnixMilli() }

// prune drops marks whose writers must be presumed dead.
func (r *record) prune(now int64) {
	out := r.Pending[:0]
	for _, p := range r.Pending {
		if p.Until > now {
			out = append(out, p)
		}
	}
	r.Pending = out
	if len(r.Pending) == 0 {
		r.Pending = nil
	}
}

// busy reports whether a live write mark exists at all; every write
// changes the timestamps, counts and usage.
func (r *record) busy(now int64) bool {
	for _, p := range r.Pending {
		if p.Until > now {
			return true
		}
	}
	return false
}

// busyColl reports whether a live write mark covers collection coll.
func (r *record) busyColl(now int64, coll string) bool {
	for _, p := range r.Pending {
		if p.Until > now && (p.Coll == "" || p.Coll == coll) {
			return true
		}
	}
	return false
}

func (r *record) hasMark(id uint64) bool {
	for _, p := range r.Pending {
		if p.ID == id {
			return true
		}
	}
	return false
}

// removeMark removes the mark id and reports whether it was there.
func (r *record) removeMark(id uint64) bool {
	for i, p := range r.Pending {
		if p.ID == id {
			r.Pending = append(r.Pending[:i:i], r.Pending[i+1:]...)
			if len(r.Pending) == 0 {
				r.Pending = nil
			}
			return true
		}
	}
	return false
}

// drop removes every part a write to coll ("" for all) can change.
func (r *record) drop(coll string) {
	r.TS, r.Counts, r.CUsage, r.Usage = nil, nil, nil, nil
	for k := range r.BSOs {
		if c, _, _ := strings.Cut(k, "/"); coll == "" || c == coll {
			delete(r.BSOs, k)
		}
	}
	if len(r.BSOs) == 0 {
		r.BSOs = nil
	}
}

// take removes the parts a write to coll can change and returns them.
func (r *record) take(coll string) *record {
	t := &record{TS: r.TS, Counts: r.Counts, CUsage: r.CUsage, Usage: r.Usage}
	for k, b := range r.BSOs {
		if c, _, _ := strings.Cut(k, "/"); coll == "" || c == coll {
			if t.BSOs == nil {
				t.BSOs = make(map[string]*bsoPart)
			}
			t.BSOs[k] = b
		}
	}
	r.drop(coll)
	return t
}

// restore puts back parts taken by take that nothing replaced since.
func (r *record) restore(t *record) {
	r.TS = cmp.Or(r.TS, t.TS)
	r.Counts = cmp.Or(r.Counts, t.Counts)
	r.CUsage = cmp.Or(r.CUsage, t.CUsage)
	r.Usage = cmp.Or(r.Usage, t.Usage)
	for k, b := range t.BSOs {
		if r.BSOs == nil {
			r.BSOs = make(map[string]*bsoPart)
		}
		if r.BSOs[k] == nil {
			r.BSOs[k] = b
		}
	}
}

// fresh reports whether data read from the database at at may still be
// served at now.
func fresh(at, now int64, ttl time.Duration) bool {
	return now-at < ttl.Milliseconds() && at <= now+ttl.Milliseconds()
}

// applyWrite returns the timestamps after a write at t to coll, given the
// exact timestamps before it, or nil if t cannot be such a write's
// timestamp (then the caller drops the part instead of guessing).
func (p *tsPart) applyWrite(coll string, t weave.Timestamp) *tsPart {
	if p == nil || int64(t) <= p.Storage {
		return nil
	}
	n := &tsPart{Colls: maps.Clone(p.Colls), Storage: int64(t), At: p.At}
	if n.Colls == nil {
		n.Colls = make(map[string]int64)
	}
	n.Colls[coll] = int64(t)
	return n
}

func newTSPart(colls map[string]weave.Timestamp, storage weave.Timestamp, at int64) *tsPart {
	p := &tsPart{Colls: make(map[string]int64, len(colls)), Storage: int64(storage), At: at}
	for c, ts := range colls {
		p.Colls[c] = int64(ts)
	}
	return p
}

func (p *tsPart) colls() map[string]weave.Timestamp {
	out := make(map[string]weave.Timestamp, len(p.Colls))
	for c, ts := range p.Colls {
		out[c] = weave.Timestamp(ts)
	}
	return out
}

func newBSOPart(b weave.BSO, at int64) *bsoPart {
	return &bsoPart{Found: true, Modified: int64(b.Modified), SortIndex: b.SortIndex,
		Payload: b.Payload, Expires: int64(b.Expires), ParentID: b.ParentID, PredecessorID: b.PredecessorID, At: at}
}

func (b *bsoPart) bso(id string) weave.BSO {
	return weave.BSO{ID: id, Modified: weave.Timestamp(b.Modified), SortIndex: b.SortIndex,
		Payload: b.Payload, Expires: weave.Timestamp(b.Expires), ParentID: b.ParentID, PredecessorID: b.PredecessorID}
}
