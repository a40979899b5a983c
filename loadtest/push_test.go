package loadtest

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestPushConfigValidate(t *testing.T) {
	ok := PushConfig{Target: "http://127.0.0.1:8000", Conns: 10, Duration: time.Second, Sources: []string{"127.0.0.2"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := PushConfig{Target: "http://192.0.2.1:8000", Conns: 0, Rate: -1, Sources: []string{"nope", "192.0.2.7"}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"not a loopback address", "push-conns", "push-rate", "duration", `"nope" is not an IP`, `"192.0.2.7" is not a loopback`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	bad.AllowRemote = true
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "loopback") {
		t.Errorf("allow-remote still refuses remote addresses: %v", err)
	}
}

func TestRSS(t *testing.T) {
	if rss(os.Getpid()) < 1<<20 {
		t.Errorf("own RSS %d bytes", rss(os.Getpid()))
	}
	if rss(0) != 0 || rss(-1) != 0 {
		t.Error("RSS of no process")
	}
}
