package push

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

const (
	chid = "87ca7290-4cdd-434e-8f9c-b76514cd3977"
	uaid = "0123456789abcdef0123456789abcdef"
)

// The frames Firefox ESR 153 sent in the observed session of
// push-and-devices.md §1.7, and the other client messages in the form
// Firefox's PushServiceWebSocket writes them.
func TestParseFirefoxFrames(t *testing.T) {
	for frame, want := range map[string]ClientMessage{
		`{"messageType":"hello","broadcasts":{},"use_webpush":true}`:                                                                                       &Hello{UseWebPush: true, Broadcasts: map[string]string{}},
		`{"messageType":"hello","broadcasts":{},"use_webpush":true,"uaid":"` + uaid + `"}`:                                                                 &Hello{UAID: uaid, UseWebPush: true, Broadcasts: map[string]string{}},
		`{"messageType":"hello","uaid":"` + uaid + `","channelIDs":["` + chid + `"],"broadcasts":{"remote-settings/monitor_changes":"\"1700000000000\""}}`: &Hello{UAID: uaid, ChannelIDs: []string{chid}, Broadcasts: map[string]string{"remote-settings/monitor_changes": `"1700000000000"`}},
		`{"channelID":"` + chid + `","messageType":"register"}`:                                                                                            &Register{ChannelID: chid},
		`{"channelID":"` + chid + `","messageType":"register","key":"BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u6="}`:                                                   &Register{ChannelID: chid, Key: "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u6="},
		`{"messageType":"unregister","channelID":"` + chid + `","code":200}`:                                                                               &Unregister{ChannelID: chid, Code: UnregisterManual},
		`{"messageType":"ack","updates":[{"channelID":"` + chid + `","version":"6a88d8ba4e998da7","code":100}]}`:                                           &Ack{Updates: []AckUpdate{{ChannelID: chid, Version: "6a88d8ba4e998da7", Code: AckDelivered}}},
		// code is optional; autopush counts a missing one as delivered.
		`{"messageType":"ack","updates":[{"channelID":"` + chid + `","version":"v1"},{"channelID":"` + chid + `","version":"v2","code":102}]}`: &Ack{Updates: []AckUpdate{{chid, "v1", AckDelivered}, {chid, "v2", AckNotDelivered}}},
		`{"messageType":"ack","updates":[]}`:                            &Ack{Updates: []AckUpdate{}},
		`{"messageType":"nack","version":"v1","code":301}`:              &Nack{Version: "v1", Code: NackException},
		`{"messageType":"broadcast_subscribe","broadcasts":{"a":"v1"}}`: &BroadcastSubscribe{Broadcasts: map[string]string{"a": "v1"}},
		`{}`:                      &Ping{},
		` { } `:                   &Ping{},
		`{"messageType":"ping"}`:  &Ping{},
		`{"messageType":"hello"}`: &Hello{},
	} {
		got, err := ParseClientMessage([]byte(frame))
		if err != nil {
			t.Errorf("%s: %v", frame, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", frame, got, want)
		}
	}
}

func TestParseClientMessageRejects(t *testing.T) {
	for _, frame := range []string{
		``, ` `, `null`, `[]`, `"hello"`, `42`, `{`, `{} {}`, `{"messageType":"hello"}x`,
		`{"foo":1}`,
		`{"messageType":null}`,
		`{"messageType":1}`,
		`{"messageType":"bogus"}`,
		`{"messageType":"notification","channelID":"` + chid + `","version":"v"}`, // server-only type
		`{"messageType":"register"}`,
		`{"messageType":"register","channelID":""}`,
		`{"messageType":"register","channelID":5}`,
		`{"messageType":"unregister"}`,
		`{"messageType":"unregister","channelID":"` + chid + `","code":"200"}`,
		`{"messageType":"ack"}`,
		`{"messageType":"ack","updates":{}}`,
		`{"messageType":"ack","updates":[{"channelID":"` + chid + `"}]}`,
		`{"messageType":"ack","updates":[{"version":"v"}]}`,
		`{"messageType":"nack"}`,
		`{"messageType":"broadcast_subscribe"}`,
		`{"messageType":"broadcast_subscribe","broadcasts":{"a":1}}`,
		`{"messageType":"hello","uaid":5}`,
		`{"messageType":"hello","broadcasts":[]}`,
	} {
		if m, err := ParseClientMessage([]byte(frame)); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%q: got %#v, %v; want ErrBadMessage", frame, m, err)
		}
	}
}

// The exact bytes the server sends. The hello and register replies are the
// ones Firefox accepted in the observed session (§1.7); the field order is
// autopush's.
func TestServerMessageGoldenJSON(t *testing.T) {
	for _, c := range []struct {
		msg  any
		want string
	}{
		{HelloReply{UAID: uaid}, `{"messageType":"hello","uaid":"` + uaid + `","status":200,"use_webpush":true,"broadcasts":{}}`},
		{HelloReply{UAID: uaid, Broadcasts: map[string]string{"b": "v2"}}, `{"messageType":"hello","uaid":"` + uaid + `","status":200,"use_webpush":true,"broadcasts":{"b":"v2"}}`},
		{RegisterReply{ChannelID: chid, Status: StatusOK, PushEndpoint: "http://127.0.0.1:8099/wpush/v1/" + chid},
			`{"messageType":"register","channelID":"` + chid + `","status":200,"pushEndpoint":"http://127.0.0.1:8099/wpush/v1/` + chid + `"}`},
		{RegisterReply{ChannelID: chid, Status: StatusError}, `{"messageType":"register","channelID":"` + chid + `","status":500,"pushEndpoint":""}`},
		{UnregisterReply{ChannelID: chid, Status: StatusOK}, `{"messageType":"unregister","channelID":"` + chid + `","status":200}`},
		{Notification{ChannelID: chid, Version: "6a88d8ba4e998da7", Data: "0sFCOE_1", Headers: map[string]string{"encoding": "aes128gcm"}},
			`{"messageType":"notification","channelID":"` + chid + `","version":"6a88d8ba4e998da7","data":"0sFCOE_1","headers":{"encoding":"aes128gcm"}}`},
		{Notification{ChannelID: chid, Version: "v"}, `{"messageType":"notification","channelID":"` + chid + `","version":"v"}`},
		{Notification{ChannelID: chid, Version: "v", Data: "AAAA", Headers: map[string]string{"encoding": "aesgcm", "encryption": "salt=abc", "crypto_key": "dh=def"}},
			`{"messageType":"notification","channelID":"` + chid + `","version":"v","data":"AAAA","headers":{"crypto_key":"dh=def","encoding":"aesgcm","encryption":"salt=abc"}}`},
		{Broadcast{Broadcasts: map[string]string{"a": "v1"}, Errors: map[string]string{"b": "Broadcast not found"}},
			`{"messageType":"broadcast","broadcasts":{"a":"v1","errors":{"b":"Broadcast not found"}}}`},
		{Broadcast{}, `{"messageType":"broadcast","broadcasts":{}}`},
		{Pong{}, `{}`},
		{&Pong{}, `{}`},
	} {
		got, err := json.Marshal(c.msg)
		if err != nil {
			t.Errorf("%#v: %v", c.msg, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%T:\n got %s\nwant %s", c.msg, got, c.want)
		}
	}
}

func TestMarshalClientMessage(t *testing.T) {
	for _, c := range []struct {
		msg  ClientMessage
		want string
	}{
		{&Hello{UseWebPush: true, Broadcasts: map[string]string{}}, `{"messageType":"hello","use_webpush":true}`},
		{&Hello{UAID: uaid, UseWebPush: true}, `{"messageType":"hello","uaid":"` + uaid + `","use_webpush":true}`},
		{&Register{ChannelID: chid}, `{"messageType":"register","channelID":"` + chid + `"}`},
		{&Unregister{ChannelID: chid, Code: 200}, `{"messageType":"unregister","channelID":"` + chid + `","code":200}`},
		{&Ack{Updates: []AckUpdate{{chid, "v", 100}}}, `{"messageType":"ack","updates":[{"channelID":"` + chid + `","version":"v","code":100}]}`},
		{&Nack{Version: "v", Code: 302}, `{"messageType":"nack","version":"v","code":302}`},
		{&BroadcastSubscribe{Broadcasts: map[string]string{"a": "1"}}, `{"messageType":"broadcast_subscribe","broadcasts":{"a":"1"}}`},
		{&Ping{}, `{}`},
	} {
		got, err := MarshalClientMessage(c.msg)
		if err != nil || string(got) != c.want {
			t.Errorf("%T: %s, %v; want %s", c.msg, got, err, c.want)
			continue
		}
		back, err := ParseClientMessage(got)
		if err != nil || back.Type() != c.msg.Type() {
			t.Errorf("%s does not parse back: %#v, %v", got, back, err)
		}
	}
}

func TestIDs(t *testing.T) {
	for s, want := range map[string]bool{
		chid:                                    true,
		"87CA7290-4cdd-434e-8f9c-b76514cd3977":  false,
		"87ca72904cdd434e8f9cb76514cd3977":      false,
		"{87ca7290-4cdd-434e-8f9c-b76514cd397}": false,
		"87ca7290-4cdd-434e-8f9c_b76514cd3977":  false,
		"87ca7290-4cdd-434e-8f9c-b76514cd397g":  false,
		"":                                      false,
	} {
		if IsCanonicalChannelID(s) != want {
			t.Errorf("IsCanonicalChannelID(%q) = %v", s, !want)
		}
	}
	seen := map[string]bool{}
	for range 100 {
		u := NewUAID()
		if !IsUAID(u) || seen[u] {
			t.Fatalf("NewUAID() = %q: malformed or repeated", u)
		}
		seen[u] = true
	}
	for _, bad := range []string{"", "0123456789ABCDEF0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdef", uaid + "0", uaid[:31], "0123456789abcdef0123456789abcdeg"} {
		if IsUAID(bad) {
			t.Errorf("IsUAID(%q) = true", bad)
		}
	}
}

// The endpoint's error body, pinned to autopush's shape and reason phrases.
func TestHTTPErrorGoldenJSON(t *testing.T) {
	for _, c := range []struct {
		e    HTTPError
		want string
	}{
		{HTTPError{401, ErrnoUnauthorized, "Invalid VAPID audience"}, `{"code":401,"errno":109,"error":"Unauthorized","message":"Invalid VAPID audience","more_info":"http://autopush.readthedocs.io/en/latest/http.html#error-codes"}`},
		{HTTPError{410, ErrnoNoSubscription, "No such subscription"}, `{"code":410,"errno":106,"error":"Gone","message":"No such subscription","more_info":"http://autopush.readthedocs.io/en/latest/http.html#error-codes"}`},
		{HTTPError{413, ErrnoTooLarge, "too big"}, `{"code":413,"errno":104,"error":"Payload Too Large","message":"too big","more_info":"http://autopush.readthedocs.io/en/latest/http.html#error-codes"}`},
		{HTTPError{400, ErrnoNoTTL, "Missing TTL value"}, `{"code":400,"errno":111,"error":"Bad Request","message":"Missing TTL value","more_info":"http://autopush.readthedocs.io/en/latest/http.html#error-codes"}`},
		{HTTPError{404, ErrnoInvalidToken, "Invalid token"}, `{"code":404,"errno":102,"error":"Not Found","message":"Invalid token","more_info":"http://autopush.readthedocs.io/en/latest/http.html#error-codes"}`},
	} {
		got, err := json.Marshal(c.e)
		if err != nil || string(got) != c.want {
			t.Errorf("%+v:\n got %s, %v\nwant %s", c.e, got, err, c.want)
		}
	}
}

// FuzzParseClientMessage: no frame panics the parser, every failure wraps
// ErrBadMessage, and whatever parses re-encodes to a frame that parses to
// the same message.
func FuzzParseClientMessage(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"messageType":"hello","broadcasts":{},"use_webpush":true}`,
		`{"channelID":"` + chid + `","messageType":"register"}`,
		`{"messageType":"ack","updates":[{"channelID":"` + chid + `","version":"v","code":100}]}`,
		`{"messageType":"nack","version":"v"}`, `{"messageType":"unregister","channelID":"x","code":201}`,
		`{"messageType":"broadcast_subscribe","broadcasts":{"a":"b"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := ParseClientMessage(frame)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) || m != nil {
				t.Fatalf("%q: %#v, %v", frame, m, err)
			}
			return
		}
		out, err := MarshalClientMessage(m)
		if err != nil {
			t.Fatalf("%#v: %v", m, err)
		}
		back, err := ParseClientMessage(out)
		if err != nil {
			t.Fatalf("%s from %q does not parse: %v", out, frame, err)
		}
		if !reflect.DeepEqual(normalize(back), normalize(m)) {
			t.Fatalf("%q → %#v → %s → %#v", frame, m, out, back)
		}
	})
}

// normalize erases the empty-versus-nil differences omitempty introduces.
func normalize(m ClientMessage) ClientMessage {
	if h, ok := m.(*Hello); ok {
		c := *h
		if len(c.Broadcasts) == 0 {
			c.Broadcasts = nil
		}
		if len(c.ChannelIDs) == 0 {
			c.ChannelIDs = nil
		}
		return &c
	}
	return m
}
