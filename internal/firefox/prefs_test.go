package firefox

import (
	"strings"
	"testing"
)

func TestUserJS(t *testing.T) {
	js, err := UserJS(map[string]any{"b.str": `say "hi" \ bye`, "a.int": 5, "c.bool": true})
	if err != nil {
		t.Fatal(err)
	}
	want := `user_pref("a.int", 5);
user_pref("b.str", "say \"hi\" \\ bye");
user_pref("c.bool", true);
`
	if string(js) != want {
		t.Fatalf("got\n%s\nwant\n%s", js, want)
	}
	for _, bad := range []map[string]any{
		{"x": "line\nbreak"},
		{`x"y`: 1},
		{"x": 1.5},
	} {
		if _, err := UserJS(bad); err == nil {
			t.Errorf("UserJS(%v) accepted", bad)
		}
	}
}

func TestAccountPrefs(t *testing.T) {
	if p := AccountPrefs("http://127.0.0.1:8000"); p["identity.fxaccounts.autoconfig.uri"] != "http://127.0.0.1:8000" || p["identity.fxaccounts.allowHttp"] != true {
		t.Fatalf("plain HTTP: %v", p)
	}
	if p := AccountPrefs("https://sync.example.com"); len(p) != 1 {
		t.Fatalf("HTTPS needs only autoconfig: %v", p)
	}
	// Every quiet pref renders.
	if js, err := UserJS(QuietPrefs()); err != nil || !strings.Contains(string(js), `"remote.prefs.recommended", false`) {
		t.Fatalf("QuietPrefs: %v", err)
	}
}
