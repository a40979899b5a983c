package hawk

import (
	"errors"
	"strconv"
	"strings"
)

// SplitHostPort splits a Host header (or URL authority) into the host and
// port that go into the normalized string. The host is lowercased and an
// IPv6 literal loses its brackets, as Firefox signs it ("[::1]:8000" →
// "::1", "8000"). Without an explicit port, the scheme's default is used
// (http 80, https 443); the port is returned in canonical decimal.
func SplitHostPort(hostport, scheme string) (host, port string, err error) {
	rest := ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", "", errors.New("hawk: unterminated IPv6 literal in host")
		}
		host, rest = hostport[1:end], hostport[end+1:]
		if rest != "" && rest[0] != ':' {
			return "", "", errors.New("hawk: junk after IPv6 literal in host")
		}
	} else {
		i := strings.LastIndexByte(hostport, ':')
		if i < 0 {
			i = len(hostport)
		}
		host, rest = hostport[:i], hostport[i:]
		if strings.Contains(host, ":") {
			return "", "", errors.New("hawk: IPv6 host without brackets")
		}
	}
	if host == "" {
		return "", "", errors.New("hawk: empty host")
	}
	port = strings.TrimPrefix(rest, ":")
	if port == "" {
		// An empty port after ':' means the default (RFC 3986 §3.2.3).
		switch strings.ToLower(scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return "", "", errors.New("hawk: no port and unknown scheme " + strconv.Quote(scheme))
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return "", "", errors.New("hawk: bad port " + strconv.Quote(port))
	}
	return strings.ToLower(host), strconv.Itoa(n), nil
}
