package legacy

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/captcha"
)

// Weave error codes (server-core respcodes) used as bare 400 bodies.
const (
	codeCaptcha       = "2"
	codeUsername      = "3"
	codeOverwrite     = "4"
	codeJSON          = "6"
	codeNoPassword    = "7"
	codeInvalidWBO    = "8"
	codeWeakPassword  = "9"
	codeResetCode     = "10"
	codeUnsupported   = "11"
	codeNoEmail       = "12"
	codeEmailMismatch = "15"
	codeOverQuota     = "14"
)

func deriveUsername(account string) string {
	a := strings.ToLower(account)
	if weave.ValidLegacyUsername(a) {
		return a
	}
	sum := sha1.Sum([]byte(a))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))
}

// writeText answers with a text/plain body.
func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// writeCode answers 400 with a bare weave error code, as the client's
// errorStr expects.
func writeCode(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, code)
}

// writeStatus answers with the standard status text, as the 2011
// framework's error pages did.
func writeStatus(w http.ResponseWriter, status int) {
	writeText(w, status, http.StatusText(status))
}

func (s *Service) writeStoreError(w http.ResponseWriter, err error) {
	var ue *weave.UnavailableError
	switch weave.ErrorKindOf(err) {
	case weave.KindUnavailable, weave.KindStorageFull, weave.KindConflict:
		ra := conflictRetryAfter
		if errors.As(err, &ue) {
			// A hint such as a user locked for a move, or a node down.
			ra = ue.RetryAfter
			if ra <= 0 {
				ra = defaultRetryAfter
			}
		}
		w.Header().Set("Retry-After", seconds(ra))
		writeStatus(w, http.StatusServiceUnavailable)
	case weave.KindCanceled:
		writeStatus(w, http.StatusServiceUnavailable)
	default:
		s.cfg.Logger.Error("1.1 request failed", "err", err)
		writeStatus(w, http.StatusInternalServerError)
	}
}

// UserAPI returns the handler of the User API and misc pages; it answers
// /user/1.0/…, /user/1/…, /misc/1.0/captcha_html and /weave-password-reset
// under PublicURL's path (or without it, behind a proxy that strips it).
// Other paths go to next.
func (s *Service) UserAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := stripPrefix(r.URL.Path, s.prefix)
		switch {
		case path == "/misc/1.0/captcha_html" || path == "/misc/1/captcha_html":
			s.captchaHTML(w, r)
			return
		case path == "/weave-password-reset":
			s.resetPage(w, r)
			return
		}
		rest, ok := strings.CutPrefix(path, "/user/1.0/")
		if !ok {
			rest, ok = strings.CutPrefix(path, "/user/1/")
		}
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		rest = strings.TrimSuffix(rest, "/")
		name, action, _ := strings.Cut(rest, "/")
		if !validRouteName(name) {
			writeStatus(w, http.StatusNotFound)
			return
		}
		s.userRoute(w, r, name, action)
	})
}

// validRouteName is server-reg's route pattern for usernames.
func validRouteName(s string) bool {
	if s == "" || len(s) > weave.MaxLegacyUsernameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Service) userRoute(w http.ResponseWriter, r *http.Request, name, action string) {
	name = strings.ToLower(name)
	switch {
	case action == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.userExists(w, r, name)
	case action == "" && r.Method == http.MethodPut:
		s.createUser(w, r, name)
	case action == "" && r.Method == http.MethodDelete:
		s.deleteUser(w, r, name)
	case action == "node/weave" && r.Method == http.MethodGet:
		s.nodeLookup(w, r, name)
	case action == "password" && r.Method == http.MethodPost:
		s.changePassword(w, r, name)
	case action == "email" && r.Method == http.MethodPost:
		s.changeEmail(w, r, name)
	case action == "password_reset":
		// Reset mails need a mail server weave does not have; the client
		// never calls this (it opens weave-password-reset instead).
		writeCode(w, codeUnsupported)
	case action == "" || action == "node/weave" || action == "password" || action == "email":
		w.Header().Set("Allow", "GET, PUT, POST, DELETE")
		writeStatus(w, http.StatusMethodNotAllowed)
	default:
		writeStatus(w, http.StatusNotFound)
	}
}

// userExists is GET /user/1.0/NAME: exactly "1" (taken) or "0" (free),
// which the wizard also uses to recognise a server ("a" as the probe).
func (s *Service) userExists(w http.ResponseWriter, r *http.Request, name string) {
	if s.cfg.Signup == SignupClosed {
		writeText(w, http.StatusOK, "1")
		return
	}
	_, err := s.cfg.Users.LegacyUser(r.Context(), name)
	switch {
	case err == nil:
		writeText(w, http.StatusOK, "1")
	case errors.Is(err, weave.ErrNotFound):
		writeText(w, http.StatusOK, "0")
	default:
		s.writeStoreError(w, err)
	}
}

// maxSmallBody bounds the bodies of User API requests.
const maxSmallBody = 64 << 10

func readSmall(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSmallBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeStatus(w, http.StatusRequestEntityTooLarge)
		} else {
			writeStatus(w, http.StatusBadRequest)
		}
		return nil, false
	}
	return b, true
}

func validEmail(e string) bool {
	if e == "" || len(e) > 255 || strings.ContainsAny(e, " \t\r\n<>") {
		return false
	}
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e
}

// weakPassword is server-reg's rule: at least 8 characters, not the
// username.
func weakPassword(name, pw string) bool {
	return utf8.RuneCountInString(pw) < 8 || strings.EqualFold(strings.TrimSpace(pw), strings.TrimSpace(name))
}

// createUser is PUT /user/1.0/NAME with {"password", "email",
// "captcha-challenge", "captcha-response"}.
func (s *Service) createUser(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	if s.cfg.Signup == SignupClosed {
		s.cfg.Observer.Signup("closed")
		writeStatus(w, http.StatusForbidden)
		return
	}
	if !weave.ValidLegacyUsername(name) {
		s.cfg.Observer.Signup("invalid")
		writeCode(w, codeUsername)
		return
	}
	body, ok := readSmall(w, r)
	if !ok {
		return
	}
	var req struct {
		Password  *string `json:"password"`
		Email     string  `json:"email"`
		EmailDash string  `json:"e-mail"` // the old docs' spelling
		Challenge *string `json:"captcha-challenge"`
		Response  *string `json:"captcha-response"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.cfg.Observer.Signup("invalid")
		writeCode(w, codeJSON)
		return
	}
	if req.Email == "" {
		req.Email = req.EmailDash
	}
	if _, err := s.cfg.Users.LegacyUser(ctx, name); err == nil {
		s.cfg.Observer.Signup("taken")
		writeCode(w, codeOverwrite)
		return
	} else if !errors.Is(err, weave.ErrNotFound) {
		s.writeStoreError(w, err)
		return
	}
	if !validEmail(req.Email) {
		s.cfg.Observer.Signup("invalid")
		writeCode(w, codeNoEmail)
		return
	}
	// As server-reg's strict_usernames: the name must be the one the
	// client derives from the e-mail, so nobody takes another's name.
	if deriveUsername(req.Email) != name {
		s.cfg.Observer.Signup("invalid")
		writeCode(w, codeEmailMismatch)
		return
	}
	if req.Password == nil || *req.Password == "" {
		s.cfg.Observer.Signup("invalid")
		writeCode(w, codeNoPassword)
		return
	}
	if weakPassword(name, *req.Password) || len(*req.Password) > 1024 {
		s.cfg.Observer.Signup("invalid")
		writeCode(w, codeWeakPassword)
		return
	}
	bypass := s.bypass(r)
	if s.cfg.Signup == SignupCaptcha && !bypass && !s.captchaSolved(r, req.Challenge, req.Response) {
		s.cfg.Observer.Signup("captcha")
		writeCode(w, codeCaptcha)
		return
	}
	if !bypass && !s.signups.add(clientIP(r), signupsPerIP, signupWindow, s.cfg.Now()) {
		w.Header().Set("Retry-After", seconds(signupWindow))
		writeStatus(w, http.StatusTooManyRequests)
		return
	}
	h, err := s.hash(*req.Password)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	err = s.cfg.Users.CreateLegacyUser(ctx, weave.LegacyUser{Username: name, Email: req.Email, PasswordHash: h})
	if errors.Is(err, weave.ErrLegacyUserExists) {
		s.cfg.Observer.Signup("taken")
		writeCode(w, codeOverwrite)
		return
	}
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.cfg.Observer.Signup("created")
	s.cfg.Logger.Info("1.1 account created", "user", name)
	writeText(w, http.StatusOK, name)
}

// bypass reports whether the request carries a configured automation
// secret (X-Weave-Secret or X-Captcha-Override).
func (s *Service) bypass(r *http.Request) bool {
	if v := r.Header.Get(WeaveSecretHeader); v != "" && captcha.SecretMatches(v, s.cfg.WeaveSecret) {
		return true
	}
	v := r.Header.Get(CaptchaOverrideHeader)
	return v != "" && captcha.SecretMatches(v, s.cfg.CaptchaOverride)
}

// captchaSolved checks a captcha from captcha_html (challenge = its id,
// response = the typed text).
func (s *Service) captchaSolved(r *http.Request, challenge, response *string) bool {
	if challenge == nil || response == nil {
		return false
	}
	return s.captchas.Check(*challenge, *response, clientIP(r), s.cfg.Now())
}

// authUser checks Basic credentials for the user named in the path. It
// answers the request itself and returns false when they fail: 401 with a
// challenge when absent, badStatus when wrong.
func (s *Service) authUser(w http.ResponseWriter, r *http.Request, name string, badStatus int) (weave.LegacyUser, bool) {
	user, pass, ok := basicAuth(r)
	if !ok {
		s.cfg.Observer.AuthFailed("missing")
		w.Header().Set("WWW-Authenticate", `Basic realm="Sync"`)
		writeStatus(w, http.StatusUnauthorized)
		return weave.LegacyUser{}, false
	}
	if strings.ToLower(user) != name {
		s.cfg.Observer.AuthFailed("password")
		writeStatus(w, badStatus)
		return weave.LegacyUser{}, false
	}
	u, err := s.login(r.Context(), name, pass)
	switch {
	case err == nil:
		return u, true
	case errors.Is(err, weave.ErrNotFound), errors.Is(err, errBadPassword), errors.Is(err, errLocked):
		s.cfg.Observer.AuthFailed("password")
		writeStatus(w, badStatus)
	default:
		s.writeStoreError(w, err)
	}
	return u, false
}

// nodeLookup is GET /user/1.0/NAME/node/weave: the user's node URL with a
// trailing slash, assigning one through the token database as Sync 1.5
// does. The client sends Basic credentials here; a wrong password is 400
// (the client's "login rejected"), not 401, whose handler would look the
// node up again; an unknown user is 404, as in server-reg.
func (s *Service) nodeLookup(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := s.cfg.Users.LegacyUser(r.Context(), name); errors.Is(err, weave.ErrNotFound) {
		writeStatus(w, http.StatusNotFound)
		return
	} else if err != nil {
		s.writeStoreError(w, err)
		return
	}
	if _, ok := s.authUser(w, r, name, http.StatusBadRequest); !ok {
		return
	}
	n, err := s.assignNode(r.Context(), name)
	if errors.Is(err, weave.ErrNoNode) {
		// The client waits and tries again later.
		writeText(w, http.StatusOK, "null")
		return
	}
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	writeText(w, http.StatusOK, strings.TrimRight(n.URL, "/")+"/")
}

// assignNode returns the user's node, allocating a token-database record
// (a uid on the best node) when the user has no live one on an existing
// node.
func (s *Service) assignNode(ctx context.Context, name string) (weave.Node, error) {
	email := weave.LegacyTokenEmail(name)
	u, err := s.cfg.Tokens.GetUser(ctx, email)
	if err == nil && u.ReplacedAt == 0 && !u.Retired() && u.Node != nil {
		return *u.Node, nil
	}
	if err != nil && !errors.Is(err, weave.ErrNotFound) {
		return weave.Node{}, err
	}
	if s.cfg.NewUsersDisabled {
		return weave.Node{}, weave.ErrNoNode
	}
	nu := weave.NewTokenUser{}
	if err == nil {
		if u.Retired() {
			// Never written by this package (deletion replaces records),
			// but a retired record can never be live again.
			return weave.Node{}, weave.ErrNoNode
		}
		nu.Generation = u.Generation
	}
	u, err = s.cfg.Tokens.AllocateUser(ctx, email, nu)
	if err != nil {
		return weave.Node{}, err
	}
	if u.Node == nil {
		return weave.Node{}, weave.ErrNoNode
	}
	return *u.Node, nil
}

// changePassword is POST /user/1.0/NAME/password: Basic auth with the
// current password (or X-Weave-Password-Reset with a reset key), body the
// new password.
func (s *Service) changePassword(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	var u weave.LegacyUser
	if key := r.Header.Get("X-Weave-Password-Reset"); key != "" {
		var err error
		u, err = s.cfg.Users.LegacyUser(ctx, name)
		if errors.Is(err, weave.ErrNotFound) {
			writeStatus(w, http.StatusNotFound)
			return
		} else if err != nil {
			s.writeStoreError(w, err)
			return
		}
		if !s.resetKeyValid(u, key) {
			writeCode(w, codeResetCode)
			return
		}
	} else {
		var ok bool
		if u, ok = s.authUser(w, r, name, http.StatusUnauthorized); !ok {
			return
		}
	}
	body, ok := readSmall(w, r)
	if !ok {
		return
	}
	pw := string(body)
	if !utf8.ValidString(pw) || weakPassword(name, pw) || len(pw) > 1024 {
		writeText(w, http.StatusBadRequest, "Password should be at least 8 characters and not the same as your username")
		return
	}
	if err := s.setPassword(ctx, u, pw); err != nil {
		if errors.Is(err, weave.ErrConflict) {
			writeStatus(w, http.StatusConflict)
			return
		}
		s.writeStoreError(w, err)
		return
	}
	writeText(w, http.StatusOK, "success")
}

// setPassword replaces u's password, unless it changed since u was read.
func (s *Service) setPassword(ctx context.Context, u weave.LegacyUser, pw string) error {
	h, err := s.hash(pw)
	if err != nil {
		return err
	}
	return s.cfg.Users.UpdateLegacyPassword(ctx, u.Username, u.PasswordHash, h)
}

// HashResetKey is how reset keys are stored (LegacyUser.ResetCodeHash).
func HashResetKey(key string) string {
	sum := sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(key))))
	return hex.EncodeToString(sum[:])
}

func (s *Service) resetKeyValid(u weave.LegacyUser, key string) bool {
	if u.ResetCodeHash == "" || len(key) > 64 || s.cfg.Now().UnixMilli() >= u.ResetExpiresAt {
		return false
	}
	got := HashResetKey(key)
	return subtle.ConstantTimeCompare([]byte(got), []byte(u.ResetCodeHash)) == 1
}

// changeEmail is POST /user/1.0/NAME/email.
func (s *Service) changeEmail(w http.ResponseWriter, r *http.Request, name string) {
	if _, ok := s.authUser(w, r, name, http.StatusUnauthorized); !ok {
		return
	}
	body, ok := readSmall(w, r)
	if !ok {
		return
	}
	email := strings.TrimSpace(string(body))
	if !validEmail(email) {
		writeCode(w, codeNoEmail)
		return
	}
	if err := s.cfg.Users.SetLegacyEmail(r.Context(), name, email); err != nil {
		s.writeStoreError(w, err)
		return
	}
	writeText(w, http.StatusOK, email)
}

// deleteUser is DELETE /user/1.0/NAME: the account and its Sync data go,
// its token records are replaced (its uid is never served again); server-reg
// answered "1".
func (s *Service) deleteUser(w http.ResponseWriter, r *http.Request, name string) {
	if _, ok := s.authUser(w, r, name, http.StatusUnauthorized); !ok {
		return
	}
	if err := DeleteUser(r.Context(), s.cfg.Users, s.cfg.Tokens, s.cfg.DeleteSyncData, name); err != nil {
		if errors.Is(err, weave.ErrNotFound) {
			writeStatus(w, http.StatusNotFound)
			return
		}
		s.writeStoreError(w, err)
		return
	}
	writeText(w, http.StatusOK, "1")
}

// DeleteUser removes a 1.1 account. Its Sync data goes first, through
// deleteSyncData (given the account's token-database key; it must also
// mark the records replaced), so no node serves that uid to it again and a
// new account of the same name starts on a fresh uid; then the account.
// A nil deleteSyncData only replaces the records, leaving the data to the
// purge of replaced users.
func DeleteUser(ctx context.Context, users weave.LegacyUserStore, tokens weave.TokenDB, deleteSyncData func(ctx context.Context, tokenEmail string) error, name string) error {
	if _, err := users.LegacyUser(ctx, name); err != nil {
		return err
	}
	email := weave.LegacyTokenEmail(name)
	var err error
	if deleteSyncData != nil {
		err = deleteSyncData(ctx, email)
	} else {
		err = tokens.ReplaceUserRecords(ctx, email)
	}
	if err != nil && !errors.Is(err, weave.ErrNotFound) {
		return err
	}
	return users.DeleteLegacyUser(ctx, name)
}
