package legacy

// OnCaptcha lets tests read the answers of the captchas s issues.
func OnCaptcha(s *Service, f func(id, answer string)) { s.captchaIssued = f }
