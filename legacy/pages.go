package legacy

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/captcha"
)

// captchaPage is what the setup wizard loads into its embedded browser. It
// reads the values of the elements with ids recaptcha_challenge_field and
// recaptcha_response_field (reCAPTCHA v1's markup) and sends them as
// captcha-challenge and captcha-response with the account creation.
var captchaPage = template.Must(template.New("captcha").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Captcha</title>
<style>body{margin:0;font:14px sans-serif}img{display:block;border:1px solid #999}input{font-size:16px;width:180px;margin-top:4px}a{margin-left:6px}</style>
</head><body>
<img src="data:image/png;base64,{{.Image}}" width="{{.Width}}" height="{{.Height}}" alt="Type the characters you see">
<input type="hidden" id="recaptcha_challenge_field" name="recaptcha_challenge_field" value="{{.ID}}">
<input type="text" id="recaptcha_response_field" name="recaptcha_response_field" autocomplete="off" placeholder="Type the characters above">
<a href="">New picture</a> (each picture takes one try)
</body></html>
`))

// captchaHTML is misc/1.0/captcha_html: a fresh image captcha in captcha
// mode, 404 otherwise (the wizard then hides its captcha box).
func (s *Service) captchaHTML(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Signup != SignupCaptcha {
		writeStatus(w, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		writeStatus(w, http.StatusMethodNotAllowed)
		return
	}
	id, answer, ok := s.captchas.Add(clientIP(r), s.cfg.Now(), s.cfg.CaptchaTTL)
	if !ok {
		w.Header().Set("Retry-After", "60")
		writeStatus(w, http.StatusServiceUnavailable)
		return
	}
	if s.captchaIssued != nil {
		s.captchaIssued(id, answer)
	}
	img, err := captcha.PNG(answer)
	if err != nil {
		writeStatus(w, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	captchaPage.Execute(w, map[string]any{
		"ID": id, "Image": base64.StdEncoding.EncodeToString(img), "Width": captcha.Width, "Height": captcha.Height,
	})
}

var resetPage = template.Must(template.New("reset").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sync password reset</title>
<style>body{font:15px sans-serif;max-width:34em;margin:2em auto;padding:0 1em}label{display:block;margin-top:.8em}input{font-size:15px;width:100%}.err{color:#b00}</style>
</head><body>
<h1>Sync password reset</h1>
{{if .Done}}<p>Your password was changed. Sign in to Sync with the new password on each device.</p>
{{else if .Key}}{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post">
<input type="hidden" name="username" value="{{.Username}}"><input type="hidden" name="key" value="{{.Key}}">
<label>New password <input type="password" name="password" autocomplete="new-password" required minlength="8"></label>
<label>Repeat it <input type="password" name="confirm" autocomplete="new-password" required minlength="8"></label>
<p><button type="submit">Change password</button></p>
</form>
{{else}}<p>This server does not send reset mails. Ask its operator for a reset link: they make one with
<code>weave legacy-user reset-password --link USERNAME</code>, and the link leads back here to choose a new password.</p>
<p>Your Sync data stays encrypted with your Recovery Key, which a password reset does not change.</p>
{{end}}</body></html>
`))

// resetPage is weave-password-reset, which the client opens in a tab. With
// a reset key from the operator (?username=…&key=…) it sets a new password.
func (s *Service) resetPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		writeStatus(w, http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSmallBody)
	if err := r.ParseForm(); err != nil {
		writeStatus(w, http.StatusBadRequest)
		return
	}
	data := map[string]any{"Username": r.Form.Get("username"), "Key": r.Form.Get("key")}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Frame-Options", "DENY")
	name, key := strings.ToLower(r.Form.Get("username")), r.Form.Get("key")
	if r.Method != http.MethodPost || key == "" {
		resetPage.Execute(w, data)
		return
	}
	fail := func(msg string) {
		data["Error"] = msg
		w.WriteHeader(http.StatusBadRequest)
		resetPage.Execute(w, data)
	}
	u, err := s.cfg.Users.LegacyUser(r.Context(), deriveUsername(name))
	if err != nil && !errors.Is(err, weave.ErrNotFound) {
		s.writeStoreError(w, err)
		return
	}
	if err != nil || !s.resetKeyValid(u, key) {
		fail("This reset link is wrong or has expired. Ask the operator for a new one.")
		return
	}
	pw := r.PostForm.Get("password")
	if pw != r.PostForm.Get("confirm") {
		fail("The two passwords differ.")
		return
	}
	if weakPassword(u.Username, pw) || len(pw) > 1024 {
		fail("The password must have at least 8 characters and differ from the user name.")
		return
	}
	if err := s.setPassword(r.Context(), u, pw); err != nil {
		if errors.Is(err, weave.ErrConflict) {
			fail("The password changed meanwhile; this link is no longer valid.")
			return
		}
		s.writeStoreError(w, err)
		return
	}
	s.cfg.Logger.Info("1.1 password reset with a reset key", "user", u.Username)
	data["Done"] = true
	resetPage.Execute(w, data)
}
