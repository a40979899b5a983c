package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Device commands (FxA's pushbox): a device invokes a command on another
// (Send Tab: https://identity.mozilla.com/cmd/open-uri, close tabs:
// …/cmd/close-uri/v1), the server queues it for the target and pushes
// fxaccounts:command_received; the target reads its queue. Payloads are
// end-to-end encrypted by Firefox to keys the target advertises in its
// availableCommands; the server only stores them.

const (
	// cmdOpenURI is Send Tab, the one command FxA gives a default ttl.
	cmdOpenURI = "https://identity.mozilla.com/cmd/open-uri"
	// defaultOpenURITTL is FxA's default ttl for Send Tab (30 days), and
	// maxCommandTTL pushbox's cap on a queued command (28 days).
	defaultOpenURITTL = 30 * 24 * time.Hour
	maxCommandTTL     = 28 * 24 * time.Hour
	// maxInvokeTTL is the largest ttl FxA validates (seconds).
	maxInvokeTTL = 10_000_000
	// maxPendingCommands caps one device's queue: a hostile sender cannot
	// grow it without bound.
	maxPendingCommands = 1000
	// maxCommandsBody is the body limit of invoke_command: Firefox's close
	// tabs sends 16 KiB of URLs per command, encrypted and base64url'd.
	maxCommandsBody = 64 << 10
	// pushWait is how long invoke_command waits for the push service.
	pushWait = 5 * time.Second
)

// bodyLimits are routes whose bodies may exceed Config.MaxBodyBytes.
var bodyLimits = map[string]int64{"/v1/account/devices/invoke_command": maxCommandsBody}

// errUnavailableCommand: the target does not advertise the command.
var errUnavailableCommand = newErr(400, ErrnoUnavailableDeviceCommand, "Unavailable device command.")

// isHexID reports whether s is a 32-digit lower-case hex id (FxA accepts
// either case for ids; weave issues and compares lower case).
func isHexID(s string) bool { return len(s) == 32 && isLowerHex(strings.ToLower(s)) }

// strictDecode decodes a JSON object body into v and refuses members v
// does not name, as FxA's validators do (400 errno 107).
func strictDecode(r *request, v any) error {
	if err := decode(r, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		name := "payload"
		if _, field, ok := strings.Cut(err.Error(), "unknown field "); ok {
			name = strings.Trim(field, `"`)
		}
		return errInvalid(name)
	}
	return nil
}

// callerDevice is the device registered on the request's session, if any.
func (s *Service) callerDevice(r *request) (deviceData, bool, error) {
	devs, err := s.deviceList(r.r.Context(), r.account.UID)
	if err != nil {
		return deviceData{}, false, err
	}
	for _, d := range devs {
		if d.SessionTokenID == r.token.ID {
			return d, true, nil
		}
	}
	return deviceData{}, false, nil
}

// commandData is what a queued command holds, as FxA stores it.
type commandData struct {
	Command string          `json:"command"`
	Payload json.RawMessage `json:"payload"`
	Sender  string          `json:"sender,omitempty"`
}

// invokeCommand is POST /v1/account/devices/invoke_command {target,
// command, payload, ttl?}: it queues the command for the target device and
// pushes command_received to it, answering {enqueued, notified,
// notifyError?}.
func (s *Service) invokeCommand(r *request) (any, error) {
	var b struct {
		Target  *string         `json:"target"`
		Command *string         `json:"command"`
		Payload json.RawMessage `json:"payload"`
		TTL     *float64        `json:"ttl"`
	}
	if err := strictDecode(r, &b); err != nil {
		return nil, err
	}
	switch {
	case b.Target == nil:
		return nil, errMissing("target")
	case b.Command == nil:
		return nil, errMissing("command")
	case b.Payload == nil:
		return nil, errMissing("payload")
	case !isHexID(*b.Target):
		return nil, errInvalid("target")
	case *b.Command == "" || len(*b.Command) > 255:
		return nil, errInvalid("command")
	case b.Payload[0] != '{':
		return nil, errInvalid("payload")
	case b.TTL != nil && (*b.TTL < 0 || *b.TTL > maxInvokeTTL || *b.TTL != float64(int64(*b.TTL))):
		return nil, errInvalid("ttl")
	}
	if err := s.limits.commands(r.account.UID); err != nil {
		return nil, err
	}
	ctx := r.r.Context()
	t, err := s.store.Token(ctx, strings.ToLower(*b.Target))
	if errors.Is(err, ErrNotFound) || (err == nil && (t.Kind != KindDevice || t.UID != r.account.UID)) {
		return nil, errUnknownDevice
	} else if err != nil {
		return nil, err
	}
	target := parseDevice(t)
	if _, ok := target.AvailableCommands[*b.Command]; !ok {
		return nil, errUnavailableCommand
	}
	// The command's ttl (FxA: 30 days for Send Tab, else none) also is
	// the push's; the queue keeps it at most maxCommandTTL.
	var ttl time.Duration
	haveTTL := b.TTL != nil
	if haveTTL {
		ttl = time.Duration(*b.TTL) * time.Second
	} else if *b.Command == cmdOpenURI {
		ttl, haveTTL = defaultOpenURITTL, true
	}
	keep := maxCommandTTL
	if haveTTL {
		keep = min(ttl, maxCommandTTL)
	}
	sender, _, err := s.callerDevice(r)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(commandData{Command: *b.Command, Payload: b.Payload, Sender: sender.ID})
	now := s.nowMS()
	idx, err := s.store.PutCommand(ctx, Command{UID: r.account.UID, DeviceID: target.ID, Data: data,
		CreatedAt: now, ExpiresAt: now + keep.Milliseconds()}, maxPendingCommands)
	if errors.Is(err, ErrQueueFull) {
		return nil, errThrottled(60)
	} else if err != nil {
		return nil, err
	}
	pushTTL := ttlCommandReceived
	if haveTTL {
		pushTTL = ttl
	}
	q := url.Values{"index": {strconv.FormatInt(idx, 10)}, "limit": {"1"}}
	notice := newNotice(pushCommandReceived, map[string]any{"command": *b.Command, "index": idx,
		"sender": sender.ID, "url": s.base + "/v1/account/device/commands?" + q.Encode()})
	pctx, cancel := context.WithTimeout(ctx, pushWait)
	defer cancel()
	out := map[string]any{"enqueued": true, "notified": true}
	if err := s.push.send(pctx, r.account.UID, target, notice, pushTTL); err != nil {
		out["notified"], out["notifyError"] = false, pushErrCode(err)
	}
	return out, nil
}

// deviceCommands is GET /v1/account/device/commands?index=&limit=: the
// calling device's unexpired commands from index (inclusive; 0 or none:
// from the start), at most limit (default and maximum 100). Reading
// deletes nothing: Firefox remembers the last index it handled.
func (s *Service) deviceCommands(r *request) (any, error) {
	q := r.r.URL.Query()
	num := func(name string, def, maxV int64) (int64, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > maxV {
			return 0, errInvalid(name)
		}
		return n, nil
	}
	from, err := num("index", 0, 1<<53)
	if err != nil {
		return nil, err
	}
	limit, err := num("limit", 100, 100)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"index": 0, "last": true, "messages": []any{}}
	dev, ok, err := s.callerDevice(r)
	if err != nil || !ok {
		return out, err // no device, no queue
	}
	cmds, last, err := s.store.Commands(r.r.Context(), r.account.UID, dev.ID, from, int(limit), s.nowMS())
	if err != nil {
		return nil, err
	}
	msgs := []any{}
	for _, c := range cmds {
		var d commandData
		if json.Unmarshal(c.Data, &d) != nil {
			continue
		}
		m := map[string]any{"command": d.Command, "payload": d.Payload}
		if d.Sender != "" {
			m["sender"] = d.Sender
		}
		msgs = append(msgs, map[string]any{"index": c.Index, "data": m})
		out["index"] = c.Index
	}
	out["last"], out["messages"] = last, msgs
	return out, nil
}

// devicesNotify is POST /v1/account/devices/notify {to: "all" | [ids],
// excluded?, payload, TTL?}: Firefox asks the server to push a payload —
// in practice sync:collection_changed ["clients"] after a first sync or
// after writing commands into other clients' records — to some devices.
// The payload must be one FxA's schema allows (400 errno 107 otherwise);
// push failures are not the caller's: the answer is {} regardless.
func (s *Service) devicesNotify(r *request) (any, error) {
	var b struct {
		To             json.RawMessage `json:"to"`
		Excluded       []string        `json:"excluded"`
		Payload        json.RawMessage `json:"payload"`
		TTL            *float64        `json:"TTL"`
		EndpointAction *string         `json:"_endpointAction"`
	}
	if err := strictDecode(r, &b); err != nil {
		return nil, err
	}
	if b.To == nil {
		return nil, errMissing("to")
	}
	if b.Payload == nil {
		return nil, errMissing("payload")
	}
	var toAll string
	var to []string
	if json.Unmarshal(b.To, &toAll) == nil {
		if toAll != "all" {
			return nil, errInvalid("to")
		}
	} else if json.Unmarshal(b.To, &to) != nil || len(to) > 500 {
		return nil, errInvalid("to")
	} else if b.Excluded != nil {
		return nil, errInvalid("excluded") // only with "all"
	}
	for _, id := range append(append([]string(nil), to...), b.Excluded...) {
		if !isHexID(id) {
			return nil, errInvalid("to")
		}
	}
	if b.TTL != nil && (*b.TTL < 0 || *b.TTL != float64(int64(*b.TTL))) {
		return nil, errInvalid("TTL")
	}
	payload := []byte(b.Payload)
	if b.EndpointAction != nil {
		// FxA's account-verified push: no data at all.
		if *b.EndpointAction != "accountVerify" || !bytes.Equal(bytes.TrimSpace(payload), []byte("{}")) {
			return nil, errInvalid("payload")
		}
		payload = nil
	} else if err := checkPushPayload(payload); err != nil {
		return nil, err
	}
	if err := s.limits.commands(r.account.UID); err != nil {
		return nil, err
	}
	devs, err := s.deviceList(r.r.Context(), r.account.UID)
	if err != nil {
		return nil, err
	}
	pick := map[string]bool{}
	for _, id := range to {
		pick[strings.ToLower(id)] = true
	}
	drop := map[string]bool{}
	for _, id := range b.Excluded {
		drop[strings.ToLower(id)] = true
	}
	var targets []deviceData
	for _, d := range devs {
		if (toAll != "" && !drop[d.ID]) || pick[d.ID] {
			targets = append(targets, d)
		}
	}
	var ttl time.Duration
	if b.TTL != nil {
		// Push services cap TTLs at 30 days anyway.
		ttl = min(time.Duration(*b.TTL)*time.Second, 30*24*time.Hour)
	}
	s.push.notify(r.account.UID, targets, payload, ttl)
	return map[string]any{}, nil
}

// pushCollections are the collections sync:collection_changed may name.
var pushCollections = map[string]bool{"addons": true, "bookmarks": true, "history": true, "forms": true,
	"prefs": true, "tabs": true, "passwords": true, "clients": true}

// checkPushPayload validates a devices/notify payload against FxA's
// pushpayloads.schema.json: {version: integer, command, data?} with no
// other members, data exactly as the command defines it.
func checkPushPayload(raw []byte) error {
	bad := errInvalid("payload")
	var p map[string]json.RawMessage
	if json.Unmarshal(raw, &p) != nil {
		return bad
	}
	var version float64
	var command string
	if string(p["version"]) == "null" || json.Unmarshal(p["version"], &version) != nil || version != float64(int64(version)) ||
		json.Unmarshal(p["command"], &command) != nil {
		return bad
	}
	for k := range p {
		if k != "version" && k != "command" && k != "data" {
			return bad
		}
	}
	data, hasData := p["data"]
	var fields map[string]json.RawMessage
	if hasData && json.Unmarshal(data, &fields) != nil {
		return bad
	}
	str := func(name string) bool {
		var v string
		return json.Unmarshal(fields[name], &v) == nil && fields[name] != nil
	}
	only := func(names ...string) bool {
		for k := range fields {
			ok := false
			for _, n := range names {
				ok = ok || k == n
			}
			if !ok {
				return false
			}
		}
		return true
	}
	switch command {
	case pushDeviceConnected:
		if !hasData || !str("deviceName") || !only("deviceName") {
			return bad
		}
	case pushDeviceDisconnected:
		if !hasData || !str("id") || !only("id") {
			return bad
		}
	case pushProfileUpdated, pushPasswordChanged, pushPasswordReset:
		if hasData {
			return bad
		}
	case pushCollectionChanged:
		var cols []string
		if !hasData || !only("collections", "reason") || json.Unmarshal(fields["collections"], &cols) != nil || len(cols) == 0 {
			return bad
		}
		seen := map[string]bool{}
		for _, c := range cols {
			if !pushCollections[c] || seen[c] {
				return bad
			}
			seen[c] = true
		}
		if reason, ok := fields["reason"]; ok {
			var v string
			if json.Unmarshal(reason, &v) != nil || (v != "sendtab" && v != "firstsync") {
				return bad
			}
		}
	default:
		return bad
	}
	return nil
}
