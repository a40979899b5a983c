package weave

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTimestampString(t *testing.T) {
	for ms, want := range map[Timestamp]string{
		0:             "0.00",
		10:            "0.01",
		1388635807410: "1388635807.41",
		1388635807000: "1388635807.00",
		1388635807999: "1388635807.99", // sub-10 ms digits are not shown
	} {
		if got := ms.String(); got != want {
			t.Errorf("%d: got %q, want %q", int64(ms), got, want)
		}
		b, _ := json.Marshal(ms)
		if string(b) != want {
			t.Errorf("%d: JSON %s, want %s", int64(ms), b, want)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	good := map[string]Timestamp{
		"0":                 0,
		"1388635807.41":     1388635807410,
		"1388635807":        1388635807000,
		"1388635807.4":      1388635807400,
		"1388635807.416789": 1388635807416,
		"12.":               12000,
		"4102405200000":     4102405200000000, // Firefox's tabs quick-write
	}
	for in, want := range good {
		got, err := ParseTimestamp(in)
		if err != nil || got != want {
			t.Errorf("ParseTimestamp(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1e9", "NaN", "Infinity", ".5", "1.2.3", " 1", "1 ", "0x10",
		"99999999999999", strings.Repeat("9", 70), "１２"} {
		if _, err := ParseTimestamp(in); !errors.Is(err, ErrBadTimestamp) {
			t.Errorf("ParseTimestamp(%q): err %v, want ErrBadTimestamp", in, err)
		}
	}
}

func TestTimestampAt(t *testing.T) {
	ts := TimestampAt(time.UnixMilli(1700000000123))
	if ts != 1700000000120 {
		t.Fatalf("TimestampAt truncates to 10 ms: got %d", ts)
	}
	if ts.Add(25*time.Millisecond) != 1700000000140 {
		t.Fatalf("Add: got %d", ts.Add(25*time.Millisecond))
	}
}

func TestPrecondition(t *testing.T) {
	zero, at := Timestamp(0), Timestamp(5000)
	cases := []struct {
		pre      Precondition
		modified Timestamp
		fail     bool
	}{
		{Precondition{}, 9999, false},
		{Precondition{IfUnmodifiedSince: &at}, 5000, false},
		{Precondition{IfUnmodifiedSince: &at}, 5010, true},
		{Precondition{IfUnmodifiedSince: &zero}, 0, false}, // create-only: absent resource
		{Precondition{IfUnmodifiedSince: &zero}, 10, true}, // create-only: exists
	}
	for i, c := range cases {
		err := c.pre.Check(c.modified)
		var pf *PreconditionFailedError
		if c.fail != errors.As(err, &pf) {
			t.Errorf("case %d: err %v, want failure %v", i, err, c.fail)
		}
		if c.fail && pf.Modified != c.modified {
			t.Errorf("case %d: reported modified %d", i, pf.Modified)
		}
	}
}

func TestValidNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"bookmarks": true, "a.b-c_D9": true, strings.Repeat("x", 32): true,
		"": false, strings.Repeat("x", 33): false, "a b": false, "a/b": false, "é": false,
	} {
		if ValidCollection(name) != ok {
			t.Errorf("ValidCollection(%q) = %v", name, !ok)
		}
	}
	for id, ok := range map[string]bool{
		"-F_Szdjg3GzX": true, " ~!": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a\n": false, "a\x00": false, "é": false,
	} {
		if ValidBSOID(id) != ok {
			t.Errorf("ValidBSOID(%q) = %v", id, !ok)
		}
	}
}

func TestUnavailableErrorUnwraps(t *testing.T) {
	err := error(&UnavailableError{Reason: "migrating", RetryAfter: time.Second})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatal("UnavailableError must match ErrUnavailable")
	}
}
