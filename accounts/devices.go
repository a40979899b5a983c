package accounts

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/weave-sync/weave/push/ece"
)

// deviceData is a registered device (Data of a KindDevice token).
type deviceData struct {
	ID                string            `json:"id"`
	SessionTokenID    string            `json:"sessionTokenId"`
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	PushCallback      string            `json:"pushCallback"`
	PushPublicKey     string            `json:"pushPublicKey"`
	PushAuthKey       string            `json:"pushAuthKey"`
	AvailableCommands map[string]string `json:"availableCommands"`
	// PushEndpointExpired: the push service answered 404/410 for
	// PushCallback; nothing is pushed until the device registers another.
	PushEndpointExpired bool `json:"pushEndpointExpired,omitempty"`
}

func parseDevice(t Token) deviceData {
	var d deviceData
	_ = json.Unmarshal(t.Data, &d)
	d.ID = t.ID
	return d
}

func (d deviceData) wire(current bool, lastAccess int64) map[string]any {
	cmds := d.AvailableCommands
	if cmds == nil {
		cmds = map[string]string{}
	}
	return map[string]any{
		"id": d.ID, "name": d.Name, "type": d.Type, "isCurrentDevice": current,
		"lastAccessTime": lastAccess, "pushCallback": nullIfEmpty(d.PushCallback),
		"pushPublicKey": nullIfEmpty(d.PushPublicKey), "pushAuthKey": nullIfEmpty(d.PushAuthKey),
		"pushEndpointExpired": d.PushEndpointExpired, "availableCommands": cmds, "location": map[string]any{},
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var deviceTypes = map[string]bool{"desktop": true, "mobile": true, "tablet": true, "vr": true, "tv": true}

// validCommandName is FxA's DEVICE_COMMAND_NAME: ^[a-zA-Z0-9._/\-:]{1,100}$.
func validCommandName(n string) bool {
	if len(n) == 0 || len(n) > 100 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._/-:", c) >= 0) {
			return false
		}
	}
	return true
}

// validB64URL: FxA's URL_SAFE_BASE_64 (^[A-Za-z0-9_-]+$), or empty.
func validB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// deviceUpdate registers the current session's device or updates it
// (POST /v1/account/device). The three push fields come together or not
// at all, as in FxA; a new device is announced to the others
// (device_connected).
func (s *Service) deviceUpdate(r *request) (any, error) {
	var b struct {
		ID                *string           `json:"id"`
		Name              *string           `json:"name"`
		Type              *string           `json:"type"`
		PushCallback      *string           `json:"pushCallback"`
		PushPublicKey     *string           `json:"pushPublicKey"`
		PushAuthKey       *string           `json:"pushAuthKey"`
		AvailableCommands map[string]string `json:"availableCommands"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if err := s.checkPushFields(b.PushCallback, b.PushPublicKey, b.PushAuthKey); err != nil {
		return nil, err
	}
	ctx := r.r.Context()
	devs, err := s.store.Tokens(ctx, r.account.UID, KindDevice)
	if err != nil {
		return nil, err
	}
	var d *deviceData
	var old Token
	for _, t := range devs {
		dd := parseDevice(t)
		if (b.ID != nil && dd.ID == strings.ToLower(*b.ID)) || (b.ID == nil && dd.SessionTokenID == r.token.ID) {
			d, old = &dd, t
		}
	}
	created := d == nil
	if created && b.ID != nil {
		return nil, errUnknownDevice
	}
	if created && b.PushCallback != nil && *b.PushCallback != "" {
		// A push endpoint belongs to one browser: a new session bringing a
		// known one is that browser registering again (Firefox does after
		// a password change), not a new device to announce.
		for _, t := range devs {
			if dd := parseDevice(t); dd.PushCallback == *b.PushCallback {
				d, old, created = &dd, t, false
			}
		}
	}
	if created {
		d = &deviceData{ID: randomHex(16), Type: "desktop"}
	}
	d.SessionTokenID = r.token.ID
	// FxA clears the expiry for a new device or a new callback only: the
	// same dead callback again stays expired.
	if created || (b.PushCallback != nil && *b.PushCallback != d.PushCallback) {
		d.PushEndpointExpired = false
	}
	set := func(dst *string, src *string, name string, maxLen int) error {
		if src == nil {
			return nil
		}
		if len(*src) > maxLen {
			return errInvalid(name)
		}
		*dst = *src
		return nil
	}
	for _, f := range []struct {
		dst, src *string
		name     string
		n        int
	}{{&d.Name, b.Name, "name", 255}, {&d.Type, b.Type, "type", 16}, {&d.PushCallback, b.PushCallback, "pushCallback", maxPushCallback},
		{&d.PushPublicKey, b.PushPublicKey, "pushPublicKey", 88}, {&d.PushAuthKey, b.PushAuthKey, "pushAuthKey", 24}} {
		if err := set(f.dst, f.src, f.name, f.n); err != nil {
			return nil, err
		}
	}
	if !deviceTypes[d.Type] {
		return nil, errInvalid("type")
	}
	if b.AvailableCommands != nil {
		if len(b.AvailableCommands) > 32 {
			return nil, errInvalid("availableCommands")
		}
		for k, v := range b.AvailableCommands {
			if !validCommandName(k) || len(v) > 2048 {
				return nil, errInvalid("availableCommands")
			}
		}
		d.AvailableCommands = b.AvailableCommands
	}
	if _, err := hex.DecodeString(d.ID); err != nil || len(d.ID) != 32 {
		return nil, errInvalid("id")
	}
	data, _ := json.Marshal(d)
	now := s.nowMS()
	t := Token{ID: d.ID, Kind: KindDevice, UID: r.account.UID, Data: data, CreatedAt: now, LastUsed: now}
	if !created {
		t.CreatedAt = old.CreatedAt
	}
	if err := s.store.PutToken(ctx, t); err != nil {
		return nil, err
	}
	if created {
		var others []deviceData
		for _, o := range devs {
			others = append(others, parseDevice(o))
		}
		s.push.notify(r.account.UID, others, newNotice(pushDeviceConnected, map[string]string{"deviceName": d.Name}), 0)
	}
	return d.wire(true, now), nil
}

// checkPushFields applies FxA's rules to a device's push fields: all three
// or none; the callback empty or an allowed push service URL (see
// Config.PushHosts); the keys empty or base64url, and together a usable
// P-256 key and 16-byte auth secret (FxA tries an ECDH with the key).
func (s *Service) checkPushFields(callback, pub, auth *string) error {
	if callback == nil && pub == nil && auth == nil {
		return nil
	}
	for _, f := range []struct {
		v    *string
		name string
	}{{callback, "pushCallback"}, {pub, "pushPublicKey"}, {auth, "pushAuthKey"}} {
		if f.v == nil {
			return errMissing(f.name)
		}
	}
	if *callback != "" && !s.push.allowed(*callback) {
		return errInvalid("pushCallback")
	}
	for _, f := range []struct {
		v    string
		name string
		max  int
	}{{*pub, "pushPublicKey", 88}, {*auth, "pushAuthKey", 24}} {
		if len(f.v) > f.max || !validB64URL(f.v) {
			return errInvalid(f.name)
		}
	}
	if *pub != "" {
		// The key alone first (FxA checks only it), then with the secret.
		if _, err := ece.ParseKeys(*pub, "AAAAAAAAAAAAAAAAAAAAAA"); err != nil {
			return errInvalid("pushPublicKey")
		}
		if _, err := ece.ParseKeys(*pub, *auth); *auth != "" && err != nil {
			return errInvalid("pushAuthKey")
		}
	}
	return nil
}

func (s *Service) devices(r *request) (any, error) {
	devs, err := s.store.Tokens(r.r.Context(), r.account.UID, KindDevice)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, t := range devs {
		d := parseDevice(t)
		out = append(out, d.wire(d.SessionTokenID == r.token.ID, t.LastUsed))
	}
	return out, nil
}

// deviceDestroy is POST /v1/account/device/destroy {id}: the device,
// its session (and the access tokens issued through it) and its command
// queue go, and every device of the account, the destroyed one included,
// hears of it (device_disconnected; Firefox signs out when the id is its
// own).
func (s *Service) deviceDestroy(r *request) (any, error) {
	var b struct {
		ID string `json:"id"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if b.ID == "" {
		return nil, errMissing("id")
	}
	ctx := r.r.Context()
	t, err := s.store.Token(ctx, strings.ToLower(b.ID))
	if errors.Is(err, ErrNotFound) || (err == nil && (t.Kind != KindDevice || t.UID != r.account.UID)) {
		return nil, errUnknownDevice
	} else if err != nil {
		return nil, err
	}
	if err := s.removeDevice(ctx, r.account.UID, parseDevice(t), true); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// removeDevice deletes a device, its session (revoking the access tokens
// issued through it) and its command queue, then pushes
// device_disconnected to the account's devices as they were before,
// including d itself if tellItself.
func (s *Service) removeDevice(ctx context.Context, uid string, d deviceData, tellItself bool) error {
	devs, err := s.deviceList(ctx, uid)
	if err != nil {
		return err
	}
	var revoked *Token
	if d.SessionTokenID != "" {
		t := s.revokedGrant(uid, d.SessionTokenID)
		revoked = &t
	}
	if err := s.store.RemoveDevice(ctx, uid, d.ID, d.SessionTokenID, revoked); err != nil {
		return err
	}
	if !tellItself {
		devs = withoutDevice(devs, d.ID)
	}
	s.push.notify(uid, devs, newNotice(pushDeviceDisconnected, map[string]string{"id": d.ID}), ttlDeviceDisconnected)
	return nil
}

// attachedClientDestroy is FxA's POST /v1/account/attached_client/destroy
// {clientId?, deviceId?, sessionTokenId?, refreshTokenId?}, what the
// devices page's "Disconnect" sends for one entry of attached_clients: a
// device goes with its session (device_disconnected reaches it and the
// others), a session without a device is ended, a refresh token revoked.
// Ids that name nothing of the account are errno 123 (device) or 110.
func (s *Service) attachedClientDestroy(r *request) (any, error) {
	var b struct {
		ClientID       *string `json:"clientId"`
		DeviceID       *string `json:"deviceId"`
		SessionTokenID *string `json:"sessionTokenId"`
		RefreshTokenID *string `json:"refreshTokenId"`
	}
	if err := strictDecode(r, &b); err != nil {
		return nil, err
	}
	ctx := r.r.Context()
	get := func(p *string, n int) (string, error) {
		if p == nil {
			return "", nil
		}
		v := strings.ToLower(*p)
		if len(v) != n || !isLowerHex(v) {
			return "", errInvalid("id")
		}
		return v, nil
	}
	dev, err := get(b.DeviceID, 32)
	if err != nil {
		return nil, err
	}
	sess, err := get(b.SessionTokenID, 64)
	if err != nil {
		return nil, err
	}
	refresh, err := get(b.RefreshTokenID, 64)
	if err != nil {
		return nil, err
	}
	own := func(id, kind string) (Token, error) {
		t, err := s.store.Token(ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && (t.Kind != kind || t.UID != r.account.UID)) {
			return t, ErrNotFound
		}
		return t, err
	}
	switch {
	case dev != "":
		t, err := own(dev, KindDevice)
		if errors.Is(err, ErrNotFound) {
			return nil, errUnknownDevice
		} else if err != nil {
			return nil, err
		}
		if err := s.removeDevice(ctx, r.account.UID, parseDevice(t), true); err != nil {
			return nil, err
		}
	case sess != "":
		if _, err := own(sess, KindSession); errors.Is(err, ErrNotFound) {
			return nil, errInvalidToken.with("message", "Invalid session token")
		} else if err != nil {
			return nil, err
		}
		if err := s.dropSession(ctx, r.account.UID, sess, sess != r.token.ID); err != nil {
			return nil, err
		}
	case refresh != "":
		if _, err := own(refresh, KindRefresh); errors.Is(err, ErrNotFound) {
			return nil, errUnknownRefresh
		} else if err != nil {
			return nil, err
		}
		if err := s.endGrant(ctx, r.account.UID, refresh); err != nil {
			return nil, err
		}
	default:
		return nil, errMissing("deviceId")
	}
	return map[string]any{}, nil
}

// attachedClients lists sessions (with their devices) and OAuth refresh
// tokens, the shape Firefox's "connected services" page reads.
func (s *Service) attachedClients(r *request) (any, error) {
	ctx := r.r.Context()
	sessions, err := s.store.Tokens(ctx, r.account.UID, KindSession)
	if err != nil {
		return nil, err
	}
	devs, err := s.store.Tokens(ctx, r.account.UID, KindDevice)
	if err != nil {
		return nil, err
	}
	bySession := map[string]deviceData{}
	for _, t := range devs {
		d := parseDevice(t)
		bySession[d.SessionTokenID] = d
	}
	out := []any{}
	for _, t := range sessions {
		var sd sessionData
		_ = json.Unmarshal(t.Data, &sd)
		c := map[string]any{"clientId": nil, "deviceId": nil, "sessionTokenId": t.ID, "refreshTokenId": nil,
			"isCurrentSession": t.ID == r.token.ID, "deviceType": nil, "name": nil, "scope": nil,
			"createdTime": t.CreatedAt, "lastAccessTime": t.LastUsed, "location": map[string]any{},
			"userAgent": sd.UserAgent, "os": nil}
		if d, ok := bySession[t.ID]; ok {
			c["deviceId"], c["deviceType"], c["name"] = d.ID, d.Type, d.Name
		}
		out = append(out, c)
	}
	// Devices outlive their session across a password change until the
	// browser registers again: listed on their own, so they can be
	// disconnected.
	live := map[string]bool{}
	for _, t := range sessions {
		live[t.ID] = true
	}
	for _, t := range devs {
		if d := parseDevice(t); !live[d.SessionTokenID] {
			out = append(out, map[string]any{"clientId": nil, "deviceId": d.ID, "sessionTokenId": nil, "refreshTokenId": nil,
				"isCurrentSession": false, "deviceType": d.Type, "name": d.Name, "scope": nil, "createdTime": t.CreatedAt,
				"lastAccessTime": t.LastUsed, "location": map[string]any{}, "userAgent": "", "os": nil})
		}
	}
	refresh, err := s.store.Tokens(ctx, r.account.UID, KindRefresh)
	if err != nil {
		return nil, err
	}
	for _, t := range refresh {
		g := parseGrant(t)
		out = append(out, map[string]any{"clientId": g.ClientID, "deviceId": nil, "sessionTokenId": nil,
			"refreshTokenId": t.ID, "isCurrentSession": false, "deviceType": nil, "name": s.clients[g.ClientID].Name,
			"scope": strings.Fields(g.Scope), "createdTime": t.CreatedAt, "lastAccessTime": t.LastUsed,
			"location": map[string]any{}, "userAgent": "", "os": nil})
	}
	return out, nil
}
