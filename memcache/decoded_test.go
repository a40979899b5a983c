package memcache

import (
	"reflect"
	"strings"
	"testing"
)

func sampleRecord() *record {
	si := int64(7)
	return &record{
		Seq:     42,
		Pending: []pending{{ID: 1, Until: 2, Coll: "tabs"}},
		TS:      &tsPart{Colls: map[string]int64{"tabs": 10, "history": 11}, Storage: 11, At: 5},
		Counts:  &mapPart{M: map[string]int64{"tabs": 1}, At: 5},
		CUsage:  &mapPart{M: map[string]int64{"tabs": 100}, At: 5},
		Usage:   &usagePart{N: 100, At: 5},
		BSOs: map[string]*bsoPart{
			"meta/global": {Found: true, Modified: 9, SortIndex: &si, Payload: `{"syncID":"x"}`, At: 5},
			"crypto/keys": {At: 5},
		},
	}
}

// A reused decoding is what decoding the bytes gives, and callers that
// change their copy change nobody else's.
func TestDecodedReusesOnlyIdenticalBytes(t *testing.T) {
	var d decoded
	r := sampleRecord()
	raw := r.encode()
	a, ok := d.decode("k", recordFormat, raw)
	if !ok || !reflect.DeepEqual(a, r) {
		t.Fatalf("first decode: %v %+v", ok, a)
	}
	// Change everything a caller can change in its copy.
	a.Pending[0].ID = 99
	a.TS.Colls["tabs"] = 99
	a.Counts.M["tabs"] = 99
	*a.BSOs["meta/global"].SortIndex = 99
	a.BSOs["meta/global"].Payload = "changed"
	delete(a.BSOs, "crypto/keys")
	a.Usage.N = 99
	b, ok := d.decode("k", recordFormat, append([]byte(nil), raw...))
	if !ok || !reflect.DeepEqual(b, r) {
		t.Fatalf("reused decoding changed by another caller: %+v", b)
	}
	if _, ok := d.decode("k", 0, raw); ok {
		t.Fatal("a value of another format was trusted")
	}
	// Other bytes under the same key are decoded afresh.
	r2 := sampleRecord()
	r2.TS.Colls["tabs"] = 12
	c, ok := d.decode("k", recordFormat, r2.encode())
	if !ok || c.TS.Colls["tabs"] != 12 {
		t.Fatalf("new value under the same key: %+v", c.TS)
	}
	if _, ok := d.decode("k", recordFormat, []byte(strings.Replace(string(raw), `"s":42`, `"s":"x"`, 1))); ok {
		t.Fatal("an undecodable value was accepted")
	}
}

// What a writer remembers after storing a value is what decoding it gives.
func TestDecodedRememberedWrite(t *testing.T) {
	var d decoded
	r := sampleRecord()
	raw := r.encode()
	d.remember("k", raw, r)
	r.TS.Colls["tabs"] = 99 // the writer goes on with its own record
	got, ok := d.decode("k", recordFormat, raw)
	want, _ := decodeRecord(recordFormat, raw)
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("remembered %+v, the bytes say %+v", got, want)
	}
}

func TestDecodedBounded(t *testing.T) {
	var d decoded
	raw := sampleRecord().encode()
	for i := range 3 * decodedKeys {
		d.remember(strings.Repeat("k", i+1), raw, sampleRecord())
	}
	if n := len(d.cur) + len(d.old); n > 2*decodedKeys {
		t.Fatalf("%d values remembered", n)
	}
	big := &record{BSOs: map[string]*bsoPart{"meta/global": {Found: true, Payload: strings.Repeat("x", maxDecodedBytes)}}}
	d.remember("big", big.encode(), big)
	if _, ok := d.cur["big"]; ok {
		t.Fatal("a value over maxDecodedBytes was remembered")
	}
}
