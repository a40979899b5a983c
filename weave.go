// Package weave holds the domain of a Firefox Sync service: storage objects
// (BSOs), collections, timestamps, limits, users and storage nodes, and the
// interfaces that adapters (SQL databases, caches, routers) implement.
//
// It imports nothing of SQL or HTTP: adapters live in packages named after
// their technology and talk to each other only through these types.
package weave

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Timestamp is a Sync timestamp in milliseconds since the epoch. Sync works at
// a resolution of 10 ms and renders timestamps as seconds with two decimals.
type Timestamp int64

// TimestampAt converts a wall-clock time to a Timestamp, truncated to 10 ms.
func TimestampAt(t time.Time) Timestamp {
	ms := t.UnixMilli()
	return Timestamp(ms - ms%10)
}

// Time returns the timestamp as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(int64(t)) }

// String renders the timestamp as Sync does on the wire: seconds with exactly
// two decimals, e.g. "1388635807.41".
func (t Timestamp) String() string {
	ms := int64(t)
	if ms < 0 {
		return "-" + Timestamp(-ms).String()
	}
	return strconv.FormatInt(ms/1000, 10) + "." + fmt.Sprintf("%02d", (ms%1000)/10)
}

// MarshalJSON renders the timestamp as a JSON number with two decimals.
func (t Timestamp) MarshalJSON() ([]byte, error) { return []byte(t.String()), nil }

// Add returns t moved by d, rounded down to 10 ms.
func (t Timestamp) Add(d time.Duration) Timestamp {
	ms := int64(t) + d.Milliseconds()
	return Timestamp(ms - ms%10)
}

// maxTimestampSeconds bounds parsed timestamps (13 digits) so that
// milliseconds fit in an int64 with room to spare. It must take Firefox's
// tabs quick-write, which sends X-If-Unmodified-Since: 4102405200000
// (its FAR_FUTURE in ms, used as seconds) so that the write always passes,
// as syncstorage-rs lets it.
const maxTimestampSeconds = 9_999_999_999_999

// ErrBadTimestamp is returned by ParseTimestamp for anything that is not a
// non-negative decimal number of seconds.
var ErrBadTimestamp = errors.New("weave: invalid timestamp")

// ParseTimestamp parses a non-negative decimal number of seconds such as
// "1388635807.41", "1388635807" or "1388635807.416" (precision beyond a
// millisecond is dropped). Exponents, signs, NaN and the like are rejected.
func ParseTimestamp(s string) (Timestamp, error) {
	if s == "" || len(s) > 64 {
		return 0, ErrBadTimestamp
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || (hasDot && !allDigits(frac)) {
		return 0, ErrBadTimestamp
	}
	if len(whole) > 13 {
		return 0, ErrBadTimestamp
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > maxTimestampSeconds {
		return 0, ErrBadTimestamp
	}
	ms := int64(0)
	for i := 0; i < 3; i++ {
		ms *= 10
		if i < len(frac) {
			ms += int64(frac[i] - '0')
		}
	}
	return Timestamp(sec*1000 + ms), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
