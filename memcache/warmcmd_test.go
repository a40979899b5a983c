package memcache

import (
	"strings"
	"testing"
)

func TestWarmCommandPool(t *testing.T) {
	w := &WarmCommand{To: "mirror"}
	if _, err := w.Pool(); err == nil || !strings.Contains(err.Error(), "--memcache is required") {
		t.Fatalf("without --memcache: %v", err)
	}
	w.Config.Servers = []string{"127.0.0.1:11211"}
	if p, err := w.Pool(); err != nil || p != Mirror {
		t.Fatalf("mirror: %v, %v", p, err)
	}
	w.To = "third"
	if _, err := w.Pool(); err == nil {
		t.Fatal("an unknown pool passed")
	}
}
