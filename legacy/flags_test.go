package legacy

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
		{Flags{Signup: "captcha", WeaveSecret: "0123456789abcdef"}, ""},
		{Flags{Signup: "closed", Alert: `{"code":"soft-eol","message":"moving","url":"https://example.com/"}`}, ""},
		{Flags{Signup: "maybe"}, "want closed, captcha or open"},
		{Flags{Signup: "open", WeaveSecret: "short"}, "--legacy-weave-secret must be at least 16"},
		{Flags{Signup: "open", CaptchaOverride: "short"}, "--legacy-captcha-override must be at least 16"},
		{Flags{Signup: "open", Alert: "{"}, "--legacy-alert"},
	} {
		cfg, err := tc.f.Config()
		if !testkit.ErrMatches(err, tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
		if err == nil && (string(cfg.Signup) != tc.f.Signup || (cfg.Alert != nil) != (tc.f.Alert != "")) {
			t.Errorf("%+v: config %+v", tc.f, cfg)
		}
	}
}
