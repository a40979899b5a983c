package tokenserver_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/weave-sync/weave/tokenserver"
)

// outcomes records what the token server reports to its Observer.
type outcomes struct {
	mu      sync.Mutex
	issued  []bool
	refused []string
}

func (o *outcomes) TokenIssued(newUID bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.issued = append(o.issued, newUID)
}

func (o *outcomes) TokenRefused(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused = append(o.refused, reason)
}

func TestTokenServerObserver(t *testing.T) {
	o := &outcomes{}
	e := newEnv(t, func(c *tokenserver.Config) { c.Observer = o })
	const cs = "0123456789abcdef0123456789abcdef"
	okResponse(t, e.get(uidHex(1), 10, 10, cs))  // allocates
	okResponse(t, e.get(uidHex(1), 10, 10, cs))  // reuses
	e.do(request{auth: "Basic Zm9v"})            // unsupported scheme
	e.do(request{auth: e.bearer(uidHex(2), 10)}) // no X-KeyID
	e.get(uidHex(1), 5, 10, cs)                  // older generation
	e.do(request{path: "/1.0/sync/1.1"})         // unknown version
	if !slices.Equal(o.issued, []bool{true, false}) {
		t.Errorf("issued %v, want [true false]", o.issued)
	}
	want := []string{"unauthorized", "invalid-key-id", "invalid-generation", "bad-request"}
	if !slices.Equal(o.refused, want) {
		t.Errorf("refused %v, want %v", o.refused, want)
	}
}
