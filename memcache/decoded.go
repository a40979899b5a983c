package memcache

import (
	"bytes"
	"maps"
	"slices"
	"sync"
)

// decoded remembers, per key, the last record value this process read or
// stored in a pool with its decoding, so that reading back a value nobody
// changed since (most reads and writes of a user find the value the
// previous one left) costs a comparison of bytes instead of a JSON
// decoding. It is exact: a value is reused only when its bytes are
// identical. Every caller gets its own deep copy, to change as it likes.
//
// Two generations bound the memory, as in hints: at most 2 ×
// decodedKeys values of at most maxDecodedBytes each.
type decoded struct {
	mu       sync.Mutex
	cur, old map[string]decodedValue
}

type decodedValue struct {
	raw []byte
	rec *record // never changed once stored
}

const (
	decodedKeys     = 512
	maxDecodedBytes = 16 << 10
)

// decode is decodeRecord through the memory of key's last value.
func (d *decoded) decode(key string, flags uint32, raw []byte) (*record, bool) {
	if flags != recordFormat {
		return nil, false
	}
	d.mu.Lock()
	v, ok := d.cur[key]
	if !ok {
		v, ok = d.old[key]
	}
	d.mu.Unlock()
	if ok && bytes.Equal(v.raw, raw) {
		return v.rec.clone(), true
	}
	r, ok := decodeRecord(flags, raw)
	if !ok {
		return nil, false
	}
	d.remember(key, raw, r)
	return r, true
}

// remember records that key holds raw, the encoding of r.
func (d *decoded) remember(key string, raw []byte, r *record) {
	if len(raw) > maxDecodedBytes {
		return
	}
	v := decodedValue{raw: raw, rec: r.clone()}
	d.mu.Lock()
	if d.cur == nil || len(d.cur) >= decodedKeys {
		d.old, d.cur = d.cur, make(map[string]decodedValue)
	}
	d.cur[key] = v
	d.mu.Unlock()
}

// clone returns a deep copy of r: nothing a caller can change is shared.
func (r *record) clone() *record {
	c := *r
	c.Pending = slices.Clone(r.Pending)
	if r.TS != nil {
		t := *r.TS
		t.Colls = maps.Clone(r.TS.Colls)
		c.TS = &t
	}
	c.Counts, c.CUsage = r.Counts.clone(), r.CUsage.clone()
	if r.Usage != nil {
		u := *r.Usage
		c.Usage = &u
	}
	if r.BSOs != nil {
		c.BSOs = make(map[string]*bsoPart, len(r.BSOs))
		for k, b := range r.BSOs {
			bc := *b
			if b.SortIndex != nil {
				si := *b.SortIndex
				bc.SortIndex = &si
			}
			c.BSOs[k] = &bc
		}
	}
	return &c
}

func (p *mapPart) clone() *mapPart {
	if p == nil {
		return nil
	}
	return &mapPart{M: maps.Clone(p.M), At: p.At}
}
