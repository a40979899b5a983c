package accounts_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave/internal/dbtest"
)

// The page tests drive headless Chromium over the DevTools protocol on
// --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-terminated JSON), so no
// WebSocket client or browser driver is needed.

const chromium = "/usr/bin/chromium"

type cdpMsg struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// chrome is the one Chromium process the package's page tests share
// (starting it costs seconds); each test gets its own tab in its own
// browser context, so cookies and storage never leak between tests.
type chrome struct {
	cmd     *exec.Cmd
	out     *os.File
	stderr  bytes.Buffer
	mu      sync.Mutex
	next    int
	waiting map[int]chan cdpMsg
	logs    map[string][]string // console output per page session
	exited  chan struct{}
}

var (
	chromeOnce   sync.Once
	sharedChrome *chrome
	chromeErr    error
)

func startChrome() (*chrome, error) {
	inR, inW, err := os.Pipe() // we write commands, Chromium reads fd 3
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe() // Chromium writes fd 4, we read
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "weave-chromium-")
	if err != nil {
		return nil, err
	}
	c := &chrome{out: inW, waiting: map[int]chan cdpMsg{}, logs: map[string][]string{}, exited: make(chan struct{})}
	c.cmd = exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions", "--mute-audio",
		"--user-data-dir="+dir, "--remote-debugging-pipe", "about:blank")
	c.cmd.ExtraFiles = []*os.File{inR, outW}
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	inR.Close()
	outW.Close()
	go c.readLoop(outR)
	go func() {
		c.cmd.Wait()
		os.RemoveAll(dir)
		close(c.exited)
	}()
	return c, nil
}

// stopChrome ends the shared browser (TestMain, after all tests).
func stopChrome() {
	if sharedChrome == nil {
		return
	}
	c := sharedChrome
	c.call("Browser.close", nil, "")
	c.out.Close()
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopChrome()
	os.Exit(code)
}

// browser is one test's tab.
type browser struct {
	t       *testing.T
	c       *chrome
	session string
}

// newBrowser opens a fresh tab (in a fresh browser context) of the
// shared Chromium, starting it on first use.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		msg := "browser test skipped: " + chromium + " not found (apt-get install -y chromium)"
		if dbtest.Required() {
			t.Fatal(msg + "; WEAVE_REQUIRE_BACKENDS=1 makes this a failure")
		}
		t.Skip(msg)
	}
	chromeOnce.Do(func() { sharedChrome, chromeErr = startChrome() })
	if chromeErr != nil {
		t.Fatal(chromeErr)
	}
	b := &browser{t: t, c: sharedChrome}
	var bc struct {
		BrowserContextID string `json:"browserContextId"`
	}
	b.mustCall("Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, false, &bc)
	var tg struct {
		TargetID string `json:"targetId"`
	}
	b.mustCall("Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID}, false, &tg)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.mustCall("Target.attachToTarget", map[string]any{"targetId": tg.TargetID, "flatten": true}, false, &att)
	b.session = att.SessionID
	t.Cleanup(func() {
		b.c.call("Target.closeTarget", map[string]any{"targetId": tg.TargetID}, "")
		b.c.call("Target.disposeBrowserContext", map[string]any{"browserContextId": bc.BrowserContextID}, "")
		if t.Failed() {
			b.c.mu.Lock()
			t.Logf("page console:\n%s", strings.Join(b.c.logs[b.session], "\n"))
			t.Logf("chromium stderr (tail): %s", tailString(b.c.stderr.String(), 1500))
			b.c.mu.Unlock()
		}
	})
	b.mustCall("Runtime.enable", nil, true, nil)
	b.mustCall("Page.enable", nil, true, nil)
	return b
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (c *chrome) readLoop(r *os.File) {
	br := bufio.NewReader(r)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			c.mu.Lock()
			for id, ch := range c.waiting {
				close(ch)
				delete(c.waiting, id)
			}
			c.mu.Unlock()
			return
		}
		var m cdpMsg
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		c.mu.Lock()
		if m.ID != 0 {
			if ch, ok := c.waiting[m.ID]; ok {
				ch <- m
				delete(c.waiting, m.ID)
			}
		} else if m.Method == "Runtime.consoleAPICalled" || m.Method == "Runtime.exceptionThrown" {
			c.logs[m.SessionID] = append(c.logs[m.SessionID], m.Method+": "+tailString(string(m.Params), 600))
		}
		c.mu.Unlock()
	}
}

// call sends one DevTools command (to the page of session, if not empty)
// and waits for its answer.
func (c *chrome) call(method string, params any, session string) (json.RawMessage, error) {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpMsg, 1)
	c.waiting[id] = ch
	m := map[string]any{"id": id, "method": method}
	if params != nil {
		m["params"] = params
	}
	if session != "" {
		m["sessionId"] = session
	}
	raw, _ := json.Marshal(m)
	_, err := c.out.Write(append(raw, 0))
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: browser went away", method)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		return r.Result, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: no answer in 30s", method)
	}
}

func (b *browser) call(method string, params any, onPage bool) (json.RawMessage, error) {
	session := ""
	if onPage {
		session = b.session
	}
	return b.c.call(method, params, session)
}

func (b *browser) mustCall(method string, params any, onPage bool, out any) {
	b.t.Helper()
	res, err := b.call(method, params, onPage)
	if err != nil {
		b.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	if err := b.tryEval(expr, out); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) tryEval(expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	res, err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, true)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("javascript: %s %s", r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// onNewDocument runs src in every page before its own scripts.
func (b *browser) onNewDocument(src string) {
	b.mustCall("Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": src}, true, nil)
}

// open navigates and waits until the page's script has set a step.
func (b *browser) open(url string) {
	b.t.Helper()
	b.mustCall("Page.navigate", map[string]any{"url": url}, true, nil)
	b.waitStep("email", "error", "info")
}

// step is the page's current body[data-step].
func (b *browser) step() string {
	var s string
	if err := b.tryEval(`document.body ? document.body.dataset.step || "" : ""`, &s); err != nil {
		return ""
	}
	return s
}

// waitStep waits until the page shows one of steps and returns it.
func (b *browser) waitStep(steps ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := b.step()
		for _, want := range steps {
			if s == want {
				return s
			}
		}
		if time.Now().After(deadline) {
			var errText, status string
			b.tryEval(`document.getElementById("error").textContent`, &errText)
			b.tryEval(`document.getElementById("status").textContent + " | " + document.getElementById("info").textContent`, &status)
			b.t.Fatalf("page step %q, want one of %v (error %q, status %q)", s, steps, errText, status)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// fill sets form fields by id and presses #submit, as a user would.
func (b *browser) fill(fields map[string]string) {
	b.t.Helper()
	raw, _ := json.Marshal(fields)
	b.eval(`(() => {
		const f = `+string(raw)+`;
		for (const [id, v] of Object.entries(f)) {
			const el = document.getElementById(id);
			el.value = v;
			el.dispatchEvent(new Event("input", {bubbles: true}));
		}
		document.getElementById("submit").click();
	})()`, nil)
}

func (b *browser) text(id string) string {
	b.t.Helper()
	var s string
	b.eval(`document.getElementById(`+jsString(id)+`).textContent`, &s)
	return s
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fakeFirefox plays the browser side of the account_updates WebChannel
// the way FxAccountsWebChannel.sys.mjs answers, and records every message
// the page sends in window.__webchannel (with the detail's JS type:
// Firefox desktop only accepts strings).
const fakeFirefox = `
window.__webchannel = [];
window.addEventListener("WebChannelMessageToChrome", e => {
	let d;
	try { d = typeof e.detail === "string" ? JSON.parse(e.detail) : e.detail; } catch (err) { d = {}; }
	window.__webchannel.push({detailType: typeof e.detail, id: d.id, message: d.message});
	if (!d || d.id !== "account_updates" || !d.message) return;
	const m = d.message;
	let data;
	switch (m.command) {
	case "fxaccounts:fxa_status":
		data = {signedInUser: null, clientId: "5882386c6d801776",
			capabilities: {multiService: true, pairing: false, choose_what_to_sync: true, keys_optional: true,
				can_link_account_uid: true, engines: ["addons", "bookmarks", "history", "passwords", "prefs", "tabs"]}};
		break;
	case "fxaccounts:can_link_account":
		data = {ok: window.__canLink !== false};
		break;
	case "fxaccounts:login":
	case "fxaccounts:oauth_login":
		data = {ok: true};
		break;
	default:
		return;
	}
	setTimeout(() => window.dispatchEvent(new CustomEvent("WebChannelMessageToContent",
		{detail: {id: d.id, message: {command: m.command, messageId: m.messageId, data}}})), 0);
});
`

type webChannelMsg struct {
	DetailType string `json:"detailType"`
	ID         string `json:"id"`
	Message    struct {
		Command   string         `json:"command"`
		MessageID string         `json:"messageId"`
		Data      map[string]any `json:"data"`
	} `json:"message"`
}

func (b *browser) webChannel() []webChannelMsg {
	b.t.Helper()
	var out []webChannelMsg
	b.eval(`window.__webchannel || []`, &out)
	return out
}
