package accounts

// OnCaptcha lets tests read the answers of the captchas s issues.
func OnCaptcha(s *Service, f func(id, answer string)) { s.captchaIssued = f }

// ConcatKDF exposes the JWE key derivation to the RFC 7518 vector test.
var ConcatKDF = concatKDF

// ValidJWE exposes the keys_jwe shape check.
var ValidJWE = validJWE

// WaitPushes waits until every notice s has queued has been sent (or has
// failed), so a test can assert that nothing more arrives.
func WaitPushes(s *Service) { s.push.wg.Wait() }
