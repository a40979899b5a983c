package firefox_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/firefox"
	"github.com/weave-sync/weave/internal/marionette"
)

const page = `<!doctype html><title>form</title>
<form id=f><input id=name autocomplete=off><button id=go type=button>go</button></form>
<p id=out></p>
<script>
document.getElementById("go").onclick = () => {
  document.getElementById("out").textContent = "hello " + document.getElementById("name").value;
};
</script>`

// TestMarionette drives a real headless Firefox through every call the
// end-to-end tests rely on, against a page on 127.0.0.1.
func TestMarionette(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	defer srv.Close()
	start := time.Now()
	ff := firefox.StartT(t, firefox.Options{Width: 800, Height: 600})
	t.Logf("Firefox %s up in %v", ff.Application, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The fresh profile got our prefs.
	b, err := os.ReadFile(filepath.Join(ff.Profile, "user.js"))
	if err != nil || !bytes.Contains(b, []byte(`user_pref("app.update.disabledForTesting", true);`)) {
		t.Fatalf("user.js: %v %s", err, b)
	}

	// Nothing leaves the machine: non-loopback hosts hit the dead proxy.
	if err := ff.Navigate(ctx, "http://example.com/"); err == nil || !strings.Contains(err.Error(), "proxyConnectFailure") {
		t.Fatalf("navigating off the machine: %v", err)
	}
	if err := ff.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if title, err := ff.Title(ctx); err != nil || title != "form" {
		t.Fatalf("title %q %v", title, err)
	}
	if u, err := ff.CurrentURL(ctx); err != nil || u != srv.URL+"/" {
		t.Fatalf("url %q %v", u, err)
	}
	in, err := ff.FindElement(ctx, marionette.CSS, "#name")
	if err != nil {
		t.Fatal(err)
	}
	if err := ff.ElementSendKeys(ctx, in, "wörld"); err != nil {
		t.Fatal(err)
	}
	btn, err := ff.FindElement(ctx, marionette.ID, "go")
	if err != nil {
		t.Fatal(err)
	}
	if err := ff.ElementClick(ctx, btn); err != nil {
		t.Fatal(err)
	}
	out, _ := ff.FindElement(ctx, marionette.CSS, "#out")
	if s, err := ff.ElementText(ctx, out); err != nil || s != "hello wörld" {
		t.Fatalf("text after click: %q %v", s, err)
	}
	var v string
	if err := ff.ElementProperty(ctx, in, "value", &v); err != nil || v != "wörld" {
		t.Fatalf("value property %q %v", v, err)
	}
	if _, err := ff.FindElement(ctx, marionette.CSS, "#missing"); !marionette.IsNoSuchElement(err) {
		t.Fatalf("missing element: %v", err)
	}

	// Scripts: arguments in, values out, elements both ways, async.
	var sum int
	if err := ff.ExecuteScript(ctx, "return arguments[0] + arguments[1]", []any{2, 3}, &sum); err != nil || sum != 5 {
		t.Fatalf("script: %d %v", sum, err)
	}
	var id string
	if err := ff.ExecuteScript(ctx, "return arguments[0].id", []any{in}, &id); err != nil || id != "name" {
		t.Fatalf("element argument: %q %v", id, err)
	}
	var el marionette.Element
	if err := ff.ExecuteScript(ctx, `return document.getElementById("go")`, nil, &el); err != nil || el.ID != btn.ID {
		t.Fatalf("element result: %+v %v", el, err)
	}
	var async string
	if err := ff.ExecuteAsyncScript(ctx, `let done = arguments[arguments.length-1]; setTimeout(() => done("later " + arguments[0]), 50)`, []any{"x"}, &async); err != nil || async != "later x" {
		t.Fatalf("async script: %q %v", async, err)
	}
	var jsErr *marionette.Error
	if err := ff.ExecuteScript(ctx, `throw new Error("boom")`, nil, nil); err == nil || !asError(err, &jsErr) || jsErr.Code != "javascript error" || !strings.Contains(jsErr.Message, "boom") {
		t.Fatalf("thrown error: %v", err)
	}

	// Screenshot: a PNG of the viewport.
	shot, err := ff.TakeScreenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() != 800 {
		t.Fatalf("viewport screenshot: %v %v", err, img.Bounds())
	}
	shot, err = ff.TakeElementScreenshot(ctx, btn)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(shot)); err != nil || img.Bounds().Dx() >= 800 || img.Bounds().Dx() < 10 {
		t.Fatalf("element screenshot: %v %v", err, img.Bounds())
	}
	// A document taller than the window: the full screenshot has it all.
	if err := ff.ExecuteScript(ctx, `document.body.style.height = "3000px"`, nil, nil); err != nil {
		t.Fatal(err)
	}
	shot, err = ff.TakeFullScreenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(shot)); err != nil || img.Bounds().Dy() < 3000 {
		t.Fatalf("full screenshot: %v %v", err, img.Bounds())
	}

	// Chrome context: privileged JavaScript sees Firefox's internals.
	if err := ff.SetContext(ctx, marionette.Chrome); err != nil {
		t.Fatal(err)
	}
	var ver string
	if err := ff.ExecuteScript(ctx, "return Services.appinfo.version", nil, &ver); err != nil || ver == "" {
		t.Fatalf("chrome script: %q %v", ver, err)
	}
	var pref bool
	if err := ff.ExecuteScript(ctx, `return Services.prefs.getBoolPref("app.update.disabledForTesting")`, nil, &pref); err != nil || !pref {
		t.Fatalf("user.js pref not applied: %v %v", pref, err)
	}
	if err := ff.SetContext(ctx, marionette.Content); err != nil {
		t.Fatal(err)
	}

	// Tabs.
	first, err := ff.WindowHandle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ff.NewWindow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hs, err := ff.WindowHandles(ctx); err != nil || len(hs) != 2 {
		t.Fatalf("handles %v %v", hs, err)
	}
	if err := ff.SwitchToWindow(ctx, second); err != nil {
		t.Fatal(err)
	}
	if u, _ := ff.CurrentURL(ctx); u != "about:blank" {
		t.Fatalf("new tab shows %q", u)
	}
	if hs, err := ff.CloseWindow(ctx); err != nil || len(hs) != 1 || hs[0] != first {
		t.Fatalf("after close: %v %v", hs, err)
	}
	if err := ff.SwitchToWindow(ctx, first); err != nil {
		t.Fatal(err)
	}

	// A call that outlives its context fails in time, and the client
	// refuses further calls rather than misreading a late answer.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	begin := time.Now()
	err = ff.ExecuteAsyncScript(short, `/* never calls back */`, nil, nil)
	if err == nil || time.Since(begin) > 5*time.Second {
		t.Fatalf("hung script: %v after %v", err, time.Since(begin))
	}
	if err := ff.ExecuteScript(ctx, "return 1", nil, nil); err == nil {
		t.Fatal("call on a broken connection succeeded")
	}
	// Close still ends the process (by signal, as Marionette is gone).
	begin = time.Now()
	ff.Close()
	if d := time.Since(begin); d > 15*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

func asError(err error, target **marionette.Error) bool {
	e, ok := err.(*marionette.Error)
	if ok {
		*target = e
	}
	return ok
}
