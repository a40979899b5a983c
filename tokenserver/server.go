// Package tokenserver is the Firefox Sync token server (Token Server API
// 1.0, shared/spec/tokenserver-1.0.md): it trades an FxA OAuth access token
// for a short-lived tokenlib token plus the URL of the user's storage node,
// and owns the account → uid → node assignment kept in a weave.TokenDB.
//
// Decisions where the spec leaves a choice:
//   - Bearer (OAuth) only; X-KeyID is required (missing → 401
//     invalid-key-id), as in syncstorage-rs: every OAuth Firefox sends it.
//   - Cheap header checks (Authorization syntax, X-Client-State format,
//     X-KeyID) run before the FxA verification, which may cost a network
//     round trip.
//   - ?duration=d is honoured when 0 < d ≤ the configured duration
//     (syncstorage-rs), otherwise ignored.
//   - new-users-disabled is a 401 (the Python server and the spec's
//     recommendation; syncstorage-rs sends 403).
//   - A retired account (generation 2^63-1) always gets 401
//     invalid-generation, even from a token without a generation claim.
//   - keys_changed_at NULL on a record counts as 0 in every rule (Python).
//   - A client-state change keeps the user's node if it is up or in
//     backoff; on a draining, down or removed node the new (empty) uid goes
//     to the best node instead — nothing is left to keep there.
//   - A user whose node is down gets 503 + Retry-After (the node's, else
//     Config.RetryAfter); a user whose node is in backoff gets the token plus
//     X-Backoff (the node's seconds, else Config.Backoff). X-Weave-Backoff is
//     left to the storage node, which the client is about to talk to.
//   - Database errors, FxA outages and "no node" are 503 with Retry-After,
//     never 500.
//   - X-Timestamp and X-Content-Type-Options: nosniff go on every response.
//   - tokenserver_origin is "rust" (see Origin).
package tokenserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/tokenlib"
)

// Verifier checks an FxA OAuth access token, as *fxa.Verifier does: errors
// wrapping fxa.ErrUnavailable give 503, any other error 401
// invalid-credentials.
type Verifier interface {
	Verify(ctx context.Context, token string) (fxa.Claims, error)
}

// Config is everything the token server needs; zero values take the
// defaults given per field.
type Config struct {
	// DB holds users and nodes. Required.
	DB weave.TokenDB
	// Verifier checks the Bearer tokens. Required.
	Verifier Verifier
	// Secrets are the master secrets, oldest first: the last one signs.
	// Storage nodes accept all of them (rotation). Required.
	Secrets []string
	// DerivedSecrets signs each node's tokens with a secret derived from
	// the master for that node's URL (mozsvc DerivedSecrets, spec §8.3)
	// instead of the master itself; storage nodes must then use
	// NodeSecrets to verify. Default: the master secret for every node, as
	// syncstorage-rs does.
	DerivedSecrets bool
	// MetricsSecret keys hashed_fxa_uid and hashed_device_id (default: the
	// oldest master secret, which changes less often than the newest).
	MetricsSecret string
	// TokenDuration is the token lifetime (default 1 h).
	TokenDuration time.Duration
	// EmailDomain makes the account key "<fxa_uid>@<EmailDomain>"
	// (default "api.accounts.firefox.com"). Changing it orphans every
	// existing user record.
	EmailDomain string
	// NewUsersDisabled refuses accounts the token DB does not know yet
	// (401 new-users-disabled).
	NewUsersDisabled bool
	// NodeType is the response's node_type label, e.g. "sqlite", "mysql"
	// or "postgres" (default: null).
	NodeType string
	// DefaultNodeURL, if set, is a node ensured to exist at start-up with
	// DefaultNodeCapacity (default 100 000): the single-node case, where
	// this process is its own storage node.
	DefaultNodeURL      string
	DefaultNodeCapacity int64
	// RetryAfter is sent with 503s: database or FxA failure, no node, and
	// a down node without its own retry-after (default 5 min).
	RetryAfter time.Duration
	// Backoff is the X-Backoff for users of a backoff node without its own
	// backoff seconds (default 5 min).
	Backoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
	// Observer, when set, is told of every token issued or refused.
	Observer Observer
}

// Server serves GET /1.0/sync/1.5. It is an http.Handler; mount it so
// that it sees paths starting with /1.0/.
type Server struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	nodeEnsured bool
}

// New returns a Server; call Init before serving to check the
// configuration and create the default node early (ServeHTTP does it on
// first use otherwise, answering 503 while it fails).
func New(cfg Config) *Server {
	if cfg.TokenDuration <= 0 {
		cfg.TokenDuration = time.Hour
	}
	if cfg.EmailDomain == "" {
		cfg.EmailDomain = "api.accounts.firefox.com"
	}
	if cfg.MetricsSecret == "" && len(cfg.Secrets) > 0 {
		cfg.MetricsSecret = cfg.Secrets[0]
	}
	if cfg.DefaultNodeCapacity <= 0 {
		cfg.DefaultNodeCapacity = 100_000
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Minute
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}
}

// Init checks the configuration and ensures the default node.
func (s *Server) Init(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.ensureDefaultNode(ctx)
}

func (s *Server) check() error {
	switch {
	case s.cfg.DB == nil:
		return errors.New("tokenserver: no token database")
	case s.cfg.Verifier == nil:
		return errors.New("tokenserver: no FxA verifier")
	case len(s.cfg.Secrets) == 0:
		return errors.New("tokenserver: no master secret")
	}
	for _, sec := range s.cfg.Secrets {
		if sec == "" {
			return errors.New("tokenserver: empty master secret")
		}
		if s.cfg.DerivedSecrets {
			if _, err := tokenlib.DerivedNodeSecret(sec, "https://check.invalid"); err != nil {
				return fmt.Errorf("tokenserver: %w", err)
			}
		}
	}
	return nil
}

func (s *Server) ensureDefaultNode(ctx context.Context) error {
	if s.cfg.DefaultNodeURL == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodeEnsured {
		return nil
	}
	_, err := s.cfg.DB.EnsureNode(ctx, weave.Node{URL: s.cfg.DefaultNodeURL, Capacity: s.cfg.DefaultNodeCapacity})
	if err != nil {
		return fmt.Errorf("tokenserver: default node %s: %w", s.cfg.DefaultNodeURL, err)
	}
	s.nodeEnsured = true
	return nil
}

// NodeSecrets returns the secrets a storage node at nodeURL must accept for
// tokens issued with masters (oldest first) in the given mode: the masters
// themselves, or the secrets derived from each for that node.
func NodeSecrets(masters []string, nodeURL string, derived bool) ([]string, error) {
	if !derived {
		return append([]string(nil), masters...), nil
	}
	out := make([]string, 0, len(masters))
	for _, m := range masters {
		sec, err := tokenlib.DerivedNodeSecret(m, nodeURL)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// signingSecret is the newest master, or its derivation for the node.
func (s *Server) signingSecret(nodeURL string) (string, error) {
	master := s.cfg.Secrets[len(s.cfg.Secrets)-1]
	if !s.cfg.DerivedSecrets {
		return master, nil
	}
	return tokenlib.DerivedNodeSecret(master, nodeURL)
}

// Response is the JSON body of a successful token request (spec §7).
type Response struct {
	ID           string  `json:"id"`
	Key          string  `json:"key"`
	UID          int64   `json:"uid"`
	APIEndpoint  string  `json:"api_endpoint"`
	Duration     int64   `json:"duration"`
	HashAlg      string  `json:"hashalg"`
	HashedFxAUID string  `json:"hashed_fxa_uid"`
	NodeType     *string `json:"node_type"`
	// newUID reports that this request created the uid (metrics only).
	newUID bool
}

// Observer receives counts of the token server's outcomes (metrics).
// Refusal reasons are the Cornice status when specific
// ("invalid-credentials", "invalid-generation", …) or one of
// "unauthorized", "bad-request", "fxa-unavailable", "backend-unavailable",
// "no-node", "node-down".
type Observer interface {
	TokenIssued(newUID bool)
	TokenRefused(reason string)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	h := w.Header()
	h.Set("X-Timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("X-Content-Type-Options", "nosniff")
	resp, backoff, e := s.issue(r, now)
	if e != nil {
		s.logError(r, e)
		if s.cfg.Observer != nil {
			s.cfg.Observer.TokenRefused(e.refusalReason())
		}
		e.write(w)
		return
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.TokenIssued(resp.newUID)
	}
	if backoff > 0 {
		h.Set("X-Backoff", strconv.FormatInt(int64(backoff/time.Second), 10))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) logError(r *http.Request, e *apiError) {
	level := slog.LevelDebug // client errors are routine: stale credentials
	if e.code >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.Int("code", e.code), slog.String("status", e.status), slog.String("description", e.description)}
	if e.cause != nil {
		attrs = append(attrs, slog.String("err", e.cause.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "token request failed", attrs...)
}

// issue runs a token request through every check of the spec, in order,
// and returns the response or the first error, plus the X-Backoff to send.
func (s *Server) issue(r *http.Request, now time.Time) (*Response, time.Duration, *apiError) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/1.0/")
	app, version, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || app == "" || version == "" || strings.Contains(version, "/") {
		return nil, 0, errNotFound()
	}
	if r.Method != http.MethodGet {
		return nil, 0, errMethodNotAllowed()
	}
	if app != "sync" {
		return nil, 0, errUnsupportedApp()
	}
	if version != "1.5" {
		return nil, 0, errUnsupportedVersion(version)
	}
	if !acceptsJSON(r) {
		return nil, 0, errNotAcceptable()
	}
	if err := s.check(); err != nil {
		return nil, 0, errBackend(s.cfg.RetryAfter, err)
	}

	token, e := bearerToken(r)
	if e != nil {
		return nil, 0, e
	}
	kid, e := parseKeyID(r)
	if e != nil {
		return nil, 0, e
	}
	ctx := r.Context()
	if err := s.ensureDefaultNode(ctx); err != nil {
		return nil, 0, errBackend(s.cfg.RetryAfter, err)
	}

	claims, err := s.cfg.Verifier.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, fxa.ErrUnavailable) {
			return nil, 0, errFxAUnavailable(s.cfg.RetryAfter, err)
		}
		return nil, 0, errInvalidCredentials(err)
	}
	id, e := identityOf(claims, kid)
	if e != nil {
		return nil, 0, e
	}
	email := id.fxaUID + "@" + s.cfg.EmailDomain

	user, e := s.loadUser(ctx, email, id)
	if e != nil {
		return nil, 0, e
	}
	if e := checkRules(user, id); e != nil {
		return nil, 0, e
	}
	user, e = s.update(ctx, email, user, id)
	if e != nil {
		return nil, 0, e
	}

	node := user.Node
	var backoff time.Duration
	switch {
	case node == nil: // removed between allocation and now
		return nil, 0, errNoNode(s.cfg.RetryAfter, errors.New("user's node vanished"))
	case node.State == weave.NodeDown:
		return nil, 0, errNodeDown(orDefault(node.RetryAfter, s.cfg.RetryAfter))
	case node.State == weave.NodeBackoff:
		backoff = orDefault(node.Backoff, s.cfg.Backoff)
	}

	duration := s.duration(r)
	p, err := NewPayload(user.UID, node.URL, id.fxaUID, user.Generation, user.KeysChangedAt, user.ClientState,
		s.cfg.MetricsSecret, now.Unix()+int64(duration/time.Second))
	if err != nil {
		return nil, 0, errBackend(s.cfg.RetryAfter, err)
	}
	secret, err := s.signingSecret(node.URL)
	if err != nil {
		return nil, 0, errBackend(s.cfg.RetryAfter, err)
	}
	tokID, key, err := p.Sign(secret)
	if err != nil {
		return nil, 0, errBackend(s.cfg.RetryAfter, err)
	}
	resp := &Response{
		ID:           tokID,
		Key:          key,
		UID:          user.UID,
		APIEndpoint:  fmt.Sprintf("%s/1.5/%d", node.URL, user.UID),
		Duration:     int64(duration / time.Second),
		HashAlg:      "sha256",
		HashedFxAUID: p.HashedFxAUID,
		// AllocateUser stamps created_at with the time of allocation, so a
		// record no older than this request was made by it (or by a
		// concurrent twin of it).
		newUID: user.CreatedAt >= now.UnixMilli(),
	}
	if s.cfg.NodeType != "" {
		nt := s.cfg.NodeType
		resp.NodeType = &nt
	}
	return resp, backoff, nil
}

// orDefault returns v, or def when v is not set.
func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// duration applies ?duration=<seconds>: honoured when 0 < d ≤ the
// configured lifetime, silently ignored otherwise (spec §2).
func (s *Server) duration(r *http.Request) time.Duration {
	max := s.cfg.TokenDuration
	v := r.URL.Query().Get("duration")
	if v == "" {
		return max
	}
	d, err := strconv.ParseInt(v, 10, 64)
	if err != nil || d <= 0 || d > int64(max/time.Second) {
		return max
	}
	return time.Duration(d) * time.Second
}

// identity is what the request says about the account and its keys.
// 0 means "absent" for generation and keysChangedAt (FxA sends 0 for
// unknown, spec §3.1).
type identity struct {
	fxaUID        string
	generation    int64
	keysChangedAt int64
	clientState   string
}

func identityOf(c fxa.Claims, kid keyID) (identity, *apiError) {
	if !validFxAUID(c.FxAUID) {
		return identity{}, errInvalidCredentials(fmt.Errorf("unusable fxa uid %q", c.FxAUID))
	}
	if c.Generation < 0 {
		return identity{}, errInvalidGeneration()
	}
	return identity{fxaUID: c.FxAUID, generation: c.Generation, keysChangedAt: kid.keysChangedAt, clientState: kid.clientState}, nil
}

// validFxAUID: storage nodes check fxa_uid against ^[A-Za-z0-9=\-_]{1,64}$
// (spec §8.1); a uid they would reject must not get a token.
func validFxAUID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '=' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// loadUser is spec §5.2: the current record, allocating one for a new
// account, or a fresh uid when the current record was replaced or its node
// removed (except for retired accounts).
func (s *Server) loadUser(ctx context.Context, email string, id identity) (weave.TokenUser, *apiError) {
	u, err := s.cfg.DB.GetUser(ctx, email)
	var nu weave.NewTokenUser
	switch {
	case errors.Is(err, weave.ErrNotFound):
		if s.cfg.NewUsersDisabled {
			return weave.TokenUser{}, errNewUsersDisabled()
		}
		nu = weave.NewTokenUser{Generation: id.generation, ClientState: id.clientState, KeysChangedAt: id.keysChangedAt}
	case err != nil:
		return weave.TokenUser{}, s.dbError(err)
	case (u.ReplacedAt != 0 || u.Node == nil) && !u.Retired():
		nu = weave.NewTokenUser{Generation: u.Generation, ClientState: u.ClientState, KeysChangedAt: u.KeysChangedAt}
	default:
		return u, nil
	}
	u, err = s.cfg.DB.AllocateUser(ctx, email, nu)
	if err != nil {
		return weave.TokenUser{}, s.dbError(err)
	}
	return u, nil
}

func (s *Server) dbError(err error) *apiError {
	if errors.Is(err, weave.ErrNoNode) {
		return errNoNode(s.cfg.RetryAfter, err)
	}
	return errBackend(s.cfg.RetryAfter, err)
}

// checkRules applies spec §5.3 in order. g, k (request) and G, K (record)
// are compared only when the request carries them; a record's
// keys_changed_at NULL counts as 0.
func checkRules(u weave.TokenUser, id identity) *apiError {
	g, k, cs := id.generation, id.keysChangedAt, id.clientState
	G, K, CS := u.Generation, u.KeysChangedAt, u.ClientState
	hasG, hasK := g != 0, k != 0
	if u.Retired() {
		return errInvalidGeneration()
	}
	// 1: keys cannot have changed after the credentials were issued.
	if hasK && k > K && hasG && g < k {
		return errInvalidKeysChangedAt()
	}
	// 2: once a client state is known, it must be sent.
	if CS != "" && cs == "" {
		return errInvalidClientState("empty string")
	}
	// 3: never go back to an old key.
	for _, old := range u.OldClientStates {
		if cs == old {
			return errInvalidClientState("stale value")
		}
	}
	// 4, 5: a new key needs newer credentials and a newer key time.
	if cs != CS && hasG && g <= G {
		return errInvalidClientState("new value with no generation change")
	}
	if cs != CS && hasK && k <= K {
		return errInvalidClientState("new value with no keys_changed_at change")
	}
	// 6, 7: credentials and keys never move backwards.
	if hasG && G > g {
		return errInvalidGeneration()
	}
	if K > k {
		return errInvalidKeysChangedAt()
	}
	return nil
}

// update is spec §5.4: a new record (uid) for a new client state, else the
// generation and keys_changed_at raised in place. It returns the record
// the token is for, with the values the token carries.
func (s *Server) update(ctx context.Context, email string, u weave.TokenUser, id identity) (weave.TokenUser, *apiError) {
	newK := max(u.KeysChangedAt, id.keysChangedAt)
	newG := u.Generation
	switch {
	case id.generation != 0:
		newG = max(u.Generation, id.generation)
	case id.keysChangedAt > u.KeysChangedAt && id.keysChangedAt > u.Generation:
		// No generation claim, but the keys changed later than anything
		// seen: the credentials are at least that new.
		newG = id.keysChangedAt
	}
	if id.clientState != u.ClientState {
		nu, err := s.cfg.DB.AllocateUser(ctx, email, weave.NewTokenUser{
			Generation: newG, ClientState: id.clientState, KeysChangedAt: newK, NodeID: u.NodeID,
		})
		if err != nil {
			return weave.TokenUser{}, s.dbError(err)
		}
		if nu.Retired() { // retired meanwhile
			return weave.TokenUser{}, errInvalidGeneration()
		}
		// A concurrent request may have made the record with older values.
		u = nu
	}
	if newG > u.Generation || newK > u.KeysChangedAt {
		newG, newK = max(newG, u.Generation), max(newK, u.KeysChangedAt)
		if err := s.cfg.DB.UpdateUser(ctx, u.UID, newG, newK); err != nil {
			return weave.TokenUser{}, s.dbError(err)
		}
		u.Generation, u.KeysChangedAt = newG, newK
	}
	return u, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"status":"error","errors":[{"location":"internal","name":"","description":"Server error"}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }
