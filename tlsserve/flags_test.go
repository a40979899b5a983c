package tlsserve

import (
	"strings"
	"testing"
)

func TestPublicURL(t *testing.T) {
	plain, tls := &Config{}, &Config{CertFile: "c.pem", KeyFile: "k.pem"}
	for _, tc := range []struct {
		c             *Config
		given, listen string
		want          string // the URL, or the error's text
	}{
		{plain, "", "0.0.0.0:8000", "http://127.0.0.1:8000"},
		{plain, " https://sync.example.com/sync/ ", "", "https://sync.example.com/sync"},
		{plain, "sync.example.com", "", "want an http(s) URL"},
		{plain, "", "nonsense", "--listen"},
		{tls, "", "127.0.0.1:443", "https://127.0.0.1"},
		{tls, "http://sync.example.com", "", "weave serves HTTPS itself here"},
	} {
		got, err := tc.c.PublicURL(tc.given, tc.listen)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) || (err == nil && got != tc.want) {
			t.Errorf("PublicURL(%q, %q) = %q, want %q", tc.given, tc.listen, got, tc.want)
		}
	}
}
