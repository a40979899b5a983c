package hawk

import (
	"errors"
	"testing"
)

// FuzzParseHeader checks that no input panics, that failures are
// ErrMalformed, and that accepted headers survive a format/parse round trip.
func FuzzParseHeader(f *testing.F) {
	f.Add(`Hawk id="dh37fgj492je", ts="1353832234", nonce="j4h3g2", ext="some-app-ext-data", mac="6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE="`)
	f.Add(`hawk id=a,ts=1,nonce=n,mac=m`)
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParseHeader(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if h.ID == "" || h.TS == "" || h.Nonce == "" || h.MAC == "" {
			t.Fatalf("accepted header without required attribute: %+v", h)
		}
		h2, err := ParseHeader(h.String())
		if err != nil || h2 != h {
			t.Fatalf("round trip of %q: %+v, %v", h.String(), h2, err)
		}
	})
}
