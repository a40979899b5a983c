package push

import (
	"fmt"
	"io"
	"strings"
)

// WriteFirefoxPrefs tells the operator how to point Firefox at the push
// service; Firefox refuses a ws:// server unless told it is for testing.
func (s *Service) WriteFirefoxPrefs(w io.Writer) {
	u := s.ServerURL()
	fmt.Fprintf(w, "Push is on. Point Firefox at it (before signing in: changing it later drops its subscriptions): in about:config set\n  dom.push.serverURL = %s\n", u)
	if strings.HasPrefix(u, "ws://") {
		fmt.Fprintf(w, "  dom.push.testing.allowInsecureServerURL = true\n")
	}
}
