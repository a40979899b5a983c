package http

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/hawk"
)

// expect401 checks the shape of every authentication failure.
func expect401(t testing.TB, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusUnauthorized || w.Body.String() != "0" {
		t.Fatalf("status %d body %q, want 401 0", w.Code, w.Body)
	}
	if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Hawk") {
		t.Fatalf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
	}
	if w.Header().Get("X-Weave-Timestamp") == "" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("401 headers %v", w.Header())
	}
}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t)
	path := e.u("/storage/bookmarks")
	good := e.token()

	// Sanity: the good token works.
	expect(t, e.do(req{method: "GET", path: path, creds: &good}), 200, "")

	t.Run("missing header", func(t *testing.T) {
		expect401(t, e.do(req{method: "GET", path: path, noAuth: true}))
	})
	t.Run("other scheme", func(t *testing.T) {
		expect401(t, e.do(req{method: "GET", path: path, noAuth: true, hdr: map[string]string{"Authorization": "Bearer abc"}}))
	})
	t.Run("malformed hawk", func(t *testing.T) {
		for _, h := range []string{
			`Hawk`,
			`Hawk id="x"`,
			`Hawk id="` + good.id + `", ts="notanumber", nonce="n", mac="m"`,
			`Hawk id="` + good.id + `", ts="1", nonce="n", mac="m`,
			`Hawk id=` + good.id + `, ts=1, nonce=n, mac=m, mac=n`,
		} {
			expect401(t, e.do(req{method: "GET", path: path, noAuth: true, hdr: map[string]string{"Authorization": h}}))
		}
	})
	t.Run("bad mac", func(t *testing.T) {
		bad := good
		bad.key = "wrong" + bad.key
		expect401(t, e.do(req{method: "GET", path: path, creds: &bad}))
		// Signed for another path, method or port.
		expect401(t, e.do(req{method: "GET", path: path, signPath: path + "?full=1"}))
		expect401(t, e.do(req{method: "GET", path: path, signPort: "80"}))
		expect401(t, e.do(req{method: "GET", path: path, signHost: "evil.example"}))
	})
	t.Run("garbage token", func(t *testing.T) {
		bad := creds{id: "bm90IGEgdG9rZW4gYXQgYWxsIGJ1dCBsb25nIGVub3VnaCB0byBoYXZlIGEgc2lnbmF0dXJl", key: good.key}
		expect401(t, e.do(req{method: "GET", path: path, creds: &bad}))
	})
	t.Run("foreign secret", func(t *testing.T) {
		c := e.tokenWith(tokenOpts{secret: "some-other-secret"})
		expect401(t, e.do(req{method: "GET", path: path, creds: &c}))
	})
	t.Run("expired", func(t *testing.T) {
		c := e.tokenWith(tokenOpts{expires: e.clock.Now().Add(-time.Minute)})
		expect401(t, e.do(req{method: "GET", path: path, creds: &c}))
		expect401(t, e.do(req{method: "PUT", path: path + "/x", body: `{"payload":"p"}`, creds: &c}))
		// info/collections accepts tokens expired up to 2 h.
		expect(t, e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c}), 200, "")
		old := e.tokenWith(tokenOpts{expires: e.clock.Now().Add(-2*time.Hour - time.Minute)})
		expect401(t, e.do(req{method: "GET", path: e.u("/info/collections"), creds: &old}))
		// ... but no other info endpoint.
		expect401(t, e.do(req{method: "GET", path: e.u("/info/quota"), creds: &c}))
	})
	t.Run("expires while cached", func(t *testing.T) {
		e2 := newEnv(t)
		c := e2.token() // valid for an hour
		expect(t, e2.do(req{method: "GET", path: path, creds: &c}), 200, "")
		e2.clock.Advance(time.Hour + time.Second)
		expect401(t, e2.do(req{method: "GET", path: path, creds: &c}))
		expect(t, e2.do(req{method: "GET", path: e2.u("/info/collections"), creds: &c}), 200, "")
		e2.clock.Advance(2 * time.Hour)
		expect401(t, e2.do(req{method: "GET", path: e2.u("/info/collections"), creds: &c}))
	})
	t.Run("wrong node", func(t *testing.T) {
		for _, node := range []string{"http://127.0.0.1:8001", "https://127.0.0.1:8000", "http://127.0.0.2:8000", "http://127.0.0.1:8000/prefix"} {
			c := e.tokenWith(tokenOpts{node: node})
			expect401(t, e.do(req{method: "GET", path: path, creds: &c}))
		}
		// Equivalent spellings of this node are fine.
		for _, node := range []string{"http://127.0.0.1:8000/", "HTTP://127.0.0.1:8000"} {
			c := e.tokenWith(tokenOpts{node: node})
			expect(t, e.do(req{method: "GET", path: path, creds: &c}), 200, "")
		}
	})
	t.Run("uid mismatch", func(t *testing.T) {
		c := e.tokenWith(tokenOpts{uid: 43})
		expect401(t, e.do(req{method: "GET", path: path, creds: &c}))
		// The same token on its own uid works.
		expect(t, e.do(req{method: "GET", path: "/1.5/43/storage/bookmarks", creds: &c}), 200, "")
	})
	t.Run("replayed nonce", func(t *testing.T) {
		r := req{method: "GET", path: path, creds: &good, nonce: "once-only", ts: e.clock.Now()}
		expect(t, e.do(r), 200, "")
		expect401(t, e.do(r))
		// Another nonce at the same ts is fine.
		r.nonce = "another"
		expect(t, e.do(r), 200, "")
	})
	t.Run("skew", func(t *testing.T) {
		for _, off := range []time.Duration{-61 * time.Second, 61 * time.Second, -time.Hour} {
			w := e.do(req{method: "GET", path: path, creds: &good, ts: e.clock.Now().Add(off)})
			expect401(t, w)
			ch := w.Header().Get("WWW-Authenticate")
			if !strings.Contains(ch, `error="Stale timestamp"`) || !strings.Contains(ch, `tsm="`) {
				t.Fatalf("challenge %q", ch)
			}
			// tsm authenticates the server's ts with the token's key.
			tsv, _ := strconv.ParseInt(between(ch, `ts="`, `"`), 10, 64)
			if between(ch, `tsm="`, `"`) != hawk.TimestampMAC(good.key, tsv) {
				t.Fatalf("bad tsm in %q", ch)
			}
		}
		// Inside the window: fine.
		expect(t, e.do(req{method: "GET", path: path, creds: &good, ts: e.clock.Now().Add(-50 * time.Second)}), 200, "")
	})
	t.Run("payload hash", func(t *testing.T) {
		item := e.u("/storage/bookmarks/h")
		hdr := map[string]string{"Content-Type": "application/json; charset=utf-8"}
		expect(t, e.do(req{method: "PUT", path: item, body: `{"payload":"signed"}`, hdr: hdr, hash: true}), 200, "")
		// A hash of another body.
		hr := httptest.NewRequest("PUT", item, strings.NewReader(`{"payload":"tampered"}`))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", signHawk(good, "PUT", item, "127.0.0.1", "8000", e.clock.Now(), "", payloadHash("application/json", []byte(`{"payload":"signed2"}`))))
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, hr)
		expect401(t, w)
		if got := decode[bsoOut](t, e.get(item)); got.Payload != "signed" {
			t.Fatalf("tampered write landed: %+v", got)
		}
	})
	t.Run("secret rotation", func(t *testing.T) {
		e2 := newEnv(t, func(c *Config) { c.Secrets = []string{"old-secret", testSecret} })
		for _, secret := range []string{"old-secret", testSecret} {
			c := e2.tokenWith(tokenOpts{secret: secret})
			expect(t, e2.do(req{method: "GET", path: path, creds: &c}), 200, "")
		}
	})
	t.Run("nonce cache off", func(t *testing.T) {
		e2 := newEnv(t, func(c *Config) { c.Hawk.DisableNonceCache = true; c.Hawk.Skew = time.Hour })
		c := e2.token()
		r := req{method: "GET", path: path, creds: &c, nonce: "n", ts: e2.clock.Now().Add(-30 * time.Minute)}
		expect(t, e2.do(r), 200, "")
		expect(t, e2.do(r), 200, "")
	})
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

func TestAuthBehindProxy(t *testing.T) {
	t.Run("public URL with stripped prefix", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.PublicURL = "https://sync.example.com/sync/" })
		c := e.token() // node = PublicURL (trailing slash normalised)
		// The proxy strips /sync: the server sees /1.5/..., the client
		// signed /sync/1.5/... for sync.example.com:443.
		w := e.do(req{method: "GET", path: e.u("/info/collections?x=1"), creds: &c, host: "backend:8000",
			signHost: "sync.example.com", signPort: "443", signPath: "/sync" + e.u("/info/collections?x=1")})
		expect(t, w, 200, "")
		// The proxy passes /sync through: no doubling.
		w = e.do(req{method: "PUT", path: "/sync" + e.u("/storage/a/b"), body: `{"payload":"p"}`, creds: &c, host: "backend:8000",
			signHost: "sync.example.com", signPort: "443"})
		expect(t, w, 200, "")
		// Signed without the prefix: mismatch.
		w = e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c, signHost: "sync.example.com", signPort: "443"})
		expect401(t, w)
	})
	t.Run("trusted forwarding headers", func(t *testing.T) {
		e := newEnv(t, func(c *Config) {
			c.PublicURL = ""
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // httptest's RemoteAddr
		})
		fwd := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "Sync.Example.com, inner"}
		c := e.tokenWith(tokenOpts{node: "https://sync.example.com"})
		w := e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c, host: "backend:8080", hdr: fwd,
			signHost: "sync.example.com", signPort: "443"})
		expect(t, w, 200, "")
		// A non-default public port via X-Forwarded-Port.
		c2 := e.tokenWith(tokenOpts{node: "https://sync.example.com:8443"})
		fwd2 := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sync.example.com", "X-Forwarded-Port": "8443"}
		w = e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c2, host: "backend:8080", hdr: fwd2,
			signHost: "sync.example.com", signPort: "8443"})
		expect(t, w, 200, "")
	})
	t.Run("untrusted forwarding headers are ignored", func(t *testing.T) {
		e := newEnv(t, func(c *Config) {
			c.PublicURL = ""
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})
		fwd := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sync.example.com"}
		c := e.tokenWith(tokenOpts{node: "https://sync.example.com"})
		w := e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c, host: "backend:8080", hdr: fwd,
			signHost: "sync.example.com", signPort: "443"})
		expect401(t, w)
		// The request's own Host is what counts.
		c2 := e.tokenWith(tokenOpts{node: "http://backend:8080"})
		w = e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c2, host: "backend:8080", hdr: fwd,
			signHost: "backend", signPort: "8080"})
		expect(t, w, 200, "")
		// IPv6 literal Host.
		c3 := e.tokenWith(tokenOpts{node: "http://[::1]:8000"})
		w = e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c3, host: "[::1]:8000",
			signHost: "::1", signPort: "8000"})
		expect(t, w, 200, "")
	})
	t.Run("each request's own origin", func(t *testing.T) {
		// The server keeps the origin it derived last: a request under
		// another name must get its own, whatever came before.
		e := newEnv(t, func(c *Config) { c.PublicURL = "" })
		a := e.tokenWith(tokenOpts{node: "http://a.example:8080"})
		b := e.tokenWith(tokenOpts{node: "http://b.example:8080"})
		for i := 0; i < 2; i++ {
			for _, c := range []struct {
				creds      creds
				host, sign string
				ok         bool
			}{
				{a, "a.example:8080", "a.example", true},
				{b, "a.example:8080", "a.example", false},
				{b, "b.example:8080", "b.example", true},
				{a, "b.example:8080", "b.example", false},
				{a, "a.example:8080", "b.example", false},
			} {
				w := e.do(req{method: "GET", path: e.u("/info/collections"), creds: &c.creds, host: c.host,
					signHost: c.sign, signPort: "8080"})
				if c.ok {
					expect(t, w, 200, "")
				} else {
					expect401(t, w)
				}
			}
		}
	})
}

// TestHawkVectors replays the requests of hawk.md §8 V3, signed by an
// independent implementation, against the server.
func TestHawkVectors(t *testing.T) {
	const id = "eyJub2RlIjoiaHR0cHM6Ly9zeW5jMS5leGFtcGxlLmNvbSIsImZ4YV9raWQiOiIxNzAwMDAwMDAwMDAwLUFTTkZaNG1yemU4QkkwVm5pYXZON3ciLCJmeGFfdWlkIjoiYTFiMmMzZDRlNWY2MDcxODI5M2E0YjVjNmQ3ZThmOTAiLCJoYXNoZWRfZGV2aWNlX2lkIjoiMmY4ODUwYmNhZGI2MjkyMDMzYmFkOGE1ZTVhZGFkMTQiLCJoYXNoZWRfZnhhX3VpZCI6Ijc2Mjc2NDU5OTRjNTA3OWM1NGI1Nzg4ZDM2NGFkOWJlIiwiZXhwaXJlcyI6MTcwMDAwMzYwMCwidWlkIjo0MiwidG9rZW5zZXJ2ZXJfb3JpZ2luIjoicnVzdCIsInNhbHQiOiJhMWIyYzMifQKGHx3xDV2wo-ot7vGBPL6RTgRk1qJPDUW9kISvPsB_"
	e := newEnv(t, func(c *Config) {
		c.PublicURL = "https://sync1.example.com"
		c.Secrets = []string{"test-master-secret-0123456789"}
	})
	at := func(sec int64) { e.clock.offset.Store(int64(time.Until(time.Unix(sec, 0)))) }
	send := func(method, target, authz, ct, body string) *httptest.ResponseRecorder {
		hr := httptest.NewRequest(method, target, strings.NewReader(body))
		hr.Host = "backend:8000" // ignored: the public URL is authoritative
		hr.Header.Set("Authorization", authz)
		if ct != "" {
			hr.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, hr)
		return w
	}
	at(1700000100)
	w := send("GET", "/1.5/42/info/collections",
		`Hawk id="`+id+`", ts="1700000100", nonce="Zm9vYmFy", mac="pv1D0Bi0AWcwLMJoJIX2DphmIfH3WqbVCQDG8xjFG4o="`, "", "")
	expect(t, w, 200, "{}")
	w = send("POST", "/1.5/42/storage/bookmarks?batch=true",
		`Hawk id="`+id+`", ts="1700000100", nonce="YmF6cXV4", hash="2uS1McAJ03np1J8xWe6C5N833huNnXopdFDSpD86eOw=", mac="/EvS5sdkeXwox59xbpa5EUAa8Sn1V+Ztfsfw0tZpYkw="`,
		"application/json", `[{"id":"-F_Szdjg3GzX","payload":"{}"}]`)
	expect(t, w, 202, "")
	// 100 s later the first request is stale; the challenge carries the
	// vector's tsm.
	at(1700000200)
	w = send("GET", "/1.5/42/info/collections",
		signHawk(creds{id: id, key: "3TyKUL9vwm_qxuzSUm1dD6ucJTKO8EBxB7unP_CiDqc="}, "GET", "/1.5/42/info/collections",
			"sync1.example.com", "443", time.Unix(1700000100, 0), "bmV3bm9uY2U", ""), "", "")
	expect401(t, w)
	if want := `Hawk ts="1700000200", tsm="e1fJbdM825aQpJ0crIMjOweLI82MGfgMC4xBAd28pBU=", error="Stale timestamp"`; w.Header().Get("WWW-Authenticate") != want {
		t.Fatalf("challenge %q\nwant      %q", w.Header().Get("WWW-Authenticate"), want)
	}
}
