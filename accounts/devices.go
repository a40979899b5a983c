package accounts

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
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
		"pushEndpointExpired": false, "availableCommands": cmds, "location": map[string]any{},
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var deviceTypes = map[string]bool{"desktop": true, "mobile": true, "tablet": true, "vr": true, "tv": true}

// deviceUpdate registers the current session's device or updates it
// (POST /v1/account/device).
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
	ctx := r.r.Context()
	devs, err := s.store.Tokens(ctx, r.account.UID, KindDevice)
	if err != nil {
		return nil, err
	}
	var d *deviceData
	for _, t := range devs {
		dd := parseDevice(t)
		if (b.ID != nil && dd.ID == strings.ToLower(*b.ID)) || (b.ID == nil && dd.SessionTokenID == r.token.ID) {
			d = &dd
		}
	}
	if d == nil {
		if b.ID != nil {
			return nil, errUnknownDevice
		}
		d = &deviceData{ID: randomHex(16), Type: "desktop"}
	}
	d.SessionTokenID = r.token.ID
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
	}{{&d.Name, b.Name, "name", 255}, {&d.Type, b.Type, "type", 16}, {&d.PushCallback, b.PushCallback, "pushCallback", 1024},
		{&d.PushPublicKey, b.PushPublicKey, "pushPublicKey", 256}, {&d.PushAuthKey, b.PushAuthKey, "pushAuthKey", 256}} {
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
		d.AvailableCommands = b.AvailableCommands
	}
	if _, err := hex.DecodeString(d.ID); err != nil || len(d.ID) != 32 {
		return nil, errInvalid("id")
	}
	data, _ := json.Marshal(d)
	now := s.nowMS()
	if err := s.store.PutToken(ctx, Token{ID: d.ID, Kind: KindDevice, UID: r.account.UID, Data: data, CreatedAt: now, LastUsed: now}); err != nil {
		return nil, err
	}
	return d.wire(true, now), nil
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
	t, err := s.store.Token(r.r.Context(), strings.ToLower(b.ID))
	if err != nil || t.Kind != KindDevice || t.UID != r.account.UID {
		return nil, errUnknownDevice
	}
	d := parseDevice(t)
	if err := s.store.DeleteToken(r.r.Context(), t.ID); err != nil {
		return nil, err
	}
	if d.SessionTokenID != "" {
		if err := s.store.DeleteToken(r.r.Context(), d.SessionTokenID); err != nil {
			return nil, err
		}
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

// deviceCommands is GET /v1/account/device/commands: Firefox polls it after
// sign-in and on push. weave keeps no command queue (send-tab needs push),
// so there is never anything pending; answering beats Firefox logging a
// failed device-list refresh every time.
func (s *Service) deviceCommands(r *request) (any, error) {
	idx := int64(0)
	if v := r.r.URL.Query().Get("index"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, errInvalid("index")
		}
		idx = n
	}
	return map[string]any{"index": idx, "last": true, "messages": []any{}}, nil
}

// devicesNotify is POST /v1/account/devices/notify: Firefox asks the
// server to push a "collection changed" to the other devices. Without
// push there is nobody to notify; the other devices sync on their own
// schedule. The body is still checked as FxA would.
func (s *Service) devicesNotify(r *request) (any, error) {
	var b struct {
		To      json.RawMessage `json:"to"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if b.To == nil {
		return nil, errMissing("to")
	}
	if b.Payload == nil {
		return nil, errMissing("payload")
	}
	return map[string]any{}, nil
}
