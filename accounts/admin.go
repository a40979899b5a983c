package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weave-sync/weave/fxa"
)

// Admin runs the operator's account commands (`weave account`) and
// prints what they did.
type Admin struct {
	Service *Service
	Out     io.Writer
	// Password is the password of create and reset-password.
	Password func() (string, error)
	// Session is the session sign-out ends; with All, every one.
	Session string
	All     bool
}

// Run runs the command args name: create EMAIL, list, delete EMAIL,
// reset-password EMAIL, sessions EMAIL or sign-out EMAIL.
func (a *Admin) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want create, list, delete or reset-password (see `weave account --help`)")
	}
	svc, out := a.Service, a.Out
	if args[0] == "list" {
		return a.list(ctx)
	}
	switch args[0] {
	case "create", "delete", "reset-password", "sessions", "sign-out":
	default:
		return fmt.Errorf("unknown account command %q: want create, list, delete, reset-password, sessions or sign-out", Printable(args[0]))
	}
	if len(args) != 2 {
		return fmt.Errorf("weave account %s needs one EMAIL", args[0])
	}
	email := args[1]
	switch args[0] {
	case "create":
		pw, err := a.Password()
		if err != nil {
			return err
		}
		uid, err := svc.CreateAccount(ctx, email, pw)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "created account %s (uid %s)\n", email, uid)
	case "delete":
		acc, err := svc.Account(ctx, email)
		if err != nil {
			return fmt.Errorf("no account %s: %w", email, err)
		}
		if err := svc.DeleteAccount(ctx, acc.UID); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted account %s (uid %s): its Sync data is removed and every token it held is refused\n", email, acc.UID)
	case "reset-password":
		pw, err := a.Password()
		if err != nil {
			return err
		}
		if err := svc.ResetPasswordTo(ctx, email, pw); err != nil {
			return err
		}
		fmt.Fprintf(out, "reset the password of %s: its devices must sign in again, and Sync data is re-uploaded under new keys\n", email)
	case "sessions":
		return a.sessions(ctx, email)
	case "sign-out":
		if (a.Session == "") == !a.All {
			return fmt.Errorf("weave account sign-out needs --session ID or --all")
		}
		if err := svc.SignOut(ctx, email, a.Session); err != nil {
			return err
		}
		if a.All {
			fmt.Fprintf(out, "signed %s out everywhere: every session and OAuth token of the account is ended\n", Printable(email))
		} else {
			fmt.Fprintf(out, "ended session %s of %s\n", a.Session, Printable(email))
		}
	}
	return nil
}

func (a *Admin) list(ctx context.Context) error {
	after := ""
	for {
		page, err := a.Service.ListAccounts(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, acc := range page {
			fmt.Fprintf(a.Out, "%s  %s  created %s\n", acc.UID, Printable(acc.Email), time.UnixMilli(acc.CreatedAt).UTC().Format(time.RFC3339))
			after = acc.UID
		}
		if len(page) < 500 {
			return nil
		}
	}
}

func (a *Admin) sessions(ctx context.Context, email string) error {
	acc, err := a.Service.Account(ctx, email)
	if err != nil {
		return fmt.Errorf("no account %s: %w", Printable(email), err)
	}
	ss, err := a.Service.Sessions(ctx, acc.UID)
	if err != nil {
		return err
	}
	for _, si := range ss {
		dev := "-"
		if si.DeviceID != "" {
			dev = si.DeviceName + " (" + si.DeviceType + ")"
		}
		fmt.Fprintf(a.Out, "%s  created %s  last used %s  device %s  %s\n", si.ID,
			time.UnixMilli(si.CreatedAt).UTC().Format(time.RFC3339), time.UnixMilli(si.LastUsed).UTC().Format(time.RFC3339),
			Printable(dev), Printable(si.UserAgent))
	}
	fmt.Fprintf(a.Out, "%d sessions\n", len(ss))
	return nil
}

// Printable escapes what a terminal would interpret in text an account's
// owner chose (an email from before weave refused control characters, a
// user agent): control, format and bidi characters print as \u escapes.
func Printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Bidi_Control, r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TokenVerifier is the token server's verifier with built-in accounts: it
// trusts the service's own signing keys, plus those of a JWKS file when
// one is named, and refuses the service's access tokens as soon as they
// are revoked.
func (s *Service) TokenVerifier(jwksFile string) (TokenVerifier, error) {
	doc := s.JWKS()
	if jwksFile != "" {
		var err error
		if doc, err = mergeJWKS(doc, jwksFile); err != nil {
			return nil, err
		}
	}
	keys, err := fxa.ParseJWKS(doc)
	if err != nil {
		return nil, err
	}
	v, err := fxa.NewVerifier(fxa.Options{Keys: keys})
	if err != nil {
		return nil, err
	}
	return s.RevocationCheck(v), nil
}

func mergeJWKS(doc []byte, file string) ([]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--fxa-jwks-file: %w", err)
	}
	var a, b struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &a); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("--fxa-jwks-file: %w", err)
	}
	a.Keys = append(a.Keys, b.Keys...)
	return json.Marshal(a)
}
