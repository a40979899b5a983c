package accounts

import (
	"fmt"
	"io"
	"strings"
)

// WriteFirefoxPrefs tells the operator how to point Firefox at the
// built-in accounts served at publicURL: one pref points all of Firefox's
// account services there, and Firefox refuses a plain-http account server
// unless allowHttp is set.
func WriteFirefoxPrefs(w io.Writer, publicURL string) {
	fmt.Fprintf(w, "Built-in accounts are on. Point Firefox at them: in about:config set\n  identity.fxaccounts.autoconfig.uri = %s\n", publicURL)
	if strings.HasPrefix(publicURL, "http://") {
		fmt.Fprintf(w, "  identity.fxaccounts.allowHttp = true\n")
	}
	fmt.Fprintf(w, "then sign in to Sync: Firefox opens %s (the same page creates accounts in any browser).\n", publicURL)
}
