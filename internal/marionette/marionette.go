// Package marionette is a small client of Firefox's Marionette protocol,
// the automation protocol Firefox speaks natively (`firefox --marionette`),
// so tests can drive a real, unmodified Firefox without geckodriver.
//
// The wire format is Marionette protocol 3: after a handshake packet from
// the server, every message is `LEN:JSON`, LEN being the byte length of
// the UTF-8 JSON. Commands are [0, id, "WebDriver:Name", params] and
// responses [1, id, error, result], one at a time.
package marionette

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// maxPacket bounds a response; a full-page screenshot is the largest thing
// Firefox sends and stays far below this.
const maxPacket = 64 << 20

// Error is an error response of the remote end, with the WebDriver error
// code ("no such element", "javascript error", "timeout", …).
type Error struct {
	Command    string
	Code       string `json:"error"`
	Message    string `json:"message"`
	Stacktrace string `json:"stacktrace"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("marionette %s: %s: %s", e.Command, e.Code, e.Message)
}

// IsNoSuchElement reports whether err says an element was not found.
func IsNoSuchElement(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "no such element"
}

// Client is one connection to Firefox's Marionette server. Calls are
// serialized (the protocol answers one command at a time); Client is safe
// for concurrent use.
type Client struct {
	// Application and Protocol come from the server's handshake.
	Application string
	Protocol    int
	// SessionID is set by NewSession.
	SessionID string

	mu     sync.Mutex
	conn   net.Conn
	r      *bufio.Reader
	nextID int64
	broken error // set when the stream can no longer be trusted

	dlMu   sync.Mutex
	active int64 // id of the call in progress, 0 for none (guarded by dlMu)
}

// Dial connects to a Marionette server at addr (host:port) and reads its
// handshake.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, r: bufio.NewReader(conn)}
	c.setDeadline(ctx)
	raw, err := c.readPacket()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("marionette handshake: %w", err)
	}
	var hs struct {
		ApplicationType    string `json:"applicationType"`
		MarionetteProtocol int    `json:"marionetteProtocol"`
	}
	if err := json.Unmarshal(raw, &hs); err != nil {
		conn.Close()
		return nil, fmt.Errorf("marionette handshake %q: %w", raw, err)
	}
	if hs.MarionetteProtocol < 3 {
		conn.Close()
		return nil, fmt.Errorf("marionette protocol %d: want 3 or newer", hs.MarionetteProtocol)
	}
	c.Application, c.Protocol = hs.ApplicationType, hs.MarionetteProtocol
	return c, nil
}

// Close closes the connection (Firefox keeps running; see Quit).
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) setDeadline(ctx context.Context) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultTimeout)
	}
	c.conn.SetDeadline(dl)
}

func (c *Client) readPacket() ([]byte, error) {
	head, err := c.r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 0 || n > maxPacket {
		return nil, fmt.Errorf("bad packet length %q", head)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Call sends one command and decodes the result into out (if non-nil).
// The context bounds the whole exchange (DefaultTimeout without a
// deadline); when it expires the connection is closed, since a late answer
// would otherwise be read as the next command's.
func (c *Client) Call(ctx context.Context, name string, params, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("marionette %s: connection unusable after an earlier failure: %w", name, c.broken)
	}
	if params == nil {
		params = map[string]any{}
	}
	c.nextID++
	id := c.nextID
	msg, err := json.Marshal([]any{0, id, name, params})
	if err != nil {
		return fmt.Errorf("marionette %s: %w", name, err)
	}
	c.setDeadline(ctx)
	// Cancellation of a context without a deadline also ends the wait.
	// The id of the call in progress, under its own lock, keeps a late
	// cancellation from cutting short a later call.
	c.dlMu.Lock()
	c.active = id
	c.dlMu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		c.dlMu.Lock()
		defer c.dlMu.Unlock()
		if c.active == id {
			c.conn.SetDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		stop()
		c.dlMu.Lock()
		c.active = 0
		c.dlMu.Unlock()
	}()
	fail := func(err error) error {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		case errors.Is(err, os.ErrDeadlineExceeded): // the socket's deadline is the context's
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		c.broken = err
		c.conn.Close()
		return fmt.Errorf("marionette %s: %w", name, err)
	}
	if _, err := c.conn.Write(append([]byte(strconv.Itoa(len(msg))+":"), msg...)); err != nil {
		return fail(err)
	}
	for {
		raw, err := c.readPacket()
		if err != nil {
			return fail(err)
		}
		var resp []json.RawMessage
		if err := json.Unmarshal(raw, &resp); err != nil || len(resp) != 4 {
			return fail(fmt.Errorf("malformed response %.200q", raw))
		}
		var typ, rid int64
		if json.Unmarshal(resp[0], &typ) != nil || json.Unmarshal(resp[1], &rid) != nil || typ != 1 {
			return fail(fmt.Errorf("malformed response %.200q", raw))
		}
		if rid != id {
			continue // not an answer to this command (a confused server): skip it
		}
		if string(resp[2]) != "null" {
			e := &Error{Command: name}
			if err := json.Unmarshal(resp[2], e); err != nil {
				return fail(fmt.Errorf("malformed error %.200q", resp[2]))
			}
			return e
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(resp[3], out); err != nil {
			return fmt.Errorf("marionette %s: decoding %.200q: %w", name, resp[3], err)
		}
		return nil
	}
}

// callValue calls a command whose result is {"value": …}.
func (c *Client) callValue(ctx context.Context, name string, params, out any) error {
	var r struct {
		Value json.RawMessage `json:"value"`
	}
	if err := c.Call(ctx, name, params, &r); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Value, out); err != nil {
		return fmt.Errorf("marionette %s: decoding %.200q: %w", name, r.Value, err)
	}
	return nil
}

// NewSession starts the WebDriver session; capabilities go under
// alwaysMatch (nil for none).
func (c *Client) NewSession(ctx context.Context, capabilities map[string]any) error {
	if capabilities == nil {
		capabilities = map[string]any{}
	}
	var r struct {
		SessionID    string         `json:"sessionId"`
		Capabilities map[string]any `json:"capabilities"`
	}
	if err := c.Call(ctx, "WebDriver:NewSession", map[string]any{
		"capabilities": map[string]any{"alwaysMatch": capabilities}}, &r); err != nil {
		return err
	}
	c.SessionID = r.SessionID
	return nil
}

// DeleteSession ends the session.
func (c *Client) DeleteSession(ctx context.Context) error {
	return c.Call(ctx, "WebDriver:DeleteSession", nil, nil)
}

// Quit asks Firefox to quit and waits for its answer (the process then
// exits on its own).
func (c *Client) Quit(ctx context.Context) error {
	return c.Call(ctx, "Marionette:Quit", map[string]any{"flags": []string{"eForceQuit"}}, nil)
}

// Timeouts are the session's timeouts in milliseconds; zero fields are
// left unchanged.
type Timeouts struct {
	Script   int64 `json:"script,omitempty"`
	PageLoad int64 `json:"pageLoad,omitempty"`
	Implicit int64 `json:"implicit,omitempty"`
}

// SetTimeouts sets the session's script, page-load and implicit-wait
// timeouts.
func (c *Client) SetTimeouts(ctx context.Context, t Timeouts) error {
	return c.Call(ctx, "WebDriver:SetTimeouts", t, nil)
}

// Context is where commands run: web content, or Firefox's own chrome
// (privileged JavaScript with Services, PlacesUtils, …).
type Context string

const (
	Content Context = "content"
	Chrome  Context = "chrome"
)

// SetContext switches between content and chrome.
func (c *Client) SetContext(ctx context.Context, which Context) error {
	return c.Call(ctx, "Marionette:SetContext", map[string]any{"value": string(which)}, nil)
}

// Navigate loads url in the current tab and waits for the page load
// (bounded by the session's pageLoad timeout).
func (c *Client) Navigate(ctx context.Context, url string) error {
	return c.Call(ctx, "WebDriver:Navigate", map[string]any{"url": url}, nil)
}

// CurrentURL is the current tab's URL.
func (c *Client) CurrentURL(ctx context.Context) (string, error) {
	var u string
	err := c.callValue(ctx, "WebDriver:GetCurrentURL", nil, &u)
	return u, err
}

// Title is the current document's title.
func (c *Client) Title(ctx context.Context) (string, error) {
	var s string
	err := c.callValue(ctx, "WebDriver:GetTitle", nil, &s)
	return s, err
}

// PageSource is the current document's serialized DOM.
func (c *Client) PageSource(ctx context.Context) (string, error) {
	var s string
	err := c.callValue(ctx, "WebDriver:GetPageSource", nil, &s)
	return s, err
}

// elementKey is the W3C WebDriver web element identifier.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// Element is a reference to a DOM element. Its JSON form is the WebDriver
// reference, so an Element can be passed as a script argument.
type Element struct{ ID string }

// MarshalJSON encodes the WebDriver reference.
func (e Element) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{elementKey: e.ID})
}

// UnmarshalJSON decodes a WebDriver reference.
func (e *Element) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	id, ok := m[elementKey]
	if !ok {
		return fmt.Errorf("not a web element reference: %s", b)
	}
	e.ID = id
	return nil
}

// Locator strategies for FindElement.
const (
	CSS   = "css selector"
	XPath = "xpath"
	ID    = "id"
)

// FindElement finds the first element matching value (waiting up to the
// session's implicit timeout).
func (c *Client) FindElement(ctx context.Context, using, value string) (Element, error) {
	var e Element
	err := c.callValue(ctx, "WebDriver:FindElement", map[string]any{"using": using, "value": value}, &e)
	return e, err
}

// FindElements finds every element matching value.
func (c *Client) FindElements(ctx context.Context, using, value string) ([]Element, error) {
	var es []Element
	err := c.Call(ctx, "WebDriver:FindElements", map[string]any{"using": using, "value": value}, &es)
	return es, err
}

// ElementClick clicks the element as a user would (scrolls it into view,
// fails if something covers it).
func (c *Client) ElementClick(ctx context.Context, e Element) error {
	return c.Call(ctx, "WebDriver:ElementClick", map[string]any{"id": e.ID}, nil)
}

// ElementSendKeys types text into the element, key by key.
func (c *Client) ElementSendKeys(ctx context.Context, e Element, text string) error {
	return c.Call(ctx, "WebDriver:ElementSendKeys", map[string]any{"id": e.ID, "text": text}, nil)
}

// ElementClear empties an input.
func (c *Client) ElementClear(ctx context.Context, e Element) error {
	return c.Call(ctx, "WebDriver:ElementClear", map[string]any{"id": e.ID}, nil)
}

// ElementText is the element's rendered text.
func (c *Client) ElementText(ctx context.Context, e Element) (string, error) {
	var s string
	err := c.callValue(ctx, "WebDriver:GetElementText", map[string]any{"id": e.ID}, &s)
	return s, err
}

// ElementProperty reads a DOM property (value, checked, …) into out.
func (c *Client) ElementProperty(ctx context.Context, e Element, name string, out any) error {
	return c.callValue(ctx, "WebDriver:GetElementProperty", map[string]any{"id": e.ID, "name": name}, out)
}

// ExecuteScript runs script as a function body with args as `arguments`
// and decodes its return value into out (if non-nil). In the chrome
// context it runs with system privileges.
func (c *Client) ExecuteScript(ctx context.Context, script string, args []any, out any) error {
	if args == nil {
		args = []any{}
	}
	return c.callValue(ctx, "WebDriver:ExecuteScript", map[string]any{"script": script, "args": args}, out)
}

// ExecuteAsyncScript runs script with a callback as its last argument
// (`arguments[arguments.length-1]`) and decodes the value the script
// passes to it. The session's script timeout bounds the wait.
func (c *Client) ExecuteAsyncScript(ctx context.Context, script string, args []any, out any) error {
	if args == nil {
		args = []any{}
	}
	return c.callValue(ctx, "WebDriver:ExecuteAsyncScript", map[string]any{"script": script, "args": args}, out)
}

// TakeScreenshot returns a PNG of the viewport (content context) or of
// the whole window (chrome context).
func (c *Client) TakeScreenshot(ctx context.Context) ([]byte, error) {
	return c.screenshot(ctx, map[string]any{"full": false})
}

// TakeFullScreenshot returns a PNG of the whole document, beyond the
// viewport.
func (c *Client) TakeFullScreenshot(ctx context.Context) ([]byte, error) {
	return c.screenshot(ctx, map[string]any{"full": true})
}

// TakeElementScreenshot returns a PNG of one element's box.
func (c *Client) TakeElementScreenshot(ctx context.Context, e Element) ([]byte, error) {
	return c.screenshot(ctx, map[string]any{"id": e.ID})
}

func (c *Client) screenshot(ctx context.Context, params map[string]any) ([]byte, error) {
	params["hash"] = false
	var s string
	if err := c.callValue(ctx, "WebDriver:TakeScreenshot", params, &s); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(s)
}

// WindowHandle is the current tab's handle.
func (c *Client) WindowHandle(ctx context.Context) (string, error) {
	var h string
	err := c.callValue(ctx, "WebDriver:GetWindowHandle", nil, &h)
	return h, err
}

// WindowHandles lists the handles of every tab.
func (c *Client) WindowHandles(ctx context.Context) ([]string, error) {
	var hs []string
	err := c.Call(ctx, "WebDriver:GetWindowHandles", nil, &hs)
	return hs, err
}

// SwitchToWindow makes the tab with handle h current.
func (c *Client) SwitchToWindow(ctx context.Context, h string) error {
	return c.Call(ctx, "WebDriver:SwitchToWindow", map[string]any{"handle": h, "focus": true}, nil)
}

// NewWindow opens a new tab and returns its handle (it does not switch
// to it).
func (c *Client) NewWindow(ctx context.Context) (string, error) {
	var r struct {
		Handle string `json:"handle"`
	}
	err := c.Call(ctx, "WebDriver:NewWindow", map[string]any{"type": "tab"}, &r)
	return r.Handle, err
}

// CloseWindow closes the current tab and returns the remaining handles.
func (c *Client) CloseWindow(ctx context.Context) ([]string, error) {
	var hs []string
	err := c.Call(ctx, "WebDriver:CloseWindow", nil, &hs)
	return hs, err
}
