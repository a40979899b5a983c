package accounts_test

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/accounts"
	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa"
)

func loginBody(email, password string) []byte {
	return mustJSON(map[string]string{"email": email, "authPW": hex.EncodeToString(onepw.Stretch(email, password).AuthPW)})
}

// TestLockoutNotRaced (issue 12, finding 6): of 20 concurrent wrong-password
// logins against a lockout of 5, only 5 get a password check (errno 103);
// the rest are refused before it (429 errno 114), and so is the right
// password until the lockout ends.
func TestLockoutNotRaced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		w := newWorldOn(t, backend, func(c *accounts.Config) {
			c.Limits = accounts.Limits{EmailFailures: 5, PerIP: 1000, StretchQueue: 100}
		})
		ctx, c := w.ctx, w.client
		if _, err := w.svc.CreateAccount(ctx, "race@example.org", "right"); err != nil {
			t.Fatal(err)
		}
		bad := loginBody("race@example.org", "wrong")
		var mu sync.Mutex
		count := map[int]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := c.DoRaw(ctx, "POST", "/v1/account/login", nil, "application/json", bad, nil, nil)
				e, ok := err.(*fxaclient.Error)
				mu.Lock()
				defer mu.Unlock()
				if !ok {
					count[-1]++
					return
				}
				count[e.Errno]++
			}()
		}
		close(start)
		wg.Wait()
		if count[103] != 5 || count[114] != 15 {
			t.Fatalf("errnos %v, want 5×103 and 15×114", count)
		}
		_, err := c.SignIn(ctx, "race@example.org", "right")
		wantErrno(t, err, 429, 114)
	})
}

// TestLockoutCountsFailuresOnly: right passwords do not use up the
// failure budget (a check in flight holds one unit only while it runs).
func TestLockoutCountsFailuresOnly(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) { c.Limits = accounts.Limits{EmailFailures: 2, PerIP: 1000, GrantBurst: 100} })
	ctx, c := w.ctx, w.client
	if _, err := w.svc.CreateAccount(ctx, "ok@example.org", "right"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := c.SignIn(ctx, "ok@example.org", "right"); err != nil {
			t.Fatalf("right password %d: %v", i, err)
		}
	}
	_, err := c.SignIn(ctx, "ok@example.org", "wrong")
	wantErrno(t, err, 400, 103)
	if _, err := c.SignIn(ctx, "ok@example.org", "right"); err != nil {
		t.Fatalf("right password after one failure: %v", err)
	}
}

// TestLockoutConcurrentRightPasswords: more concurrent sign-ins with the
// right password than the failure budget all succeed; the checks beyond
// the budget wait for running ones instead of getting 429.
func TestLockoutConcurrentRightPasswords(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) {
		c.Limits = accounts.Limits{EmailFailures: 2, PerIP: 1000, GrantBurst: 100, StretchQueue: 100}
	})
	ctx, c := w.ctx, w.client
	if _, err := w.svc.CreateAccount(ctx, "many@example.org", "right"); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	start := make(chan struct{})
	for i := 0; i < 10; i++ {
		go func() {
			<-start
			_, err := c.SignIn(ctx, "many@example.org", "right")
			errs <- err
		}()
	}
	close(start)
	for i := 0; i < 10; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent right password: %v", err)
		}
	}
}

// TestGrantLimitsAndCaps (issue 12, finding 9): grants per account are
// rate limited (429 errno 114 with Retry-After), and an account holds at
// most MaxSessions sessions and MaxRefreshTokens refresh tokens, the least
// recently used going first.
func TestGrantLimitsAndCaps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		clk := &offsetClock{}
		w := newWorldOn(t, backend, func(c *accounts.Config) {
			c.Now = clk.now
			c.Limits = accounts.Limits{PerIP: 1000, GrantBurst: 6, GrantEvery: time.Hour, MaxSessions: 3, MaxRefreshTokens: 2}
		})
		ctx, c := w.ctx, w.client
		c.Now = clk.now
		s, err := c.SignUp(ctx, "grants@example.org", "pw")
		if err != nil {
			t.Fatal(err)
		}
		var refresh []string
		for i := 0; i < 5; i++ { // 5 grants: 5 refresh tokens, 2 kept
			clk.advance(time.Second)
			tr, err := c.TokenWithSession(ctx, s, testClient.ID, fxa.OldSyncScope, true)
			if err != nil {
				t.Fatalf("grant %d: %v", i, err)
			}
			refresh = append(refresh, tr.RefreshToken)
		}
		if toks, _ := w.store.Tokens(ctx, s.UID, accounts.KindRefresh); len(toks) != 2 {
			t.Errorf("%d refresh tokens, want 2", len(toks))
		}
		_, err = c.Refresh(ctx, testClient.ID, refresh[0], "")
		wantErrno(t, err, 400, 182)                                              // evicted
		if _, err := c.Refresh(ctx, testClient.ID, refresh[4], ""); err != nil { // grant 6
			t.Fatalf("newest refresh token: %v", err)
		}
		// The 7th grant is refused, with FxA's throttling answer.
		body := mustJSON(map[string]string{"grant_type": "refresh_token", "client_id": testClient.ID, "refresh_token": refresh[4]})
		req, _ := http.NewRequest("POST", w.base+"/v1/oauth/token", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 429 || ra <= 0 || ra > 3600 {
			t.Fatalf("7th grant: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		_, err = c.SignIn(ctx, "grants@example.org", "pw") // a sign-in is a grant too
		wantErrno(t, err, 429, 114)
		clk.advance(time.Hour)
		if _, err := c.Refresh(ctx, testClient.ID, refresh[4], ""); err != nil {
			t.Fatalf("grant after an hour: %v", err)
		}

		// Sessions: the sign-up session plus sign-ins, 3 kept, the least
		// recently used (not the sign-up one, used just now) evicted.
		clk.advance(6 * time.Hour)
		var sessions []*fxaclient.Session
		for i := 0; i < 3; i++ {
			clk.advance(time.Second)
			si, err := c.SignIn(ctx, "grants@example.org", "pw")
			if err != nil {
				t.Fatal(err)
			}
			sessions = append(sessions, si)
			clk.advance(time.Second)
			if err := c.Do(ctx, "GET", "/v1/session/status", s.Cred(), nil, nil); err != nil {
				t.Fatalf("sign-up session evicted though used: %v", err)
			}
		}
		if toks, _ := w.store.Tokens(ctx, s.UID, accounts.KindSession); len(toks) != 3 {
			t.Errorf("%d sessions, want 3", len(toks))
		}
		wantErrno(t, c.Do(ctx, "GET", "/v1/session/status", sessions[0].Cred(), nil, nil), 401, 110)
		for _, si := range sessions[1:] {
			if err := c.Do(ctx, "GET", "/v1/session/status", si.Cred(), nil, nil); err != nil {
				t.Errorf("recent session evicted: %v", err)
			}
		}
	})
}

// TestLimitsKeyIPv6On64 (issue 12, finding 13): per-address limits count
// an IPv6 client's /64, not each of its 2^64 addresses.
func TestLimitsKeyIPv6On64(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) {
		c.Limits = accounts.Limits{PerIP: 3}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	status := func(ip string) error {
		return w.client.DoRaw(w.ctx, "POST", "/v1/account/status", nil, "application/json", []byte(`{"email":"a@example.org"}`),
			http.Header{"X-Forwarded-For": {ip}}, nil)
	}
	for i := 1; i <= 3; i++ {
		if err := status("2001:db8:1:2::" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	wantErrno(t, status("2001:db8:1:2:ffff:ffff:ffff:ffff"), 429, 114)
	if err := status("2001:db8:1:3::1"); err != nil {
		t.Errorf("another /64: %v", err)
	}
	for i := 1; i <= 3; i++ {
		if err := status("192.0.2." + strconv.Itoa(i)); err != nil {
			t.Errorf("IPv4 addresses are their own: %v", err)
		}
	}
}

// TestCaptchaFairShare (issue 12, finding 13): one address (IPv6: one /64)
// holds at most CaptchasPerIP captchas that can still be answered, so a
// few dozen addresses cannot use up the pool for everyone.
func TestCaptchaFairShare(t *testing.T) {
	cw := newCaptchaWorld(t, func(c *accounts.Config) { c.Limits = accounts.Limits{PerIP: 1000, CaptchasPerIP: 3} })
	ask := func(ip string) error {
		return cw.client.DoRaw(cw.ctx, "POST", "/v1/captcha", nil, "application/json", []byte(`{}`), http.Header{"X-Forwarded-For": {ip}}, nil)
	}
	for i := 0; i < 3; i++ {
		if err := ask("2001:db8::" + strconv.Itoa(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	wantErrno(t, ask("2001:db8::99"), 429, 114)
	if err := ask("198.51.100.7"); err != nil {
		t.Errorf("another client: %v", err)
	}
	cw.clk.advance(6 * time.Minute) // the first ones expired
	if err := ask("2001:db8::1"); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

// TestStretchQueueBounded (issue 12, finding 13): password checks wait for
// a scrypt slot in a bounded queue for a bounded time; past that they get
// FxA's 503 errno 201 with Retry-After at once instead of piling up.
func TestStretchQueueBounded(t *testing.T) {
	w := newWorld(t, func(c *accounts.Config) {
		c.Scrypt = onepw.ScryptParams{N: 1 << 15, R: 8, P: 1} // tens of ms per check
		c.Limits = accounts.Limits{PerIP: 1000, StretchSlots: 1, StretchQueue: 1, StretchWait: 50 * time.Millisecond}
	})
	if _, err := w.svc.CreateAccount(w.ctx, "slow@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	body := loginBody("slow@example.org", "pw")
	type result struct {
		code  int
		retry string
		body  string
	}
	results := make(chan result, 12)
	var wg sync.WaitGroup
	start := make(chan struct{})
	began := time.Now()
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", w.base+"/v1/account/login", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Retry-After"), b.String()}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	busy := 0
	for r := range results {
		switch r.code {
		case 200:
		case 503:
			busy++
			if r.retry == "" || !bytes.Contains([]byte(r.body), []byte(`"errno":201`)) {
				t.Errorf("503 without Retry-After or errno 201: %q %s", r.retry, r.body)
			}
		default:
			t.Errorf("status %d: %s", r.code, r.body)
		}
	}
	if busy == 0 {
		t.Error("12 concurrent checks on 1 slot with a queue of 1: none refused")
	}
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("took %v", d)
	}
}
