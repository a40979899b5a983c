package accounts

import (
	"testing"

	"github.com/weave-sync/weave/internal/testkit"
)

func TestFlagsConfig(t *testing.T) {
	for _, tc := range []struct {
		f    Flags
		want string
	}{
		{Flags{Signup: "open"}, ""},
		{Flags{Signup: "closed"}, ""},
		{Flags{Signup: "captcha"}, ""},
		{Flags{Signup: "captcha", CaptchaOverride: "0123456789abcdef"}, ""},
		{Flags{Signup: "maybe"}, "want closed, captcha or open"},
		{Flags{Signup: "open", CaptchaOverride: "0123456789abcdef"}, "only applies with --accounts-signup captcha"},
		{Flags{Signup: "captcha", CaptchaOverride: "short"}, "at least 16"},
	} {
		cfg, err := tc.f.Config()
		if !testkit.ErrMatches(err, tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
		if err == nil && (cfg.SignupClosed != (tc.f.Signup == "closed") || cfg.SignupCaptcha != (tc.f.Signup == "captcha")) {
			t.Errorf("%+v: signup closed %v, captcha %v", tc.f, cfg.SignupClosed, cfg.SignupCaptcha)
		}
	}
}
