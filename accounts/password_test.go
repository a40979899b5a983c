package accounts_test

import (
	"bytes"
	"testing"

	"github.com/weave-sync/weave/accounts/fxaclient"
	"github.com/weave-sync/weave/accounts/onepw"
	"github.com/weave-sync/weave/fxa"
)

// syncLogin signs in, fetches kB and the oldsync key data, gets an access
// token and returns what the token server needs.
func syncLogin(t *testing.T, w *world, email, password string) (access string, keys fxaclient.SyncKeys, kB []byte, s *fxaclient.Session) {
	t.Helper()
	s, err := w.client.SignIn(w.ctx, email, password)
	if err != nil {
		t.Fatal(err)
	}
	_, kB, err = w.client.Keys(w.ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	skd, err := w.client.ScopedKeyData(w.ctx, s, testClient.ID, fxa.OldSyncScope)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := w.client.TokenWithSession(w.ctx, s, testClient.ID, fxa.OldSyncScope, false)
	if err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken, fxaclient.DeriveSyncKeys(kB, skd[fxa.OldSyncScope].KeyRotationTimestamp), kB, s
}

func TestPasswordChangeAndReset(t *testing.T) {
	w := newWorld(t)
	ctx := w.ctx
	email := "pw@example.org"
	if _, err := w.client.SignUp(ctx, email, "one"); err != nil {
		t.Fatal(err)
	}
	acc1, keys1, kB1, s1 := syncLogin(t, w, email, "one")
	tok1, code := w.syncToken(acc1, keys1.KeyID)
	if code != 200 {
		t.Fatalf("token server: %d %v", code, tok1)
	}
	a1, _ := w.svc.Account(ctx, email)

	// Change: same kB and keys_changed_at, higher generation, sessions gone.
	// Wrong old password first: nothing changes.
	_, err := w.client.ChangePassword(ctx, email, "nope", "two")
	wantErrno(t, err, 400, 103)
	ns, err := w.client.ChangePassword(ctx, email, "one", "two")
	if err != nil {
		t.Fatal(err)
	}
	if _, kB, err := w.client.Keys(ctx, ns); err != nil || !bytes.Equal(kB, kB1) {
		t.Fatalf("keys from finish: %v", err)
	}
	a2, _ := w.svc.Account(ctx, email)
	if a2.VerifierSet <= a1.VerifierSet || a2.KeysChanged != a1.KeysChanged {
		t.Fatalf("change: generation %d→%d, keys_changed_at %d→%d", a1.VerifierSet, a2.VerifierSet, a1.KeysChanged, a2.KeysChanged)
	}
	wantErrno(t, w.client.Do(ctx, "GET", "/v1/session/status", s1.Cred(), nil, nil), 401, 110)
	_, err = w.client.SignIn(ctx, email, "one")
	wantErrno(t, err, 400, 103)
	acc2, keys2, kB2, _ := syncLogin(t, w, email, "two")
	if !bytes.Equal(kB1, kB2) || keys1.KeyID != keys2.KeyID {
		t.Fatal("password change changed kB")
	}
	tok2, code := w.syncToken(acc2, keys2.KeyID)
	if code != 200 || tok2["uid"] != tok1["uid"] {
		t.Fatalf("after change: %d %v (uid was %v)", code, tok2, tok1["uid"])
	}
	// The pre-change access token now has a stale generation.
	if _, code := w.syncToken(acc1, keys1.KeyID); code != 401 {
		t.Fatalf("old token after change: %d", code)
	}
	wantErrno(t, w.client.Do(ctx, "POST", "/v1/verify", nil, map[string]string{"token": acc1}, nil), 401, 110)

	// Reset: new kB, generation == keys_changed_at == now, new token-server uid.
	if err := w.svc.ResetPassword(ctx, email, onepw.Stretch(email, "three").AuthPW); err != nil {
		t.Fatal(err)
	}
	a3, _ := w.svc.Account(ctx, email)
	if a3.KeysChanged <= a2.KeysChanged || a3.VerifierSet != a3.KeysChanged || a3.VerifierSet <= a2.VerifierSet || a3.UID != a1.UID {
		t.Fatalf("reset: %+v after %+v", a3, a2)
	}
	acc3, keys3, kB3, _ := syncLogin(t, w, email, "three")
	if bytes.Equal(kB3, kB2) || keys3.KeyID == keys2.KeyID {
		t.Fatal("reset kept kB")
	}
	tok3, code := w.syncToken(acc3, keys3.KeyID)
	if code != 200 || tok3["uid"] == tok2["uid"] {
		t.Fatalf("after reset: %d %v", code, tok3)
	}
	if _, code := w.syncToken(acc2, keys2.KeyID); code != 401 {
		t.Fatalf("pre-reset token after reset: %d", code)
	}
}
