package memcache_test

import (
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/memcache"
)

// Data written behind the cache (as a user move does, straight into the
// database) is served stale until Forget; after it, reads see the database.
func TestForget(t *testing.T) {
	mc := startMemcached(t)
	p := newProcess(t, tempDB(t), memcache.Config{Servers: []string{mc.Addr()}, Prefix: randomPrefix()})
	ctx := t.Context()
	const uid = 31
	mustTS(p.PostBSOs(ctx, uid, "history", []weave.Update{upd("h", "1")}, noPre))(t)
	if _, _, err := p.CollectionTimestamps(ctx, uid); err != nil { // fills
		t.Fatal(err)
	}
	if _, err := p.GetBSO(ctx, uid, "meta", "global"); err == nil {
		t.Fatal("meta/global exists before it was written")
	}
	// Behind the cache's back.
	behind := mustTS(p.inner.PostBSOs(ctx, uid, "bookmarks", []weave.Update{upd("b", "2")}, noPre))(t)
	if _, err := p.inner.PutBSO(ctx, uid, "meta", weave.Update{ID: "global", Payload: weave.Some("g")}, noPre); err != nil {
		t.Fatal(err)
	}
	if colls, _, _ := p.CollectionTimestamps(ctx, uid); colls["bookmarks"] != 0 {
		t.Fatal("test premise: the cache was expected to still hold the old timestamps")
	}
	p.Forget(uid)
	colls, _, err := p.CollectionTimestamps(ctx, uid)
	if err != nil || colls["bookmarks"] != behind {
		t.Fatalf("after Forget: %v %v, want bookmarks at %v", colls, err, behind)
	}
	if b, err := p.GetBSO(ctx, uid, "meta", "global"); err != nil || b.Payload != "g" {
		t.Fatalf("after Forget meta/global: %+v %v", b, err)
	}
}
