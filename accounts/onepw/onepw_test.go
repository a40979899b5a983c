package onepw

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func h(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Vectors of the onepw protocol, as published with FxA's protocol
// documentation and repeated in Firefox's and FxA clients' test suites.
func TestClientStretchVector(t *testing.T) {
	c := Stretch("andré@example.org", "pässwörd")
	for name, got := range map[string][]byte{
		"e4e8889bd8bd61ad6de6b95c059d56e7b50dacdaf62bd84644af7e2add84345d": c.QuickStretchedPW,
		"247b675ffb4c46310bc87e26d712153abe5e1c90ef00a4784594f97ef54f2375": c.AuthPW,
		"de6a2648b78284fcb9ffa81ba95803309cfba7af583c01a8a1a63e567234dd28": c.UnwrapBKey,
	} {
		if hex.EncodeToString(got) != name {
			t.Errorf("got %x, want %s", got, name)
		}
	}
}

func TestHKDFVectors(t *testing.T) {
	got := HKDF(h(t, "4a9cbe5ae7190a7bb7cc54d5d84f5e4ba743904f8a764933b72f10260067375a"), KW("keyFetchToken"), 96)
	if want := "f4df04ffb79db35e94e4881719a6f145f9206e8efea17fc9f02a5ce09cbfac1e829a935f34111d75e0d16b7aa178e2766759eedb6f623c0babd2abcfea82bc12af75f6aa543a8ba7e0a029f87c785c4af0ad03889f7437f735b5256a88fc73fd"; hex.EncodeToString(got) != want {
		t.Errorf("keyFetchToken HKDF = %x", got)
	}
	k := DeriveToken(h(t, "4a9cbe5ae7190a7bb7cc54d5d84f5e4ba743904f8a764933b72f10260067375a"), "keyFetchToken")
	if !bytes.Equal(append(append(k.ID, k.HMACKey...), k.Extra...), got) {
		t.Error("DeriveToken does not split the HKDF output id‖hmacKey‖extra")
	}
	got = HKDF(h(t, "ba0a107dab60f3b065ff7a642d14fe824fbd71bc5c99087e9e172a1abd1634f1"), KW("account/keys"), 96)
	if want := "17ab463653a94c9a6419b48781930edefe500395e3b4e7879a2be1599975702285de16c3218a126404668bf9b7acfb6ce2b7e03c8889047ba48b8b854c6d8beb3ae100e145ca6d69cb519a872a83af788771954455716143bc08225ea8644d85"; hex.EncodeToString(got) != want {
		t.Errorf("account/keys HKDF = %x", got)
	}
}

func TestKeysBundleVector(t *testing.T) {
	key := h(t, "dedd009a8275a4f672bb4b41e14a117812c0b2f400c85fa058e0293f3f45726a")
	bundle := h(t, "df4717238a738501bd2ad8f7114ef193ea69751a40108149bfb88a5643a8d683a1e75b705d4db135130f0896dbac0819ab7d54334e0cd4f9c945e0a7ada91899756cedf4384be404844050270310bc2b396f100eeda0c7b428cfe77c40a873ae")
	pt, err := OpenBundle(key, "account/keys", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(pt[:32]) != "939282904b808c6003ea31aeb14bc766d2ab70ba7dcaa54f820efcf4762b9619" ||
		hex.EncodeToString(pt[32:]) != "849ac9f71643ace46dcdd384633ec1bffe565852806ee2f859c3eba7fafeafec" {
		t.Errorf("kA‖wrapKb = %x", pt)
	}
	if again := SealBundle(key, "account/keys", pt); !bytes.Equal(again, bundle) {
		t.Error("SealBundle does not reproduce the vector")
	}
	bundle[5] ^= 1
	if _, err := OpenBundle(key, "account/keys", bundle); err != ErrBadBundle {
		t.Errorf("tampered bundle: %v", err)
	}
}

func TestKBAndSyncVectors(t *testing.T) {
	kB := XOR(h(t, "7effe354abecbcb234a8dfc2d7644b4ad339b525589738f2d27341bb8622ecd8"),
		h(t, "de6a2648b78284fcb9ffa81ba95803309cfba7af583c01a8a1a63e567234dd28"))
	if hex.EncodeToString(kB) != "a095c51c1c6e384e8d5777d97e3c487a4fc2128a00ab395a73d57fedf41631f0" {
		t.Errorf("kB = %x", kB)
	}
	kB = h(t, "fd5c747806c07ce0b9d69dcfea144663e630b65ec4963596a22f24910d7dd15d")
	if got := hex.EncodeToString(KXCS(kB)); got != "6ae94683571c7a7c54dab4700aa3995f" {
		t.Errorf("client state = %s", got)
	}
	if got := hex.EncodeToString(KSync(kB)); got != "ad501a50561be52b008878b2e0d8a73357778a712255f7722f497b5d4df14b05dc06afb836e1521e882f521eb34691d172337accdbf6e2a5b968b05a7bbb9885" {
		t.Errorf("kSync = %s", got)
	}
	if got := KeyID(1234, kB); got != "1234-aulGg1ccenxU2rRwCqOZXw" {
		t.Errorf("KeyID = %s", got)
	}
}

func TestServerStretchRoundTrip(t *testing.T) {
	p := ScryptParams{N: 1024, R: 8, P: 1}
	a, err := ServerStretch([]byte("authpw"), []byte("salt"), p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ServerStretch([]byte("authpw"), []byte("salt"), p)
	c, _ := ServerStretch([]byte("authpX"), []byte("salt"), p)
	if !bytes.Equal(a.VerifyHash, b.VerifyHash) || bytes.Equal(a.VerifyHash, c.VerifyHash) || bytes.Equal(a.VerifyHash, a.WrapWrapKey) {
		t.Error("server stretch not deterministic or not separating keys")
	}
}
