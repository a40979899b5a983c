// Package chromium drives headless Chromium for tests over the DevTools
// protocol on --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-terminated
// JSON), so no WebSocket client or browser driver is needed; it is to
// Chromium what internal/marionette is to Firefox. Only tests import it.
package chromium

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Path is where the tests expect Chromium (apt-get install -y chromium).
const Path = "/usr/bin/chromium"

// Require skips the test when Chromium is missing, or fails it with
// WEAVE_REQUIRE_BACKENDS set.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		msg := "browser test skipped: " + Path + " not found (apt-get install -y chromium)"
		if v, _ := strconv.ParseBool(os.Getenv("WEAVE_REQUIRE_BACKENDS")); v {
			t.Fatal(msg + "; WEAVE_REQUIRE_BACKENDS=1 makes this a failure")
		}
		t.Skip(msg)
	}
}

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

// chrome is the one Chromium process a test binary shares (starting it
// costs seconds); each test gets its own tab in its own browser context,
// so cookies and storage never leak between tests.
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
	c.cmd = exec.Command(Path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
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

// Stop ends the shared browser, if it was started: call it from TestMain
// after the tests have run.
func Stop() {
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

// Tab is one test's page.
type Tab struct {
	t       testing.TB
	c       *chrome
	session string
}

// NewTab opens a fresh tab (in a fresh browser context) of the shared
// Chromium, starting it on first use; it is closed when the test ends.
func NewTab(t testing.TB) *Tab {
	t.Helper()
	Require(t)
	chromeOnce.Do(func() { sharedChrome, chromeErr = startChrome() })
	if chromeErr != nil {
		t.Fatal(chromeErr)
	}
	b := &Tab{t: t, c: sharedChrome}
	var bc struct {
		BrowserContextID string `json:"browserContextId"`
	}
	b.MustCall("Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, false, &bc)
	var tg struct {
		TargetID string `json:"targetId"`
	}
	b.MustCall("Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID}, false, &tg)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.MustCall("Target.attachToTarget", map[string]any{"targetId": tg.TargetID, "flatten": true}, false, &att)
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
	b.MustCall("Runtime.enable", nil, true, nil)
	b.MustCall("Page.enable", nil, true, nil)
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

// Call sends one DevTools command, to the tab's page if onPage (else to
// the browser), and returns its result.
func (b *Tab) Call(method string, params any, onPage bool) (json.RawMessage, error) {
	session := ""
	if onPage {
		session = b.session
	}
	return b.c.call(method, params, session)
}

// MustCall is Call, failing the test on an error and decoding the result
// into out (if not nil).
func (b *Tab) MustCall(method string, params any, onPage bool, out any) {
	b.t.Helper()
	res, err := b.Call(method, params, onPage)
	if err != nil {
		b.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
	}
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into out.
func (b *Tab) Eval(expr string, out any) {
	b.t.Helper()
	if err := b.TryEval(expr, out); err != nil {
		b.t.Fatal(err)
	}
}

// TryEval is Eval returning the error.
func (b *Tab) TryEval(expr string, out any) error {
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
	res, err := b.Call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, true)
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

// OnNewDocument runs src in every page before its own scripts.
func (b *Tab) OnNewDocument(src string) {
	b.MustCall("Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": src}, true, nil)
}
