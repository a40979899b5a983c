package accounts_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/onepw"
)

const override = "override-secret-0123456789"

// captchaWorld is a server in captcha mode whose captcha answers the test
// can read (it plays the human), behind a trusted proxy so requests can
// claim different client addresses.
type captchaWorld struct {
	*world
	mu      sync.Mutex
	answers map[string]string
	clk     *offsetClock
}

func newCaptchaWorld(t *testing.T, mod ...func(*accounts.Config)) *captchaWorld {
	clk := &offsetClock{}
	cw := &captchaWorld{answers: map[string]string{}, clk: clk}
	cw.world = newWorld(t, append([]func(*accounts.Config){func(c *accounts.Config) {
		c.SignupCaptcha, c.CaptchaOverride, c.Now = true, override, clk.now
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}}, mod...)...)
	accounts.OnCaptcha(cw.svc, func(id, answer string) {
		cw.mu.Lock()
		cw.answers[id] = answer
		cw.mu.Unlock()
	})
	return cw
}

// captcha asks for a captcha as the client at ip.
func (cw *captchaWorld) captcha(ip string) (id, answer string, resp map[string]any) {
	cw.t.Helper()
	err := cw.client.DoRaw(cw.ctx, "POST", "/v1/captcha", nil, "application/json", []byte(`{}`), http.Header{"X-Forwarded-For": {ip}}, &resp)
	if err != nil {
		cw.t.Fatal(err)
	}
	id, _ = resp["id"].(string)
	cw.mu.Lock()
	answer = cw.answers[id]
	cw.mu.Unlock()
	return id, answer, resp
}

// signUp posts account/create as the client at ip with extra body fields
// and headers.
func (cw *captchaWorld) signUp(ip, email string, extra map[string]string, hdr http.Header) error {
	body := map[string]string{"email": email, "authPW": hex.EncodeToString(onepw.Stretch(email, "pw").AuthPW)}
	for k, v := range extra {
		body[k] = v
	}
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("X-Forwarded-For", ip)
	return cw.client.DoRaw(cw.ctx, "POST", "/v1/account/create?keys=true", nil, "application/json", mustJSON(body), hdr, nil)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestCaptchaImage(t *testing.T) {
	cw := newCaptchaWorld(t)
	id, answer, resp := cw.captcha("10.0.0.1")
	if len(id) != 32 || len(answer) != 6 {
		t.Fatalf("id %q answer %q", id, answer)
	}
	img, _ := resp["image"].(string)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(img, "data:image/png;base64,"))
	if err != nil || !strings.HasPrefix(img, "data:image/png;base64,") {
		t.Fatalf("image: %.60s %v", img, err)
	}
	p, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bd := p.Bounds()
	if bd.Dx() != int(resp["width"].(float64)) || bd.Dy() != int(resp["height"].(float64)) {
		t.Errorf("image %v, response says %vx%v", bd, resp["width"], resp["height"])
	}
	// There is ink, but not everywhere.
	dark := 0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			if r, _, _, _ := p.At(x, y).RGBA(); r < 0x6000 {
				dark++
			}
		}
	}
	if frac := float64(dark) / float64(bd.Dx()*bd.Dy()); frac < 0.03 || frac > 0.4 {
		t.Errorf("%.2f of the image is ink", frac)
	}
	// Two captchas differ (answer and picture).
	id2, _, resp2 := cw.captcha("10.0.0.1")
	if id2 == id || resp2["image"] == resp["image"] {
		t.Error("captchas repeat")
	}
}

func TestCaptchaSignup(t *testing.T) {
	cw := newCaptchaWorld(t)
	ip := "10.0.0.2"

	// Required: no captcha at all is 125 asking for one.
	e := wantErrno(t, cw.signUp(ip, "a@example.org", nil, nil), 400, 125)
	if e.Body["verificationMethod"] != "captcha" {
		t.Errorf("125 body: %v", e.Body)
	}
	// Wrong answer: 127, and the captcha is spent.
	id, answer, _ := cw.captcha(ip)
	wantErrno(t, cw.signUp(ip, "a@example.org", map[string]string{"captchaId": id, "captchaAnswer": "ZZZZZZ"}, nil), 400, 127)
	wantErrno(t, cw.signUp(ip, "a@example.org", map[string]string{"captchaId": id, "captchaAnswer": answer}, nil), 400, 127)
	// Right answer from another address: 127 (bound to who asked).
	id, answer, _ = cw.captcha(ip)
	wantErrno(t, cw.signUp("10.9.9.9", "a@example.org", map[string]string{"captchaId": id, "captchaAnswer": answer}, nil), 400, 127)
	// Expired.
	id, answer, _ = cw.captcha(ip)
	cw.clk.advance(6 * time.Minute)
	wantErrno(t, cw.signUp(ip, "a@example.org", map[string]string{"captchaId": id, "captchaAnswer": answer}, nil), 400, 127)
	cw.clk.advance(-6 * time.Minute)
	// Unknown or malformed ids.
	wantErrno(t, cw.signUp(ip, "a@example.org", map[string]string{"captchaId": strings.Repeat("0", 32), "captchaAnswer": "ABCDEF"}, nil), 400, 127)
	wantErrno(t, cw.signUp(ip, "a@example.org", map[string]string{"captchaId": "x", "captchaAnswer": "ABCDEF"}, nil), 400, 127)
	if accountCount(t, cw.world, "a@example.org") != 0 {
		t.Fatal("an account was created without a solved captcha")
	}

	// Right answer, lower case with spaces: created. Reused: 127.
	id, answer, _ = cw.captcha(ip)
	sloppy := " " + strings.ToLower(answer[:3]) + " " + answer[3:] + " "
	if err := cw.signUp(ip, "a@example.org", map[string]string{"captchaId": id, "captchaAnswer": sloppy}, nil); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, cw.signUp(ip, "b@example.org", map[string]string{"captchaId": id, "captchaAnswer": answer}, nil), 400, 127)
	if _, err := cw.client.SignIn(cw.ctx, "a@example.org", "pw"); err != nil {
		t.Fatal(err)
	}

	// A malformed body is refused as such before the captcha is spent.
	id, answer, _ = cw.captcha(ip)
	err := cw.client.DoRaw(cw.ctx, "POST", "/v1/account/create", nil, "application/json",
		[]byte(`{"email":"c@example.org","authPW":"short","captchaId":"`+id+`","captchaAnswer":"`+answer+`"}`), http.Header{"X-Forwarded-For": {ip}}, nil)
	wantErrno(t, err, 400, 107)
	if err := cw.signUp(ip, "c@example.org", map[string]string{"captchaId": id, "captchaAnswer": answer}, nil); err != nil {
		t.Fatalf("captcha spent by a malformed request: %v", err)
	}
	// Captcha fields of the wrong type: 107, nothing created.
	err = cw.client.DoRaw(cw.ctx, "POST", "/v1/account/create", nil, "application/json",
		[]byte(`{"email":"d@example.org","authPW":"`+strings.Repeat("ab", 32)+`","captchaId":5}`), http.Header{"X-Forwarded-For": {ip}}, nil)
	wantErrno(t, err, 400, 107)
	// An oversized body: 413, nothing created.
	err = cw.client.DoRaw(cw.ctx, "POST", "/v1/account/create", nil, "application/json",
		[]byte(`{"email":"d@example.org","captchaAnswer":"`+strings.Repeat("A", 20000)+`"}`), http.Header{"X-Forwarded-For": {ip}}, nil)
	wantErrno(t, err, 413, 113)
	if accountCount(t, cw.world, "d@example.org") != 0 {
		t.Fatal("bad requests created an account")
	}
}

func TestCaptchaOverride(t *testing.T) {
	cw := newCaptchaWorld(t)
	hdr := func(v string) http.Header { return http.Header{accounts.CaptchaOverrideHeader: {v}} }
	wantErrno(t, cw.signUp("10.0.0.3", "o@example.org", nil, hdr("wrong")), 400, 127)
	wantErrno(t, cw.signUp("10.0.0.3", "o@example.org", nil, hdr(override+"x")), 400, 127)
	// A wrong override is not rescued by a right captcha.
	id, answer, _ := cw.captcha("10.0.0.3")
	wantErrno(t, cw.signUp("10.0.0.3", "o@example.org", map[string]string{"captchaId": id, "captchaAnswer": answer}, hdr("nope")), 400, 127)
	if err := cw.signUp("10.0.0.3", "o@example.org", nil, hdr(override)); err != nil {
		t.Fatal(err)
	}
	// Without a configured override, the header never works.
	cw2 := newCaptchaWorld(t, func(c *accounts.Config) { c.CaptchaOverride = "" })
	wantErrno(t, cw2.signUp("10.0.0.3", "p@example.org", nil, hdr(override)), 400, 127)
	wantErrno(t, cw2.signUp("10.0.0.3", "p@example.org", nil, hdr("")), 400, 125)
}

func TestCaptchaRateLimitAndModes(t *testing.T) {
	cw := newCaptchaWorld(t, func(c *accounts.Config) { c.Limits = accounts.Limits{PerIP: 3} })
	for i := 0; i < 3; i++ {
		cw.captcha("10.0.0.4")
	}
	err := cw.client.DoRaw(cw.ctx, "POST", "/v1/captcha", nil, "application/json", []byte(`{}`), http.Header{"X-Forwarded-For": {"10.0.0.4"}}, nil)
	if e := wantErrno(t, err, 429, 114); e.Body["retryAfter"] == nil {
		t.Errorf("429 body %v", e.Body)
	}
	cw.captcha("10.0.0.5") // another address is not affected

	// Not in captcha mode: no captcha endpoint, and sign-up needs none.
	w := newWorld(t)
	wantErrno(t, w.client.Do(w.ctx, "POST", "/v1/captcha", nil, map[string]any{}, nil), 404, 116)
	if _, err := w.client.SignUp(w.ctx, "open@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	// Closed wins: 125 without verificationMethod.
	wc := newWorld(t, func(c *accounts.Config) { c.SignupClosed = true })
	_, err = wc.client.SignUp(wc.ctx, "closed@example.org", "pw")
	if e := wantErrno(t, err, 400, 125); e.Body["verificationMethod"] != nil {
		t.Errorf("closed sign-up asks for a captcha: %v", e.Body)
	}
}
