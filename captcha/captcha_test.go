package captcha

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	var s Set
	now := time.Unix(1_700_000_000, 0)
	id, answer, ok := s.Add("1.2.3.4", now, time.Minute)
	if !ok || len(id) != IDLen || len(answer) != Len {
		t.Fatalf("Add = %q, %q, %v", id, answer, ok)
	}
	// Case and spaces do not matter; one guess per captcha.
	if !s.Check(id, " "+strings.ToLower(answer[:3])+" "+answer[3:], "1.2.3.4", now) {
		t.Fatal("right answer refused")
	}
	if s.Check(id, answer, "1.2.3.4", now) {
		t.Fatal("captcha used twice")
	}
	for name, f := range map[string]func(id, answer string) bool{
		"wrong answer":  func(id, a string) bool { return s.Check(id, a+"X", "1.2.3.4", now) },
		"other address": func(id, a string) bool { return s.Check(id, a, "5.6.7.8", now) },
		"expired":       func(id, a string) bool { return s.Check(id, a, "1.2.3.4", now.Add(time.Minute)) },
	} {
		id, a, _ := s.Add("1.2.3.4", now, time.Minute)
		if f(id, a) {
			t.Errorf("%s accepted", name)
		}
		if s.Check(id, a, "1.2.3.4", now) {
			t.Errorf("%s: captcha still usable after a failed guess", name)
		}
	}
}

func TestSecretMatches(t *testing.T) {
	if !SecretMatches("s3cret", "s3cret") || SecretMatches("s3cret", "") || SecretMatches("", "") || SecretMatches("s3cre", "s3cret") {
		t.Fatal("SecretMatches")
	}
}

func TestPNG(t *testing.T) {
	b, err := PNG("ACEF34")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != Width || img.Bounds().Dy() != Height {
		t.Fatalf("PNG: %v %v", img.Bounds(), err)
	}
}
