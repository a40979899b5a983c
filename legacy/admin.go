package legacy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/legacy/passwd"
)

// ParseAlert reads an alert given as JSON, such as
// {"code":"soft-eol","message":"…","url":"…"}, and checks it.
func ParseAlert(s string) (*Alert, error) {
	alert := &Alert{}
	if err := json.Unmarshal([]byte(s), alert); err != nil {
		return nil, fmt.Errorf("%v (want JSON such as {\"code\":\"soft-eol\",\"message\":\"…\",\"url\":\"…\"})", err)
	}
	if err := alert.Check(); err != nil {
		return nil, err
	}
	return alert, nil
}

// Admin runs the operator's 1.1 account commands (`weave legacy-user`)
// and prints what they did.
type Admin struct {
	Users  weave.LegacyUserStore
	Tokens weave.TokenDB
	// DeleteSyncData is Config.DeleteSyncData, for delete.
	DeleteSyncData func(ctx context.Context, tokenEmail string) error
	Out            io.Writer
	// PublicURL is the server's, for reset links.
	PublicURL string
	// Password is the password of create and reset-password.
	Password func() (string, error)
	// Email is the address create keeps (default: ACCOUNT when it is one).
	Email string
	// Link makes reset-password print a one-time link valid for LinkTTL
	// instead of setting a password.
	Link    bool
	LinkTTL time.Duration
}

// Run runs the command args name: list, create ACCOUNT, reset-password
// ACCOUNT or delete ACCOUNT.
func (a *Admin) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want list, create, reset-password or delete (see `weave legacy-user --help`)")
	}
	switch args[0] {
	case "list":
		return a.list(ctx)
	case "create", "reset-password", "delete":
	default:
		return fmt.Errorf("unknown legacy-user command %q: want list, create, reset-password or delete", args[0])
	}
	if len(args) != 2 {
		return fmt.Errorf("weave legacy-user %s needs one ACCOUNT", args[0])
	}
	n := DeriveUsername(args[1])
	switch args[0] {
	case "create":
		return a.create(ctx, args[1], n)
	case "reset-password":
		return a.resetPassword(ctx, n)
	}
	if err := DeleteUser(ctx, a.Users, a.Tokens, a.DeleteSyncData, n); err != nil {
		return fmt.Errorf("delete %s: %w", n, err)
	}
	fmt.Fprintf(a.Out, "deleted 1.1 account %s and its Sync data; its storage uid is no longer served\n", n)
	return nil
}

func (a *Admin) list(ctx context.Context) error {
	after := ""
	for {
		page, err := a.Users.ListLegacyUsers(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, u := range page {
			node := "-"
			if tu, err := a.Tokens.GetUser(ctx, weave.LegacyTokenEmail(u.Username)); err == nil && tu.ReplacedAt == 0 && tu.Node != nil {
				node = fmt.Sprintf("%s (uid %d)", tu.Node.URL, tu.UID)
			}
			email := u.Email
			if email == "" {
				email = "-"
			}
			fmt.Fprintf(a.Out, "%s  %s  created %s  node %s\n", u.Username, email,
				time.UnixMilli(u.CreatedAt).UTC().Format(time.RFC3339), node)
			after = u.Username
		}
		if len(page) < 500 {
			return nil
		}
	}
}

func (a *Admin) create(ctx context.Context, account, n string) error {
	email := a.Email
	if email == "" && strings.Contains(account, "@") {
		email = account
	}
	pw, err := a.Password()
	if err != nil {
		return err
	}
	if len([]rune(pw)) < 8 {
		return fmt.Errorf("the password must have at least 8 characters")
	}
	h, err := passwd.Hash(pw)
	if err != nil {
		return err
	}
	if err := a.Users.CreateLegacyUser(ctx, weave.LegacyUser{Username: n, Email: email, PasswordHash: h}); err != nil {
		return err
	}
	fmt.Fprintf(a.Out, "created 1.1 account %s (username %s); it gets a node at its first sign-in\n", account, n)
	return nil
}

func (a *Admin) resetPassword(ctx context.Context, n string) error {
	u, err := a.Users.LegacyUser(ctx, n)
	if err != nil {
		return fmt.Errorf("no 1.1 account %s: %w", n, err)
	}
	if a.Link {
		key := resetKey()
		if err := a.Users.SetLegacyResetCode(ctx, n, HashResetKey(key), time.Now().Add(a.LinkTTL).UnixMilli()); err != nil {
			return err
		}
		q := url.Values{"username": {n}, "key": {key}}
		fmt.Fprintf(a.Out, "%s/weave-password-reset?%s\n(valid for %s, once)\n", weave.CleanNodeURL(a.PublicURL), q.Encode(), a.LinkTTL)
		return nil
	}
	pw, err := a.Password()
	if err != nil {
		return err
	}
	h, err := passwd.Hash(pw)
	if err != nil {
		return err
	}
	if err := a.Users.UpdateLegacyPassword(ctx, n, u.PasswordHash, h); err != nil {
		return err
	}
	fmt.Fprintf(a.Out, "reset the password of %s: its devices sign in again with it; Sync data is kept (it is encrypted with the Recovery Key)\n", n)
	return nil
}

// resetKey is server-core's reset code shape: XXXX-XXXX-XXXX-XXXX over
// [A-Z0-9] (about 82 bits).
func resetKey() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var sb strings.Builder
	var b [1]byte
	for n := 0; n < 16; {
		rand.Read(b[:])
		if b[0] >= 252 { // 252 = 7×36: no modulo bias
			continue
		}
		if n > 0 && n%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[int(b[0])%len(alphabet)])
		n++
	}
	return sb.String()
}
