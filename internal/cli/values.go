package cli

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
)

// Logger is the logger that the --log-format (text or json) and
// --log-level (debug, info, warn or error) flags ask for, writing to w.
func Logger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// Prefixes parses a comma-separated list of CIDRs and addresses (each a
// prefix of its full length); empty items are ignored.
func Prefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// LogFlags are --log-format and --log-level.
type LogFlags struct{ Format, Level string }

// RegisterFlags registers --log-format and --log-level.
func (f *LogFlags) RegisterFlags(c *Command) {
	c.String(&f.Format, "log-format", "text", "log format: text or json")
	c.String(&f.Level, "log-level", "info", "log level: debug, info, warn or error")
}

// Logger is the logger the flags ask for, writing to w.
func (f *LogFlags) Logger(w io.Writer) (*slog.Logger, error) { return Logger(f.Format, f.Level, w) }
