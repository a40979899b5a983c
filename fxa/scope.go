package fxa

import (
	"net/url"
	"strings"
)

// OldSyncScope is the scope a token must grant to use Sync.
const OldSyncScope = "https://identity.mozilla.com/apps/oldsync"

// splitScopes splits a scope claim on whitespace and commas: PyFxA and the
// OAuth spec use spaces, syncstorage-rs commas.
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// ScopeGrants reports whether the granted scope implies the wanted one,
// under FxA's rules:
//
//   - URL scopes (https:) grant themselves and any sub-path: the wanted URL
//     must have the same origin and query, a path equal to the granted path
//     or below it (granted path treated as ending in "/"), and exactly the
//     same fragment, so ".../apps/" and ".../apps" grant ".../apps/oldsync"
//     but ".../apps/old" and ".../apps/oldsync#x" do not.
//   - Short names ("profile:email") grant themselves and their ":"-extensions
//     ("profile" grants "profile:email"); a ":write" scope also grants its
//     read-only form, but write access is never implied by a read scope.
//   - A URL never grants a short name and vice versa.
func ScopeGrants(granted, wanted string) bool {
	if granted == "" || wanted == "" {
		return false
	}
	gURL, wURL := strings.HasPrefix(granted, "https:"), strings.HasPrefix(wanted, "https:")
	switch {
	case gURL != wURL:
		return false
	case gURL:
		return urlScopeGrants(granted, wanted)
	default:
		return nameScopeGrants(granted, wanted)
	}
}

func urlScopeGrants(granted, wanted string) bool {
	if granted == wanted {
		return true
	}
	g, err1 := url.Parse(granted)
	w, err2 := url.Parse(wanted)
	if err1 != nil || err2 != nil || g.User != nil || w.User != nil {
		return false
	}
	if g.Scheme != w.Scheme || g.Host != w.Host || g.RawQuery != w.RawQuery || g.Fragment != w.Fragment ||
		g.ForceQuery != w.ForceQuery {
		return false
	}
	gp, wp := g.EscapedPath(), w.EscapedPath()
	if gp == wp {
		return true
	}
	if !strings.HasSuffix(gp, "/") {
		gp += "/"
	}
	return strings.HasPrefix(wp, gp)
}

func nameScopeGrants(granted, wanted string) bool {
	if granted == wanted {
		return true
	}
	g, w := strings.Split(granted, ":"), strings.Split(wanted, ":")
	if w[len(w)-1] == "write" {
		if g[len(g)-1] != "write" {
			return false
		}
		w = w[:len(w)-1]
		g = g[:len(g)-1]
	} else if g[len(g)-1] == "write" {
		g = g[:len(g)-1]
	}
	if len(g) == 0 || len(g) > len(w) {
		return false // a bare "write" grants nothing
	}
	for i := range g {
		if g[i] != w[i] {
			return false
		}
	}
	return true
}
