package memcache

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Servers: []string{"127.0.0.1:11211"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != DefaultPrefix || c.Timeout != DefaultTimeout || c.TTL != DefaultTTL ||
		c.UsageTTL != DefaultUsageTTL || c.PendingTTL != DefaultPendingTTL || c.Observer == nil || c.Logger == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
	c, _ = Config{Servers: []string{"h:1"}, TTL: time.Second, UsageTTL: time.Minute}.withDefaults()
	if c.UsageTTL != time.Second {
		t.Fatalf("UsageTTL %v exceeds TTL", c.UsageTTL)
	}
	for _, bad := range []Config{
		{},
		{Servers: []string{"no-port"}},
		{Servers: []string{"h:1"}, MirrorServers: []string{"a b:1"}},
		{Servers: []string{"h:1"}, Prefix: "has space"},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestParsePool(t *testing.T) {
	for s, want := range map[string]Pool{"primary": Primary, "Mirror": Mirror} {
		if p, err := ParsePool(s); err != nil || p != want || (p.String() != "primary" && p.String() != "mirror") {
			t.Errorf("ParsePool(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePool("other"); err == nil {
		t.Error("ParsePool accepted other")
	}
}

// TestRecordTimestampsUpdate covers the exact-update rule of a write.
func TestRecordTimestampsUpdate(t *testing.T) {
	base := &tsPart{Colls: map[string]int64{"a": 100}, Storage: 100, At: 5}
	n := base.applyWrite("b", 120)
	if n == nil || n.Colls["a"] != 100 || n.Colls["b"] != 120 || n.Storage != 120 || n.At != 5 {
		t.Fatalf("applyWrite: %+v", n)
	}
	if base.Colls["b"] != 0 {
		t.Fatal("applyWrite changed its base")
	}
	if base.applyWrite("a", 100) != nil {
		t.Fatal("a timestamp that is not newer was applied")
	}
	r := &record{TS: base, BSOs: map[string]*bsoPart{"meta/global": {}, "crypto/keys": {}}}
	taken := r.take("meta")
	if r.TS != nil || r.BSOs["meta/global"] != nil || r.BSOs["crypto/keys"] == nil || taken.BSOs["meta/global"] == nil {
		t.Fatalf("take(meta): left %+v, took %+v", r, taken)
	}
	r.restore(taken)
	if r.TS != base || r.BSOs["meta/global"] == nil {
		t.Fatalf("restore: %+v", r)
	}
}
