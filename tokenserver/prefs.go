package tokenserver

import (
	"fmt"
	"io"
)

// WriteFirefoxPrefs tells the operator how to point Firefox (signed in
// to Mozilla's accounts) at the token server served at publicURL.
func WriteFirefoxPrefs(w io.Writer, publicURL string) {
	fmt.Fprintf(w, "Point Firefox at it: in about:config set\n  identity.sync.tokenserver.uri = %s/1.0/sync/1.5\n", publicURL)
}
