package weave

import (
	"errors"
	"net/url"
	"strings"
)

// A node URL is written in two forms. The stored form (CleanNodeURL) is what
// the operator typed, minus surrounding spaces and trailing slashes: the token
// DB keeps it and tokens carry it, so clients build "<URL>/1.5/<uid>" from it.
// The key form (NodeURLKey) is what two spellings of one node share — the
// token server, the storage API's node check and the fleet compare in it.
// Both are computed here and nowhere else.

// NodeURL is a parsed node URL, its parts in canonical form.
type NodeURL struct {
	Scheme string // lowercase
	Host   string // lowercase, without IPv6 brackets
	Port   string // as written; "" when absent
	Prefix string // escaped path without trailing slash; "" at the root
}

// ErrBadNodeURL is returned by ParseNodeURL for anything that is not an
// http(s) URL with a host and without query or fragment.
var ErrBadNodeURL = errors.New("weave: a node URL is an http(s) URL without query, e.g. https://sync.example.com/prefix")

// CleanNodeURL returns raw in stored form: surrounding spaces and trailing
// slashes dropped, so that "<URL>/1.5/<uid>" and the token's node compare
// equal however the operator typed the URL.
func CleanNodeURL(raw string) string { return strings.TrimRight(strings.TrimSpace(raw), "/") }

// ParseNodeURL parses an http(s) node URL such as a --public-url.
func ParseNodeURL(raw string) (NodeURL, error) {
	n, u, err := parseNodeURL(raw)
	if err != nil || (n.Scheme != "http" && n.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return NodeURL{}, ErrBadNodeURL
	}
	return n, nil
}

// NodeURLKey returns raw in key form: lowercase scheme and host, default port
// dropped, no trailing slash; user info, query and fragment are ignored. What
// does not parse as a URL with a host is only cleaned (it matches nothing
// but itself).
func NodeURLKey(raw string) string {
	n, _, err := parseNodeURL(raw)
	if err != nil {
		return CleanNodeURL(raw)
	}
	return n.String()
}

func parseNodeURL(raw string) (NodeURL, *url.URL, error) {
	u, err := url.Parse(CleanNodeURL(raw))
	if err != nil {
		return NodeURL{}, nil, err
	}
	if u.Host == "" {
		return NodeURL{}, nil, ErrBadNodeURL
	}
	return NodeURL{
		Scheme: strings.ToLower(u.Scheme),
		Host:   strings.ToLower(u.Hostname()),
		Port:   u.Port(),
		Prefix: strings.TrimRight(u.EscapedPath(), "/"),
	}, u, nil
}

// HostPort is the URL's host[:port] with the scheme's default port left out.
func (n NodeURL) HostPort() string {
	h := n.Host
	if strings.IndexByte(h, ':') >= 0 {
		h = "[" + h + "]"
	}
	if n.Port == "" || (n.Scheme == "http" && n.Port == "80") || (n.Scheme == "https" && n.Port == "443") {
		return h
	}
	return h + ":" + n.Port
}

// String renders the URL in key form.
func (n NodeURL) String() string { return n.Scheme + "://" + n.HostPort() + n.Prefix }
