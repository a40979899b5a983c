package loadtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/tokenlib"
)

// fakeSync is a small in-memory Sync 1.5 storage node (and token server)
// for testing the runner's protocol handling and the verifier without the
// real server: it accepts any Hawk header whose token names the uid of the
// path, and it can misbehave on purpose.
type fakeSync struct {
	t  *testing.T
	mu sync.Mutex

	users   map[string]*fakeUser
	batches map[string][]record
	nextID  int

	// Misbehaviour.
	loseEvery    int  // silently drop every n-th acknowledged record
	dupEvery     int  // list every n-th record twice
	unauthOnce   bool // answer each user's first storage request with 401
	backoffOnce  bool // send X-Weave-Backoff: 1 once per user
	retryAfterAt int  // answer the n-th POST with 503 + Retry-After
	tokenSeconds int  // token duration the fake token server grants (default 3600)
	// clockAhead puts the server's clock ahead of the client's; Hawk ts
	// more than a minute off its clock get a 401 with its time.
	clockAhead time.Duration
	// staleTimestamps answers authorized requests with X-Weave-Timestamp
	// 0.00, as go-syncstorage does when it echoes an empty account's
	// X-Last-Modified.
	staleTimestamps bool

	posts, records  int
	infoCollections int           // GET info/collections answered: one per session
	infoDelay       time.Duration // added to every info/collections answer
	srv             *httptest.Server
}

type fakeUser struct {
	lastMod   weave.Timestamp
	colls     map[string]map[string]fakeRecord
	collMod   map[string]weave.Timestamp
	seen      bool
	backedOff bool
}

type fakeRecord struct {
	payload string
	mod     weave.Timestamp
}

func newFakeSync(t *testing.T) *fakeSync {
	f := &fakeSync{t: t, users: map[string]*fakeUser{}, batches: map[string][]record{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSync) user(uid string) *fakeUser {
	u := f.users[uid]
	if u == nil {
		u = &fakeUser{colls: map[string]map[string]fakeRecord{}, collMod: map[string]weave.Timestamp{}}
		f.users[uid] = u
	}
	return u
}

// tick returns a write timestamp newer than anything the user has.
func (u *fakeUser) tick() weave.Timestamp {
	t := max(weave.TimestampAt(time.Now()), u.lastMod+10)
	u.lastMod = t
	return t
}

func (f *fakeSync) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-Weave-Timestamp", weave.TimestampAt(time.Now().Add(f.clockAhead)).String())
	if r.URL.Path == "/1.0/sync/1.5" {
		f.token(w, r)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "1.5" {
		http.NotFound(w, r)
		return
	}
	uid, rest := parts[1], parts[2:]
	if !f.authorized(r, uid) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.staleTimestamps {
		w.Header().Set("X-Weave-Timestamp", "0.00")
	}
	u := f.user(uid)
	if f.unauthOnce && !u.seen {
		u.seen = true
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	u.seen = true
	if f.backoffOnce && !u.backedOff {
		u.backedOff = true
		w.Header().Set("X-Weave-Backoff", "1")
	}
	switch {
	case r.Method == "GET" && rest[0] == "info" && rest[1] == "configuration":
		writeJSON(w, 200, weave.DefaultLimits())
	case r.Method == "GET" && rest[0] == "info" && rest[1] == "collections":
		f.infoCollections++
		if f.infoDelay > 0 {
			f.mu.Unlock()
			time.Sleep(f.infoDelay)
			f.mu.Lock()
		}
		m := map[string]string{}
		for c, ts := range u.collMod {
			m[c] = ts.String()
		}
		var b strings.Builder
		b.WriteString("{")
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%q:%s", k, m[k])
		}
		b.WriteString("}")
		w.WriteHeader(200)
		io.WriteString(w, b.String())
	case rest[0] == "storage" && len(rest) == 1 && r.Method == "DELETE":
		u.colls = map[string]map[string]fakeRecord{}
		u.collMod = map[string]weave.Timestamp{}
		writeJSON(w, 200, map[string]any{})
	case rest[0] == "storage" && len(rest) == 3 && rest[1] == "meta":
		f.meta(w, r, u)
	case rest[0] == "storage" && len(rest) == 2:
		f.collection(w, r, u, rest[1])
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeSync) authorized(r *http.Request, uid string) bool {
	h := r.Header.Get("Authorization")
	i := strings.Index(h, `id="`)
	if !strings.HasPrefix(h, "Hawk ") || i < 0 {
		return false
	}
	id := h[i+4:]
	id = id[:strings.IndexByte(id, '"')]
	raw, err := base64.URLEncoding.DecodeString(id)
	if err != nil || len(raw) < 32 {
		return false
	}
	var p struct {
		UID     int64   `json:"uid"`
		Expires float64 `json:"expires"`
	}
	if json.Unmarshal(raw[:len(raw)-32], &p) != nil {
		return false
	}
	if f.clockAhead != 0 {
		m := regexp.MustCompile(`ts="(\d+)"`).FindStringSubmatch(h)
		if m == nil {
			return false
		}
		ts, _ := strconv.ParseInt(m[1], 10, 64)
		if d := ts - time.Now().Add(f.clockAhead).Unix(); d > 60 || d < -60 {
			return false
		}
	}
	return strconv.FormatInt(p.UID, 10) == uid && p.Expires > float64(time.Now().Unix())
}

func (f *fakeSync) token(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || r.Header.Get("X-KeyID") == "" {
		w.WriteHeader(401)
		return
	}
	// The fake trusts the JWT's sub without checking the signature; the
	// real token server's tests cover that.
	parts := strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Sub string }
	json.Unmarshal(claims, &c)
	uid := 0
	for _, ch := range c.Sub[:6] {
		uid = uid*16 + strings.IndexRune("0123456789abcdef", ch)
	}
	id, key, err := tokenlib.Sign("fake-secret", tokenlib.Payload{UID: int64(uid + 1), Node: f.srv.URL, Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		f.t.Error(err)
	}
	d := f.tokenSeconds
	if d == 0 {
		d = 3600
	}
	writeJSON(w, 200, map[string]any{"id": id, "key": key, "uid": uid + 1, "duration": d,
		"api_endpoint": f.srv.URL + "/1.5/" + strconv.Itoa(uid+1)})
}

func (f *fakeSync) meta(w http.ResponseWriter, r *http.Request, u *fakeUser) {
	rec, ok := u.colls["meta"]["global"]
	switch r.Method {
	case "GET":
		if !ok {
			w.WriteHeader(404)
			return
		}
		writeJSON(w, 200, map[string]any{"id": "global", "payload": rec.payload})
	case "PUT":
		var in record
		json.NewDecoder(r.Body).Decode(&in)
		if u.colls["meta"] == nil {
			u.colls["meta"] = map[string]fakeRecord{}
		}
		ts := u.tick()
		u.colls["meta"]["global"] = fakeRecord{payload: in.Payload, mod: ts}
		u.collMod["meta"] = ts
		w.Header().Set("X-Last-Modified", ts.String())
		writeJSON(w, 200, json.RawMessage(ts.String()))
	}
}

func (f *fakeSync) collection(w http.ResponseWriter, r *http.Request, u *fakeUser, coll string) {
	q := r.URL.Query()
	switch r.Method {
	case "GET":
		newer := weave.Timestamp(0)
		if s := q.Get("newer"); s != "" {
			newer, _ = weave.ParseTimestamp(s)
		}
		type out struct {
			ID      string          `json:"id"`
			Payload string          `json:"payload"`
			Mod     weave.Timestamp `json:"modified"`
		}
		list := []out{}
		n := 0
		for id, rec := range u.colls[coll] {
			if rec.mod > newer {
				list = append(list, out{id, rec.payload, rec.mod})
				n++
				if f.dupEvery > 0 && n%f.dupEvery == 0 {
					list = append(list, out{id, rec.payload, rec.mod})
				}
			}
		}
		writeJSON(w, 200, list)
	case "DELETE":
		delete(u.colls, coll)
		delete(u.collMod, coll)
		writeJSON(w, 200, map[string]any{"modified": u.tick()})
	case "POST":
		f.posts++
		if f.retryAfterAt > 0 && f.posts == f.retryAfterAt {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 503, 0)
			return
		}
		if s := r.Header.Get("X-If-Unmodified-Since"); s != "" {
			ius, err := weave.ParseTimestamp(s)
			if err != nil {
				writeJSON(w, 400, 1)
				return
			}
			if u.collMod[coll] > ius {
				writeJSON(w, 412, 0)
				return
			}
		}
		var in []record
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeJSON(w, 400, 6)
			return
		}
		ids := make([]string, len(in))
		for i, rec := range in {
			ids[i] = rec.ID
		}
		batch, commit := q.Get("batch"), q.Get("commit") == "true"
		if batch != "" && !(batch == "true" && commit) {
			id := batch
			if batch == "true" {
				f.nextID++
				id = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(f.nextID)))
			} else if _, ok := f.batches[id]; !ok {
				writeJSON(w, 400, 0)
				return
			}
			f.batches[id] = append(f.batches[id], in...)
			if !commit {
				writeJSON(w, 202, map[string]any{"batch": id, "success": ids, "failed": map[string]string{}})
				return
			}
			in = f.batches[id]
			delete(f.batches, id)
		}
		ts := u.tick()
		if u.colls[coll] == nil {
			u.colls[coll] = map[string]fakeRecord{}
		}
		for _, rec := range in {
			f.records++
			if f.loseEvery > 0 && f.records%f.loseEvery == 0 {
				continue
			}
			u.colls[coll][rec.ID] = fakeRecord{payload: rec.Payload, mod: ts}
		}
		u.collMod[coll] = ts
		w.Header().Set("X-Last-Modified", ts.String())
		writeJSON(w, 200, map[string]any{"modified": ts, "success": ids, "failed": map[string]string{}})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fakeConfig(f *fakeSync) Config {
	c := DefaultConfig()
	c.Mode = ModeDirect
	c.Target = f.srv.URL
	c.MasterSecret = "fake-secret"
	c.Users = 8
	c.Concurrency = 4
	c.Duration = 0
	c.Sessions = 300
	c.Seed = 99
	c.Verify = true
	return c
}

func TestRunAgainstFake(t *testing.T) {
	f := newFakeSync(t)
	var progress strings.Builder
	rep, err := Run(t.Context(), fakeConfig(f), &progress)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
	if !rep.OK() {
		t.Fatalf("run not OK")
	}
	if rep.Sessions.Started != 300 || rep.Sessions.Completed != 300 || rep.StopReason != StopSessions {
		t.Errorf("sessions %+v, stop %s", rep.Sessions, rep.StopReason)
	}
	v := rep.Verify
	if v.Expected == 0 || v.Found != v.Expected || v.Users == 0 {
		t.Errorf("verify: %+v", v)
	}
	if !strings.Contains(progress.String(), "sessions 300") || strings.Contains(progress.String(), "\r") {
		t.Errorf("final progress line missing or not plain: %q", progress.String())
	}
	// The JSON report round-trips and carries the per-kind percentiles.
	var js strings.Builder
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil {
		t.Fatal(err)
	}
	if back.Total.Count != rep.Total.Count || len(back.Requests) != len(rep.Requests) || back.Verify == nil ||
		!strings.Contains(js.String(), `"p99_ms"`) || back.Seed != 99 {
		t.Errorf("JSON report lost data:\n%s", js.String())
	}
	kinds := map[string]int64{}
	for _, k := range rep.Requests {
		kinds[k.Kind] = k.Count
	}
	for _, k := range []string{"info_configuration", "info_collections", "meta_get", "coll_get", "coll_post", "batch_open", "batch_commit"} {
		if kinds[k] == 0 {
			t.Errorf("no %s requests in %v", k, kinds)
		}
	}
	if kinds["info_collections"] != 300 || kinds["info_configuration"] != 8 {
		t.Errorf("info_collections %d (want one per session), info_configuration %d (want one per user)",
			kinds["info_collections"], kinds["info_configuration"])
	}
	if kinds["token"] != 0 {
		t.Errorf("token requests in direct mode: %d", kinds["token"])
	}
	if rep.TokenRefreshes != 8 {
		t.Errorf("token refreshes %d, want 8 (one per user)", rep.TokenRefreshes)
	}
}

// The session choices depend only on the seed: two runs with the same seed
// and session count send the same requests.
func TestRunDeterministic(t *testing.T) {
	counts := func() map[string]int64 {
		f := newFakeSync(t)
		c := fakeConfig(f)
		c.Verify = false
		c.Sessions = 150
		rep, err := Run(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int64{}
		for _, k := range rep.Requests {
			m[k.Kind] = k.Count
		}
		// meta_put (and so the bytes sent) depends on which user ran which
		// session, not only on the seed.
		delete(m, "meta_put")
		return m
	}
	a, b := counts(), counts()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed, different mix:\n%v\n%v", a, b)
	}
}

func TestVerifyFindsLostAndDuplicated(t *testing.T) {
	f := newFakeSync(t)
	f.loseEvery = 500
	f.dupEvery = 50
	c := fakeConfig(f)
	c.Sessions = 150
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verify
	if v.Lost == 0 || v.Duplicated == 0 || v.OK() || rep.OK() {
		t.Fatalf("verify missed the damage: %+v", v)
	}
	if v.Altered != 0 || v.Unexpected != 0 {
		t.Errorf("false positives: %+v", v)
	}
	if len(v.Samples) == 0 {
		t.Error("no samples")
	}
}

func TestAuthRetryAndBackoff(t *testing.T) {
	f := newFakeSync(t)
	f.unauthOnce = true
	f.backoffOnce = true
	f.retryAfterAt = 10
	c := fakeConfig(f)
	c.Sessions = 60
	c.MaxBackoff = 200 * time.Millisecond // bounds the server's 1 s
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AuthRetries != 8 {
		t.Errorf("auth retries %d, want one per user", rep.AuthRetries)
	}
	if rep.Backoff.WeaveBackoff != 8 || rep.Backoff.RetryAfter != 1 || rep.Sessions.BackedOff != 1 {
		t.Errorf("backoff %+v, sessions %+v", rep.Backoff, rep.Sessions)
	}
	if rep.Backoff.WaitSec > 8*0.2+0.2+0.1 {
		t.Errorf("waited %.2fs: MaxBackoff not applied", rep.Backoff.WaitSec)
	}
	// The 503 is an error of that request; nothing else failed, and the
	// verifier tolerates the POST whose fate is unknown.
	if rep.Total.Errors != 1 || rep.Total.ErrorsByStatus["503"] != 1 {
		t.Errorf("errors %+v", rep.Total.ErrorsByStatus)
	}
	if v := rep.Verify; v.Lost+v.Duplicated+v.Altered+v.Unexpected != 0 || v.Incomplete {
		t.Errorf("verify %+v", v)
	}
}

func TestTokenServerModeAgainstFake(t *testing.T) {
	f := newFakeSync(t)
	dir := t.TempDir()
	keyFile, _, err := Keygen(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := fakeConfig(f)
	c.Mode, c.MasterSecret, c.KeyFile = ModeTokenServer, "", keyFile
	c.Sessions = 50
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Fatal(b.String())
	}
	var tokens int64
	for _, k := range rep.Requests {
		if k.Kind == "token" {
			tokens = k.Count
		}
	}
	if tokens != 8 {
		t.Errorf("token requests %d, want one per user", tokens)
	}
}

// Tokens are renewed at half their duration.
func TestTokenRefreshAtHalfDuration(t *testing.T) {
	f := newFakeSync(t)
	f.tokenSeconds = 2
	keyFile, _, err := Keygen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := fakeConfig(f)
	c.Mode, c.MasterSecret, c.KeyFile = ModeTokenServer, "", keyFile
	c.Users, c.Concurrency = 2, 2
	c.Sessions, c.Duration = 0, 2500*time.Millisecond
	c.Verify = false
	c.ThinkTime = 50 * time.Millisecond
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Each user fetches at 0 s, 1 s and 2 s (the last one may fall after
	// the stop on a slow machine).
	if rep.TokenRefreshes < 4 || rep.TokenRefreshes > 7 || !rep.OK() {
		t.Errorf("token refreshes %d in 2.5 s with 2 s tokens and 2 users; ok=%v", rep.TokenRefreshes, rep.OK())
	}
}

func TestDurationBoundAndInterrupt(t *testing.T) {
	f := newFakeSync(t)
	c := fakeConfig(f)
	c.Sessions = 0
	c.Duration = 500 * time.Millisecond
	c.Verify = false
	start := time.Now()
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The bound is generous: the machine may be loaded; the grace period
	// alone is 10 s.
	if el := time.Since(start); el > 8*time.Second || rep.StopReason != StopDuration {
		t.Errorf("ran %v, stop reason %s", el, rep.StopReason)
	}

	ctx, cancel := contextWithTimeout(t, 300*time.Millisecond)
	defer cancel()
	c.Duration = time.Hour
	rep, err = Run(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.StopReason != StopInterrupted {
		t.Errorf("stop reason %s, want interrupted", rep.StopReason)
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
