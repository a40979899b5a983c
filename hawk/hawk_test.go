package hawk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave/tokenlib"
)

func TestVectorV1(t *testing.T) {
	const key = "werxhqb98rpaxn39848xrunpaw3489ruxnpa98w4rxn"
	a := Artifacts{TS: "1353832234", Nonce: "j4h3g2", Method: "get", RequestTarget: "/resource/1?b=1&a=2",
		Host: "Example.com", Port: "8000", Ext: "some-app-ext-data"}
	if got := NormalizedString(a); got != "hawk.1.header\n1353832234\nj4h3g2\nGET\n/resource/1?b=1&a=2\nexample.com\n8000\n\nsome-app-ext-data\n" {
		t.Errorf("normalized = %q", got)
	}
	if got := MAC(key, a); got != "6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE=" {
		t.Errorf("mac = %s", got)
	}
	hash := PayloadHash("text/plain", []byte("Thank you for flying Hawk"))
	if hash != "Yi9LfIIFRtBEPt74PVmbTF/xVAwPn7ub15ePICfgnuY=" {
		t.Errorf("hash = %s", hash)
	}
	a.Method, a.Hash = "POST", hash
	if got := MAC(key, a); got != "aSe1DERmZuRl3pI36/9BdZmnErTw3sNzOOAUlfeKjVw=" {
		t.Errorf("mac with hash = %s", got)
	}
}

// t2Payload is vector T2 of tokenserver-1.0.md §8.5 (syncstorage-rs fixture).
const (
	t2Secret  = "Ted Koppel is a robot"
	t2Payload = `{"uid": 1, "node": "http://localhost:5000", "expires": 1884968439.0, "fxa_uid": "319b98f9961ff1dbdd07313cd6ba925a", "fxa_kid": "de697ad66d845b2873c9d7e13b8971af", "hashed_fxa_uid": "0e8df5d41398a389913bd8402435649518af46493da1d4a437a46dc1784c501a", "hashed_device_id": "2bcb92f4d4698c3d7b083a3c698a16ccd78bc2a8d20a96e4bb128ddceaf4e0b6", "salt": "2b307b"}`
)

func TestVectorV2(t *testing.T) {
	const key = "dSi3EoZyHwgDp-O9OG1jRHtmbGl2M1bwcWsi04C4F58="
	a := Artifacts{TS: "1569608439", Nonce: "h1Ch4vo=", Method: "GET", RequestTarget: "/storage/1.5/1/storage/col2",
		Host: "localhost", Port: "5000"}
	if got := NormalizedString(a); got != "hawk.1.header\n1569608439\nh1Ch4vo=\nGET\n/storage/1.5/1/storage/col2\nlocalhost\n5000\n\n\n" {
		t.Errorf("normalized = %q", got)
	}
	if got := MAC(key, a); got != "UwDpC+DSrHCSTQSfMOWlueB6kM6gHb0Hsv8eU9ZcTVs=" {
		t.Errorf("GET mac = %s", got)
	}
	b := a
	b.Method, b.Nonce, b.RequestTarget = "POST", "4Rj7c+0=", "/storage/1.5/1/storage/col2?batch=MTUzNjE5ODk3NjkyMQ==&commit=true"
	if got := MAC(key, b); got != "E7j1UjN7//mh7pYXsgGi3n0KGR+sUPpuyogDVzJWaHg=" {
		t.Errorf("POST mac = %s", got)
	}

	// End to end: the server only has the master secret and the header.
	id := tokenlib.SignBytes(t2Secret, []byte(t2Payload))
	now := time.Unix(1569608439, 0)
	v := NewVerifier(Options{Now: func() time.Time { return now }})
	var uid int64
	lookup := func(_ context.Context, id string) (string, error) {
		p, k, err := tokenlib.Parse([]string{t2Secret}, id, now)
		uid = p.UID
		return k, err
	}
	for _, c := range []struct{ art Artifacts }{{a}, {b}} {
		c.art.TS = ""
		authz := fmt.Sprintf(`Hawk id="%s", ts="1569608439", nonce="%s", mac="%s"`, id, c.art.Nonce, MAC(key, withTS(c.art, "1569608439")))
		_, err := v.Verify(context.Background(), Request{
			Method: c.art.Method, RequestTarget: c.art.RequestTarget, Host: "localhost", Port: "5000",
			Authorization: authz, LookupKey: lookup,
		})
		if err != nil || uid != 1 {
			t.Errorf("%s: uid %d, err %v", c.art.Method, uid, err)
		}
	}
}

func withTS(a Artifacts, ts string) Artifacts { a.TS = ts; return a }

const v3Key = "3TyKUL9vwm_qxuzSUm1dD6ucJTKO8EBxB7unP_CiDqc="

func TestVectorV3(t *testing.T) {
	get := Artifacts{TS: "1700000100", Nonce: "Zm9vYmFy", Method: "GET", RequestTarget: "/1.5/42/info/collections",
		Host: "sync1.example.com", Port: "443"}
	if got := NormalizedString(get); got != "hawk.1.header\n1700000100\nZm9vYmFy\nGET\n/1.5/42/info/collections\nsync1.example.com\n443\n\n\n" {
		t.Errorf("normalized = %q", got)
	}
	if got := MAC(v3Key, get); got != "pv1D0Bi0AWcwLMJoJIX2DphmIfH3WqbVCQDG8xjFG4o=" {
		t.Errorf("GET mac = %s", got)
	}
	body := []byte(`[{"id":"-F_Szdjg3GzX","payload":"{}"}]`)
	hash := PayloadHash("application/json", body)
	if hash != "2uS1McAJ03np1J8xWe6C5N833huNnXopdFDSpD86eOw=" {
		t.Errorf("hash = %s", hash)
	}
	if h2 := PayloadHash(" Application/JSON ; charset=utf-8", body); h2 != hash {
		t.Errorf("content-type parameters not stripped: %s", h2)
	}
	post := Artifacts{TS: "1700000100", Nonce: "YmF6cXV4", Method: "POST", RequestTarget: "/1.5/42/storage/bookmarks?batch=true",
		Host: "sync1.example.com", Port: "443", Hash: hash}
	if got := NormalizedString(post); got != "hawk.1.header\n1700000100\nYmF6cXV4\nPOST\n/1.5/42/storage/bookmarks?batch=true\nsync1.example.com\n443\n2uS1McAJ03np1J8xWe6C5N833huNnXopdFDSpD86eOw=\n\n" {
		t.Errorf("normalized = %q", got)
	}
	if got := MAC(v3Key, post); got != "/EvS5sdkeXwox59xbpa5EUAa8Sn1V+Ztfsfw0tZpYkw=" {
		t.Errorf("POST mac = %s", got)
	}
	if got := TimestampMAC(v3Key, 1700000200); got != "e1fJbdM825aQpJ0crIMjOweLI82MGfgMC4xBAd28pBU=" {
		t.Errorf("tsm = %s", got)
	}
	want := `Hawk ts="1700000200", tsm="e1fJbdM825aQpJ0crIMjOweLI82MGfgMC4xBAd28pBU=", error="Stale timestamp"`
	if got := StaleTimestampChallenge(v3Key, time.Unix(1700000200, 500)); got != want {
		t.Errorf("challenge = %s", got)
	}

	// The client signer produces the same MACs from URLs.
	authz, err := Sign(v3Key, "tok", "GET", "https://sync1.example.com/1.5/42/info/collections", "", nil, time.Unix(1700000100, 0), "Zm9vYmFy")
	if err != nil || !strings.Contains(authz, `mac="pv1D0Bi0AWcwLMJoJIX2DphmIfH3WqbVCQDG8xjFG4o="`) {
		t.Errorf("Sign GET = %s, %v", authz, err)
	}
	authz, err = Sign(v3Key, "tok", "POST", "https://SYNC1.example.com:443/1.5/42/storage/bookmarks?batch=true", "application/json", body, time.Unix(1700000100, 0), "YmF6cXV4")
	if err != nil || !strings.Contains(authz, `mac="/EvS5sdkeXwox59xbpa5EUAa8Sn1V+Ztfsfw0tZpYkw="`) || !strings.Contains(authz, `hash="`+hash+`"`) {
		t.Errorf("Sign POST = %s, %v", authz, err)
	}
}

func TestParseHeader(t *testing.T) {
	ok := []struct {
		in   string
		want Header
	}{
		{`Hawk id="a", ts="1", nonce="n", mac="m"`, Header{ID: "a", TS: "1", Nonce: "n", MAC: "m", Timestamp: 1}},
		{`hAWK id=a,ts=0017,nonce=n,mac=m`, Header{ID: "a", TS: "0017", Nonce: "n", MAC: "m", Timestamp: 17}},
		{"  Hawk\tid = \"a\" ,\tts=\"2\" , nonce=\"x\", mac=\"m+/=\"  ", Header{ID: "a", TS: "2", Nonce: "x", MAC: "m+/=", Timestamp: 2}},
		{`Hawk id="a,b", ts="1", nonce="n,=", mac="m", ext="say \"hi\", \\ ok"`, Header{ID: "a,b", TS: "1", Nonce: "n,=", MAC: "m", Ext: `say "hi", \ ok`, Timestamp: 1}},
		{`Hawk id="a", ts="1", nonce="n", mac="m", hash="h", ext="", app="p", dlg="d"`, Header{ID: "a", TS: "1", Nonce: "n", MAC: "m", Hash: "h", App: "p", Dlg: "d", Timestamp: 1}},
		{`Hawk id="a", ts="1", nonce="n", mac="m", future="x"`, Header{ID: "a", TS: "1", Nonce: "n", MAC: "m", Timestamp: 1}},
	}
	for _, c := range ok {
		got, err := ParseHeader(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseHeader(%q) = %+v, %v", c.in, got, err)
		}
	}
	bad := []string{
		``,
		`Hawk`,
		`Bearer id="a", ts="1", nonce="n", mac="m"`,
		`Hawkid="a", ts="1", nonce="n", mac="m"`,
		`Hawk ts="1", nonce="n", mac="m"`,
		`Hawk id="a", nonce="n", mac="m"`,
		`Hawk id="a", ts="1", mac="m"`,
		`Hawk id="a", ts="1", nonce="n"`,
		`Hawk id="", ts="1", nonce="n", mac="m"`,
		`Hawk id="a", ts="x1", nonce="n", mac="m"`,
		`Hawk id="a", ts="-1", nonce="n", mac="m"`,
		`Hawk id="a", ts="+1", nonce="n", mac="m"`,
		`Hawk id="a", ts="1.5", nonce="n", mac="m"`,
		`Hawk id="a", ts="99999999999999999999", nonce="n", mac="m"`,
		`Hawk id="a", ts="1", nonce="n", mac="m",`,
		`Hawk id="a" ts="1", nonce="n", mac="m"`,
		`Hawk id="a", ts="1", nonce="n", mac="m", id="b"`,
		`Hawk id="a"", ts="1", nonce="n", mac="m"`,
		`Hawk id="a, ts="1", nonce="n", mac="m"`,
		`Hawk id="a\`,
		`Hawk id=a+b, ts="1", nonce="n", mac="m"`,
		`Hawk id=, ts="1", nonce="n", mac="m"`,
		`Hawk ="a", ts="1", nonce="n", mac="m"`,
		`Hawk i.d="a", ts="1", nonce="n", mac="m"`,
		`Hawk id, ts="1", nonce="n", mac="m"`,
		"Hawk id=\"a\nb\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		"Hawk id=\"a\\\nb\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		"Hawk id=\"é\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		`Hawk , id="a", ts="1", nonce="n", mac="m"`,
	}
	for _, in := range bad {
		if h, err := ParseHeader(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader(%q) = %+v, %v; want ErrMalformed", in, h, err)
		}
	}
}

func TestHeaderStringRoundTrip(t *testing.T) {
	h := Header{ID: `a"b\c`, TS: "12", Nonce: "n, m", MAC: "x=", Hash: "h", Ext: "e", Timestamp: 12}
	got, err := ParseHeader(h.String())
	if err != nil || got != h {
		t.Errorf("round trip %q: %+v, %v", h.String(), got, err)
	}
}

func TestNormalizedStringOz(t *testing.T) {
	a := Artifacts{TS: "1", Nonce: "n", Method: "GET", RequestTarget: "/", Host: "h", Port: "80", App: "app"}
	if got := NormalizedString(a); got != "hawk.1.header\n1\nn\nGET\n/\nh\n80\n\n\napp\n\n" {
		t.Errorf("normalized = %q", got)
	}
}

func TestSplitHostPort(t *testing.T) {
	ok := []struct{ in, scheme, host, port string }{
		{"example.com", "http", "example.com", "80"},
		{"Example.COM", "HTTPS", "example.com", "443"},
		{"example.com:8000", "https", "example.com", "8000"},
		{"example.com:", "https", "example.com", "443"},
		{"example.com:0080", "http", "example.com", "80"},
		{"[::1]:8000", "http", "::1", "8000"},
		{"[::1]", "https", "::1", "443"},
		{"[FE80::1]:", "http", "fe80::1", "80"},
		{"127.0.0.1:5000", "", "127.0.0.1", "5000"},
	}
	for _, c := range ok {
		h, p, err := SplitHostPort(c.in, c.scheme)
		if err != nil || h != c.host || p != c.port {
			t.Errorf("SplitHostPort(%q, %q) = %q, %q, %v", c.in, c.scheme, h, p, err)
		}
	}
	bad := []struct{ in, scheme string }{
		{"", "http"}, {":80", "http"}, {"::1", "http"}, {"::1:80", "http"}, {"[::1", "http"},
		{"[::1]x", "http"}, {"[]:80", "http"}, {"h:0", "http"}, {"h:65536", "http"}, {"h:+80", "http"},
		{"h:8a", "http"}, {"h", "ftp"}, {"h", ""},
	}
	for _, c := range bad {
		if h, p, err := SplitHostPort(c.in, c.scheme); err == nil {
			t.Errorf("SplitHostPort(%q, %q) = %q, %q; want error", c.in, c.scheme, h, p)
		}
	}
}

// fixture signs requests with the V3 key for a verifier whose clock is set
// by the test.
type fixture struct {
	now time.Time
	v   *Verifier
}

func newFixture(o Options) *fixture {
	f := &fixture{now: time.Unix(1700000100, 0)}
	o.Now = func() time.Time { return f.now }
	f.v = NewVerifier(o)
	return f
}

func lookupV3(_ context.Context, id string) (string, error) {
	if id != "tok" {
		return "", errUnknownToken
	}
	return v3Key, nil
}

var errUnknownToken = errors.New("unknown token")

func (f *fixture) request(t testing.TB, ts int64, nonce string) Request {
	t.Helper()
	authz, err := Sign(v3Key, "tok", "GET", "https://sync1.example.com/1.5/42/info/collections", "", nil, time.Unix(ts, 0), nonce)
	if err != nil {
		t.Fatal(err)
	}
	return Request{Method: "GET", RequestTarget: "/1.5/42/info/collections", Host: "sync1.example.com", Port: "443",
		Authorization: authz, LookupKey: lookupV3}
}

func TestVerifyErrors(t *testing.T) {
	f := newFixture(Options{})
	ctx := context.Background()
	base := f.request(t, f.now.Unix(), "")

	r := base
	r.Authorization = "Hawk id=x"
	if _, err := f.v.Verify(ctx, r); !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed: %v", err)
	}

	r = base
	r.Authorization = strings.Replace(base.Authorization, `id="tok"`, `id="other"`, 1)
	_, err := f.v.Verify(ctx, r)
	var kle *KeyLookupError
	if !errors.Is(err, ErrKeyLookup) || !errors.Is(err, errUnknownToken) || !errors.As(err, &kle) {
		t.Errorf("lookup failure: %v", err)
	}

	for name, mut := range map[string]func(*Request){
		"method": func(r *Request) { r.Method = "PUT" },
		"target": func(r *Request) { r.RequestTarget += "?x=1" },
		"prefix": func(r *Request) { r.RequestTarget = "/sync" + r.RequestTarget },
		"host":   func(r *Request) { r.Host = "sync2.example.com" },
		"port":   func(r *Request) { r.Port = "80" },
		"mac":    func(r *Request) { r.Authorization = strings.Replace(r.Authorization, `mac="`, `mac="A`, 1) },
		"ext":    func(r *Request) { r.Authorization += `, ext="added"` },
	} {
		r := base
		mut(&r)
		if _, err := f.v.Verify(ctx, r); !errors.Is(err, ErrBadMAC) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
	// Method and host case do not matter.
	r = base
	r.Method, r.Host = "get", "SYNC1.example.com"
	if _, err := f.v.Verify(ctx, r); err != nil {
		t.Errorf("case-insensitive method/host: %v", err)
	}
}

func TestVerifyPayloadHash(t *testing.T) {
	f := newFixture(Options{})
	ctx := context.Background()
	body := []byte(`[{"id":"a"}]`)
	sign := func(nonce string) Request {
		authz, err := Sign(v3Key, "tok", "POST", "https://sync1.example.com/1.5/42/storage/x", "application/json; charset=utf-8", body, f.now, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return Request{Method: "POST", RequestTarget: "/1.5/42/storage/x", Host: "sync1.example.com", Port: "443",
			Authorization: authz, LookupKey: lookupV3}
	}
	r := sign("n1")
	r.Payload = &Payload{ContentType: "Application/JSON", Body: body}
	if _, err := f.v.Verify(ctx, r); err != nil {
		t.Errorf("good body: %v", err)
	}
	r = sign("n2")
	r.Payload = &Payload{ContentType: "application/json", Body: []byte(`[{"id":"b"}]`)}
	if _, err := f.v.Verify(ctx, r); !errors.Is(err, ErrBadPayloadHash) {
		t.Errorf("tampered body: %v", err)
	}
	r = sign("n3")
	r.Payload = &Payload{ContentType: "text/plain", Body: body}
	if _, err := f.v.Verify(ctx, r); !errors.Is(err, ErrBadPayloadHash) {
		t.Errorf("other content type: %v", err)
	}
	// Without a payload offered, the hash only counts in the MAC.
	r = sign("n4")
	if _, err := f.v.Verify(ctx, r); err != nil {
		t.Errorf("hash not checked: %v", err)
	}
	// A header without hash is accepted even when a body is offered.
	q := f.request(t, f.now.Unix(), "n5")
	q.Payload = &Payload{ContentType: "application/json", Body: body}
	if _, err := f.v.Verify(ctx, q); err != nil {
		t.Errorf("no hash attribute: %v", err)
	}
}

func TestVerifySkewWindow(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		skew   time.Duration
		offset int64 // ts - now, seconds
		nanos  int64 // sub-second part of now
		ok     bool
	}{
		{0, 0, 0, true},
		{0, 60, 0, true},
		{0, -60, 0, true},
		{0, 61, 0, false},
		{0, -61, 0, false},
		{0, -60, 1, false}, // now is a hair past the window
		{0, 60, 1, true},
		{10 * time.Second, 10, 0, true},
		{10 * time.Second, 11, 0, false},
		{-1, -1_000_000, 0, true}, // disabled
		{-1, 1_000_000, 0, true},
	} {
		f := newFixture(Options{Skew: c.skew})
		f.now = f.now.Add(time.Duration(c.nanos))
		ts := f.now.Unix() + c.offset
		_, err := f.v.Verify(ctx, f.request(t, ts, ""))
		if c.ok && err != nil {
			t.Errorf("skew %v offset %d: %v", c.skew, c.offset, err)
		}
		if !c.ok {
			var se *StaleTimestampError
			if !errors.Is(err, ErrStaleTimestamp) || !errors.As(err, &se) {
				t.Errorf("skew %v offset %d: %v", c.skew, c.offset, err)
				continue
			}
			if se.ServerTime != f.now || se.Timestamp != ts || se.Challenge != StaleTimestampChallenge(v3Key, f.now) {
				t.Errorf("stale error %+v", se)
			}
		}
	}
}

func TestVerifyStaleBeforeMAC(t *testing.T) {
	// A forged request with a stale ts must report the MAC, never the
	// challenge (which would be computed with the real key).
	f := newFixture(Options{})
	r := f.request(t, f.now.Unix()-3600, "")
	r.Authorization = strings.Replace(r.Authorization, `mac="`, `mac="A`, 1)
	if _, err := f.v.Verify(context.Background(), r); !errors.Is(err, ErrBadMAC) {
		t.Errorf("got %v", err)
	}
}

func TestVerifyReplay(t *testing.T) {
	f := newFixture(Options{})
	ctx := context.Background()
	r := f.request(t, f.now.Unix(), "abc")
	if _, err := f.v.Verify(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, r); !errors.Is(err, ErrReplayedNonce) {
		t.Errorf("replay: %v", err)
	}
	// Another spelling of the same credential's id (a lookup that folds
	// case) is the same credential: its nonce is spent.
	alias := f.request(t, f.now.Unix(), "abc")
	alias.LookupKey = func(ctx context.Context, id string) (string, error) { return lookupV3(ctx, strings.ToLower(id)) }
	alias.Authorization = strings.Replace(alias.Authorization, `id="tok"`, `id="TOK"`, 1)
	if _, err := f.v.Verify(ctx, alias); !errors.Is(err, ErrReplayedNonce) {
		t.Errorf("replay under another spelling of the id: %v", err)
	}
	// Same nonce with a different ts is a different request.
	if _, err := f.v.Verify(ctx, f.request(t, f.now.Unix()+1, "abc")); err != nil {
		t.Errorf("same nonce, other ts: %v", err)
	}
	// A bad MAC must not burn the nonce.
	bad := f.request(t, f.now.Unix(), "fresh")
	good := bad
	bad.Authorization = strings.Replace(bad.Authorization, `mac="`, `mac="A`, 1)
	if _, err := f.v.Verify(ctx, bad); !errors.Is(err, ErrBadMAC) {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, good); err != nil {
		t.Errorf("nonce burnt by forged request: %v", err)
	}
	// Once the ts has left the window the replay is stale, not remembered.
	f.now = f.now.Add(61 * time.Second)
	if _, err := f.v.Verify(ctx, r); !errors.Is(err, ErrStaleTimestamp) {
		t.Errorf("late replay: %v", err)
	}
	// Enough new entries that every shard sweeps (a shard sweeps on use).
	f.now = f.now.Add(3 * time.Minute)
	const fresh = nonceShards * 64
	for i := 0; i < fresh; i++ {
		f.v.nonces.fresh("sweep", f.now.Unix(), strconv.Itoa(i), f.now.Unix())
	}
	if n := f.v.nonces.len(); n != fresh {
		t.Errorf("stale entries kept: %d entries, want %d", n, fresh)
	}

	// Replay detection off.
	g := newFixture(Options{NonceCapacity: -1})
	r = g.request(t, g.now.Unix(), "abc")
	for i := 0; i < 2; i++ {
		if _, err := g.v.Verify(ctx, r); err != nil {
			t.Errorf("cache disabled, attempt %d: %v", i, err)
		}
	}
}

func TestNonceCacheBounded(t *testing.T) {
	c := newNonceCache(60, nonceShards*10)
	now := int64(1700000000)
	for i := 0; i < 100_000; i++ {
		ts := now - 60 + int64(i%121)
		if !c.fresh("id", ts, strconv.Itoa(i), now) {
			t.Fatalf("fresh entry %d reported as replay", i)
		}
	}
	if n := c.len(); n > nonceShards*10 {
		t.Errorf("cache holds %d entries, cap %d", n, nonceShards*10)
	}
	// The newest entries are still remembered.
	if c.fresh("id", now-60+int64(99_999%121), "99999", now) {
		t.Error("most recent entry forgotten")
	}
}

func TestNonceCacheConcurrent(t *testing.T) {
	c := newNonceCache(60, 1<<16)
	now := int64(1700000000)
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			// Every worker offers the same nonces: each must be accepted once.
			for i := 0; i < per; i++ {
				if c.fresh("id", now+int64(i%7)-3, strconv.Itoa(i), now+int64(i/500)) {
					n++
				}
			}
			mu.Lock()
			accepted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if accepted != per {
		t.Errorf("accepted %d distinct nonces, want %d", accepted, per)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(Options{})
	ctx := context.Background()
	reqs := make([]Request, 200)
	for i := range reqs {
		reqs[i] = f.request(t, f.now.Unix(), "n"+strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, replay := 0, 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range reqs {
				_, err := f.v.Verify(ctx, r)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrReplayedNonce):
					replay++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != len(reqs) || replay != 3*len(reqs) {
		t.Errorf("ok %d replay %d", ok, replay)
	}
}

func TestZeroVerifier(t *testing.T) {
	var v Verifier
	f := newFixture(Options{})
	r := f.request(t, time.Now().Unix(), "")
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(context.Background(), r); err != nil {
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	r = f.request(t, time.Now().Unix()-120, "")
	if _, err := v.Verify(context.Background(), r); !errors.Is(err, ErrStaleTimestamp) {
		t.Errorf("zero verifier window: %v", err)
	}
}

func TestSignErrors(t *testing.T) {
	for _, u := range []string{"/relative", "ftp://h/x", "http://[::1/x", "http://h:99999/"} {
		if _, err := Sign("k", "id", "GET", u, "", nil, time.Now(), ""); err == nil {
			t.Errorf("Sign(%q) succeeded", u)
		}
	}
	// Random nonces differ.
	a, _ := Sign("k", "id", "GET", "http://h/", "", nil, time.Unix(1, 0), "")
	b, _ := Sign("k", "id", "GET", "http://h/", "", nil, time.Unix(1, 0), "")
	if a == b {
		t.Error("nonce not random")
	}
	// The request target keeps the URL's encoding.
	h, _ := Sign("k", "id", "GET", "http://h/a%2Fb/c?x=%20&b=1&a=2", "", nil, time.Unix(1, 0), "n")
	p, _ := ParseHeader(h)
	if want := MAC("k", Artifacts{TS: "1", Nonce: "n", Method: "GET", RequestTarget: "/a%2Fb/c?x=%20&b=1&a=2", Host: "h", Port: "80"}); p.MAC != want {
		t.Error("request target re-encoded")
	}
}

// benchID is a realistic token length (T1's id is ~400 characters).
var benchID = strings.Repeat("x", 400)

func benchArtifacts(now time.Time) Artifacts {
	return Artifacts{TS: strconv.FormatInt(now.Unix(), 10), Method: "GET",
		RequestTarget: "/1.5/42/storage/bookmarks?full=1&newer=1700000000.12", Host: "sync1.example.com", Port: "443"}
}

// BenchmarkVerify measures one request's cost on the storage hot path:
// parse, MAC, window and nonce cache. Headers are signed in batches with the
// timer stopped, each with a unique nonce, so every iteration takes the
// accept path. The key lookup is a constant here; tokenlib.Parse is
// benchmarked in its own package.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(Options{})
	f.now = time.Now()
	a := benchArtifacts(f.now)
	lookup := func(context.Context, string) (string, error) { return v3Key, nil }
	ctx := context.Background()
	const batch = 4096
	headers := make([]string, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			for j := range headers {
				a.Nonce = strconv.Itoa(i + j)
				headers[j] = Authorization(v3Key, benchID, a)
			}
			b.StartTimer()
		}
		r := Request{Method: a.Method, RequestTarget: a.RequestTarget, Host: a.Host, Port: a.Port,
			Authorization: headers[i%batch], LookupKey: lookup}
		if _, err := f.v.Verify(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel runs sign+verify on all CPUs against one shared
// Verifier; subtract BenchmarkSign for the verify share. It shows that the
// shared nonce cache does not serialise requests.
func BenchmarkVerifyParallel(b *testing.B) {
	f := newFixture(Options{})
	f.now = time.Now()
	lookup := func(context.Context, string) (string, error) { return v3Key, nil }
	ctx := context.Background()
	var g atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		a := benchArtifacts(f.now)
		prefix := strconv.FormatInt(g.Add(1), 10) + "-"
		for i := 0; pb.Next(); i++ {
			a.Nonce = prefix + strconv.Itoa(i)
			r := Request{Method: a.Method, RequestTarget: a.RequestTarget, Host: a.Host, Port: a.Port,
				Authorization: Authorization(v3Key, benchID, a), LookupKey: lookup}
			if _, err := f.v.Verify(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	a := benchArtifacts(time.Now())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.Nonce = strconv.Itoa(i)
		_ = Authorization(v3Key, benchID, a)
	}
}

// BenchmarkNonceCache isolates the replay cache, the only shared state.
func BenchmarkNonceCache(b *testing.B) {
	now := time.Now().Unix()
	b.Run("serial", func(b *testing.B) {
		c := newNonceCache(60, DefaultNonceCapacity)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if !c.fresh(benchID, now, strconv.Itoa(i), now) {
				b.Fatal("replay")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := newNonceCache(60, DefaultNonceCapacity)
		var g atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			prefix := strconv.FormatInt(g.Add(1), 10) + "-"
			for i := 0; pb.Next(); i++ {
				if !c.fresh(benchID, now, prefix+strconv.Itoa(i), now) {
					b.Fatal("replay")
				}
			}
		})
	})
}

// TestMACAgainstHMAC checks the stack-buffer HMAC against crypto/hmac for
// keys around the block size and normalized strings around the buffer's
// size (both ends take crypto/hmac), and that macMatches accepts exactly
// the MAC.
func TestMACAgainstHMAC(t *testing.T) {
	for _, klen := range []int{0, 1, 43, 63, 64, 65, 100, 200} {
		key := strings.Repeat("k", klen)
		for _, tlen := range []int{1, 300, 380, 390, 400, 410, 420, 448, 500, 3000} {
			a := Artifacts{TS: "1700000000", Nonce: "Zm9vYmFy", Method: "get", RequestTarget: "/" + strings.Repeat("p", tlen-1),
				Host: "Sync.Example.com", Port: "443", Ext: "e"}
			m := hmac.New(sha256.New, []byte(key))
			m.Write([]byte(NormalizedString(a)))
			want := base64.StdEncoding.EncodeToString(m.Sum(nil))
			if got := MAC(key, a); got != want {
				t.Fatalf("key %d, target %d: MAC %s, crypto/hmac %s", klen, tlen, got, want)
			}
			if !macMatches(key, a, want) {
				t.Fatalf("key %d, target %d: macMatches refuses the MAC", klen, tlen)
			}
			bad := []byte(want)
			bad[len(bad)-2] ^= 1
			if macMatches(key, a, string(bad)) || macMatches(key, a, want[:macLen-1]) || macMatches(key, a, want+"=") {
				t.Fatalf("key %d, target %d: macMatches accepts another MAC", klen, tlen)
			}
		}
	}
}

// TestVerifyAllocs pins that verifying a typical request's MAC allocates
// nothing: it runs on every authenticated request.
func TestVerifyAllocs(t *testing.T) {
	key := strings.Repeat("k", 43)
	a := Artifacts{TS: "1700000000", Nonce: "Zm9vYmFy", Method: "GET", RequestTarget: "/1.5/42/info/collections",
		Host: "sync.example.com", Port: "443"}
	mac := MAC(key, a)
	if n := testing.AllocsPerRun(100, func() {
		if !macMatches(key, a, mac) {
			t.Fatal("mismatch")
		}
	}); n != 0 {
		t.Errorf("macMatches: %v allocations, want 0", n)
	}
}
