package fleet_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/weave-sync/weave/fleet"
)

func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })
}

func TestRouter(t *testing.T) {
	rt := &fleet.Router{Fallback: named("main")}
	for url, name := range map[string]string{
		"https://sync1.example.com":        "sync1",
		"https://sync2.example.com:443":    "sync2",
		"http://127.0.0.1:8000/n2":         "n2",
		"http://127.0.0.1:8000/n2/deeper/": "deeper",
	} {
		if err := rt.Add(url, named(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Add("/relative", named("x")); err == nil {
		t.Error("relative node URL accepted")
	}
	for _, c := range []struct{ host, path, want string }{
		{"sync1.example.com", "/1.5/1/info/collections", "sync1"},
		{"SYNC2.example.com", "/1.5/1/info/collections", "sync2"},
		{"sync2.example.com:443", "/1.5/1", "sync2"},
		{"127.0.0.1:8000", "/n2/1.5/7/storage/tabs", "n2"},
		{"127.0.0.1:8000", "/n2/deeper/1.5/7", "deeper"},
		{"127.0.0.1:8000", "/n22/1.5/7", "main"},
		{"127.0.0.1:8000", "/1.0/sync/1.5", "main"},
		// Behind a proxy that rewrites Host, a path prefix still routes.
		{"internal:9000", "/n2/1.5/7", "n2"},
		{"other.example.com", "/1.5/1", "main"},
	} {
		r := httptest.NewRequest("GET", "http://"+c.host+c.path, nil)
		r.Host = c.host
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		if got := w.Body.String(); got != c.want {
			t.Errorf("%s%s → %s, want %s", c.host, c.path, got, c.want)
		}
	}
}
