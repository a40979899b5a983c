package legacy_test

import (
	"net/http"
	"testing"

	"github.com/weave-sync/weave/legacy"
)

// TestClientIPKeysIPv6On64: sign-up limits and captchas count an IPv6
// client by its /64, so rotating through its own addresses buys no fresh
// budget; IPv4 (also mapped into IPv6) counts by address.
func TestClientIPKeysIPv6On64(t *testing.T) {
	key := func(remote string) string { return legacy.ClientIP(&http.Request{RemoteAddr: remote}) }
	if a, b := key("[2001:db8:1:2::1]:4000"), key("[2001:db8:1:2:ffff::9]:5000"); a != b {
		t.Errorf("two addresses of one /64 count apart: %q, %q", a, b)
	}
	if a, b := key("[2001:db8:1:2::1]:4000"), key("[2001:db8:1:3::1]:4000"); a == b {
		t.Errorf("two /64s count together: %q", a)
	}
	if a, b := key("192.0.2.1:4000"), key("192.0.2.2:4000"); a == b {
		t.Errorf("two IPv4 addresses count together: %q", a)
	}
	if a, b := key("[::ffff:192.0.2.1]:4000"), key("192.0.2.1:80"); a != b {
		t.Errorf("IPv4-mapped address counts apart from its IPv4 form: %q, %q", a, b)
	}
}
