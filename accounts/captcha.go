package accounts

import (
	"encoding/base64"

	"github.com/weave-sync/weave/captcha"
)

// The sign-up captcha (Config.SignupCaptcha): a distorted image of a few
// characters drawn by package captcha, so no third-party service or
// network is involved. A captcha is single use (taken on the first answer,
// right or wrong), expires after Config.CaptchaTTL, is bound to the
// address that asked for it, and asking is rate limited per address.
// Automated setup skips it with the operator's override secret in the
// X-Captcha-Override header.

// CaptchaOverrideHeader carries Config.CaptchaOverride.
const CaptchaOverrideHeader = "X-Captcha-Override"

// Captcha errors. FxA has no image captcha; its human check is the
// "unblock code" of a blocked request (verificationMethod "email-captcha"),
// so a missing captcha is errno 125 (request blocked, asking for a
// captcha) and a wrong, expired, reused or foreign one is errno 127
// (invalid unblock code): FxA clients already handle both.
var (
	errCaptchaRequired = newErr(400, ErrnoRequestBlocked, "The request was blocked for security reasons").
				with("verificationMethod", "captcha").with("verificationReason", "signup")
	errCaptchaInvalid = newErr(400, ErrnoInvalidUnblockCode, "Invalid captcha answer (wrong, expired or already used)")
)

// newCaptcha is POST /v1/captcha: a fresh captcha for this address.
func (s *Service) newCaptcha(r *request) (any, error) {
	if !s.cfg.SignupCaptcha {
		return nil, errNotFound
	}
	if err := s.limits.checkIP(r.ip, "captcha"); err != nil {
		return nil, err
	}
	// Fair shares of the process-wide pool (captcha.Max): no address (IPv6:
	// /64) holds more than CaptchasPerIP of the captchas that can still be
	// answered, so ~70 addresses cannot use it up for everyone.
	if ok, retry := s.limits.hit("captchaheld|"+limitKey(r.ip), s.limits.l.CaptchasPerIP, s.cfg.CaptchaTTL); !ok {
		return nil, errThrottled(retry)
	}
	id, answer, ok := s.captcha.Add(r.ip, s.now(), s.cfg.CaptchaTTL)
	if !ok {
		return nil, errServerBusy
	}
	if s.captchaIssued != nil {
		s.captchaIssued(id, answer)
	}
	img, err := captcha.PNG(answer)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": id, "image": "data:image/png;base64," + base64.StdEncoding.EncodeToString(img),
		"width": captcha.Width, "height": captcha.Height, "expiresAt": s.now().Add(s.cfg.CaptchaTTL).UnixMilli()}, nil
}

// checkSignupCaptcha enforces the captcha on account/create: the override
// header (when configured) or a solved captcha from the body.
func (s *Service) checkSignupCaptcha(r *request, id, answer string) error {
	if !s.cfg.SignupCaptcha {
		return nil
	}
	if o := r.r.Header.Get(CaptchaOverrideHeader); o != "" {
		if captcha.SecretMatches(o, s.cfg.CaptchaOverride) {
			return nil
		}
		return errCaptchaInvalid
	}
	if id == "" || answer == "" {
		return errCaptchaRequired
	}
	if !s.captcha.Check(id, answer, r.ip, s.now()) {
		return errCaptchaInvalid
	}
	return nil
}
