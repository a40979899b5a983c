package cli

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := Logger("json", "warn", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) || !strings.Contains(got, `"k":1`) {
		t.Errorf("json at warn wrote %q", got)
	}
	buf.Reset()
	log, err = Logger("text", "debug", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("dbg")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=dbg") {
		t.Errorf("text at debug wrote %q", got)
	}
	for _, c := range []struct{ format, level, want string }{
		{"text", "loud", `--log-level "loud": want debug, info, warn or error`},
		{"xml", "info", `--log-format "xml": want text or json`},
	} {
		if _, err := Logger(c.format, c.level, &buf); err == nil || err.Error() != c.want {
			t.Errorf("Logger(%q, %q) = %v, want %s", c.format, c.level, err, c.want)
		}
	}
}

func TestPrefixes(t *testing.T) {
	got, err := Prefixes(" 10.0.0.0/8, ,192.0.2.1,::1 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("::1/128")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Prefixes = %v, want %v", got, want)
	}
	if got, err := Prefixes(""); err != nil || len(got) != 0 {
		t.Errorf("Prefixes(\"\") = %v, %v; want none", got, err)
	}
	if _, err := Prefixes("10.0.0.0/8,example.com"); err == nil || err.Error() != `"example.com" is neither an address nor a CIDR` {
		t.Errorf("Prefixes with a host name: %v", err)
	}
}
