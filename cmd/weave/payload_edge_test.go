package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/weave-sync/weave/hawk"
)

// Payloads that databases treat differently (NUL, invalid UTF-8, lone
// surrogates, 4-byte characters) must behave the same on every backend:
// stored and read back unchanged, or refused with 400 — never a 503 from a
// database error.
func TestPayloadEdgeCases(t *testing.T) {
	cases := []struct {
		name, body string
		want       int
		readBack   string
	}{
		{"emoji", `{"payload":"\ud83d\ude00 ok 😀"}`, 200, "😀 ok 😀"},
		{"nul escape", `{"payload":"a\u0000b"}`, 400, ""},
		{"lone surrogate", `{"payload":"a\ud800b"}`, 200, "a\ufffdb"},
		{"invalid utf8", "{\"payload\":\"a\xff\xfeb\"}", 400, ""},
	}
	for _, bc := range backendCases() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, bc.url(t), bc.extra(t)...)
			c := srv.client(t, "0badc0de0badc0de0badc0de0badc0de")
			for _, tc := range cases {
				url := c.token.APIEndpoint + "/storage/forms/edge"
				auth, _ := hawk.Sign(c.token.Key, c.token.ID, "PUT", url, "application/json", []byte(tc.body), time.Now(), "")
				req, _ := http.NewRequest("PUT", url, bytes.NewReader([]byte(tc.body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", auth)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("%s: PUT status %d (%s), want %d", tc.name, resp.StatusCode, b, tc.want)
					continue
				}
				if tc.want != 200 {
					continue
				}
				var got struct{ Payload string }
				c.must(200, "GET", "/storage/forms/edge", nil).json(t, &got)
				if got.Payload != tc.readBack {
					t.Errorf("%s: read back %q, want %q", tc.name, got.Payload, tc.readBack)
				}
			}
		})
	}
}
