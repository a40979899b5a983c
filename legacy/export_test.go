package legacy

// OnCaptcha lets tests read the answers of the captchas s issues.
func OnCaptcha(s *Service, f func(id, answer string)) { s.captchaIssued = f }

// ClientIP is clientIP, for tests.
var ClientIP = clientIP
