package loadtest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weave-sync/weave"
)

// Sync 1.1 users (Config.LegacyShare): Pale Moon and Basilisk profiles.

// legacyLimits are Storage 1.1's fixed limits (server-storage's defaults):
// 100 records and under 1 MiB of payload per POST, 256 KiB per record.
func legacyLimits() weave.Limits {
	l := weave.DefaultLimits()
	l.MaxPostRecords = 100
	l.MaxPostBytes = 1<<20 - 1
	l.MaxRecordPayloadBytes = 256 * 1024
	l.MaxRequestBytes = 4 << 20
	l.MaxTotalRecords = 100
	l.MaxTotalBytes = 1<<20 - 1
	return normalizeLimits(l)
}

// isLegacy spreads the 1.1 users evenly over the user indexes.
func isLegacy(i int, share float64) bool {
	return share > 0 && int(float64(i+1)*share) > int(float64(i)*share)
}

// setLegacy gives u its fixed 1.1 account: the e-mail it signs up with,
// the username the UXP client derives from it, a password.
func (r *runner) setLegacy(u *user) {
	u.legacy = true
	u.email = fmt.Sprintf("%s-%d@loadtest.invalid", strings.ToLower(r.cfg.UserPrefix), u.index)
	sum := sha1.Sum([]byte(strings.ToLower(u.email)))
	u.legacyName = strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))
	pw := sha256.Sum256([]byte(r.cfg.UserPrefix + ":legacy-password:" + strconv.Itoa(u.index)))
	u.legacyPW = hex.EncodeToString(pw[:16])
}

// legacyCreds signs u up (an existing account is fine), looks its node up
// and returns Basic credentials for <node>1.1/<username>.
func (r *runner) legacyCreds(ctx context.Context, u *user) (*creds, error) {
	base := strings.TrimRight(r.target.String(), "/") + "/user/1.0/" + u.legacyName
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(u.legacyName+":"+u.legacyPW))
	call := func(method, url, auth string, body []byte, hdr map[string]string) (int, string, error) {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := r.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, "", errCut
			}
			r.rec.record(KindLegacyUser, 0, time.Since(start), errTransport, err.Error())
			return 0, "", &statusError{kind: KindLegacyUser, label: errTransport, detail: err.Error()}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil {
			return 0, "", err
		}
		r.noteBackoff(u, &response{status: resp.StatusCode, header: resp.Header})
		return resp.StatusCode, string(b), nil
	}
	fail := func(what string, status int, body string, lat time.Duration) error {
		label := strconv.Itoa(status)
		detail := fmt.Sprintf("%s: %d %s", what, status, body)
		r.rec.record(KindLegacyUser, status, lat, label, detail)
		return &statusError{kind: KindLegacyUser, status: status, label: label, detail: detail, backoff: u.retryAfter}
	}

	if !u.signedUp {
		body, _ := json.Marshal(map[string]any{"password": u.legacyPW, "email": u.email,
			"captcha-challenge": nil, "captcha-response": nil})
		hdr := map[string]string{"Content-Type": "application/json"}
		if r.cfg.LegacySecret != "" {
			hdr["X-Weave-Secret"] = r.cfg.LegacySecret
		}
		start := time.Now()
		st, b, err := call(http.MethodPut, base, "", body, hdr)
		if err != nil {
			return nil, err
		}
		// 400 4: the account exists (an earlier run): sign in with it.
		if st != http.StatusOK && !(st == http.StatusBadRequest && b == "4") {
			return nil, fail("sign-up", st, b, time.Since(start))
		}
		r.rec.record(KindLegacyUser, st, time.Since(start), "", "")
		u.signedUp = true
	}
	start := time.Now()
	st, node, err := call(http.MethodGet, base+"/node/weave", basic, nil, nil)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK || !strings.HasSuffix(node, "/") {
		return nil, fail("node lookup", st, node, time.Since(start))
	}
	r.rec.record(KindLegacyUser, st, time.Since(start), "", "")
	c, err := endpointCreds("", "", node+"1.1/"+u.legacyName, r.cfg.AllowRemote)
	if err != nil {
		return nil, err
	}
	c.basic = basic
	c.refreshAt = time.Now().Add(24 * time.Hour) // Basic credentials do not expire
	return c, nil
}
