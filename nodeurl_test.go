package weave

import "testing"

func TestNodeURLKey(t *testing.T) {
	for in, want := range map[string]string{
		// The fleet's cases.
		"HTTP://Example.COM:80/":     "http://example.com",
		"https://a.example:443/sync": "https://a.example/sync",
		"https://a.example:8443/":    "https://a.example:8443",
		// The storage API's node check.
		"http://127.0.0.1:8000/":       "http://127.0.0.1:8000",
		"HTTP://127.0.0.1:8000":        "http://127.0.0.1:8000",
		"http://127.0.0.1:8000/prefix": "http://127.0.0.1:8000/prefix",
		"https://127.0.0.1:8000":       "https://127.0.0.1:8000",
		"http://[::1]:80/":             "http://[::1]",
		"http://[::1]:8000":            "http://[::1]:8000",
		"https://u:p@Sync.Example//":   "https://sync.example",
		"https://a.example/Path/":      "https://a.example/Path",
		"https://a.example:443?q#f":    "https://a.example",
		// Stored form first.
		" https://a.example/ ": "https://a.example",
		// Not a URL with a host: only cleaned.
		"not a url/": "not a url",
		"":           "",
	} {
		if got := NodeURLKey(in); got != want {
			t.Errorf("NodeURLKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanNodeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://sync1.example.com/":   "https://sync1.example.com",
		" HTTPS://Sync.Example:443// ": "HTTPS://Sync.Example:443",
		"https://a.example/prefix":     "https://a.example/prefix",
	} {
		if got := CleanNodeURL(in); got != want {
			t.Errorf("CleanNodeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseNodeURL(t *testing.T) {
	n, err := ParseNodeURL("HTTPS://Sync.Example:8443/a%2Fb/")
	if err != nil {
		t.Fatal(err)
	}
	if want := (NodeURL{Scheme: "https", Host: "sync.example", Port: "8443", Prefix: "/a%2Fb"}); n != want {
		t.Fatalf("got %+v, want %+v", n, want)
	}
	if n.HostPort() != "sync.example:8443" || n.String() != "https://sync.example:8443/a%2Fb" {
		t.Fatalf("HostPort %q, String %q", n.HostPort(), n.String())
	}
	for _, bad := range []string{"", "sync.example", "ftp://sync.example", "https://", "https://a?x=1", "https://a#f", "://a"} {
		if _, err := ParseNodeURL(bad); err == nil {
			t.Errorf("ParseNodeURL(%q) accepted", bad)
		}
	}
}
