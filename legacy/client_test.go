package legacy_test

import (
	"context"
	"crypto/sha1"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
	weavehttp "github.com/weave-sync/weave/http"
	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/legacy"
	"github.com/weave-sync/weave/legacy/passwd"
	_ "github.com/weave-sync/weave/mysql"
	_ "github.com/weave-sync/weave/postgres"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// backend is one database kind the 1.1 tests run on: the token database
// (with the 1.1 accounts) and every node's shard live on it.
type backend struct {
	name   string
	fresh  func(t testing.TB) string
	store  func(ctx context.Context, dsn string) (fleet.Shard, error)
	tokens func(ctx context.Context, dsn string) (*sqlstore.TokenDB, error)
}

var backends = []backend{
	{"sqlite",
		func(t testing.TB) string {
			return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "db.sqlite"))
		},
		func(ctx context.Context, dsn string) (fleet.Shard, error) {
			return sqlstore.OpenStore(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
		},
		func(ctx context.Context, dsn string) (*sqlstore.TokenDB, error) {
			return sqlstore.OpenTokenDB(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		}},
	{"mysql", dbtest.MySQL,
		func(ctx context.Context, dsn string) (fleet.Shard, error) {
			return sqlstore.OpenStore(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
		},
		func(ctx context.Context, dsn string) (*sqlstore.TokenDB, error) {
			return sqlstore.OpenTokenDB(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		}},
	{"postgres", dbtest.Postgres,
		func(ctx context.Context, dsn string) (fleet.Shard, error) {
			return sqlstore.OpenStore(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.StoreOptions{})
		},
		func(ctx context.Context, dsn string) (*sqlstore.TokenDB, error) {
			return sqlstore.OpenTokenDB(ctx, dsn, sqlstore.PoolOptions{}, true, sqlstore.TokenDBOptions{})
		}},
}

// server is a weave 1.1 front end on two path-prefixed nodes, wired as
// `weave serve --legacy` wires it: User API at the root, each node's 1.1
// storage in front of its (absent here) 1.5 API, node states and move
// marks from a fleet.Watcher.
type server struct {
	t        *testing.T
	ctx      context.Context
	url      string
	svc      *legacy.Service
	tokens   *sqlstore.TokenDB
	users    *sqlstore.LegacyUserStore
	nodes    []weave.Node
	shards   map[int64]fleet.Shard
	watcher  *fleet.Watcher
	migrator *fleet.Migrator

	mu       sync.Mutex
	captchas map[string]string
}

type serverOpts struct {
	signup legacy.SignupMode
	quota  int64
	alert  *legacy.Alert
	closed bool // NewUsersDisabled
	// timeouts, when set, puts weave serve's slow-client deadlines in
	// front of every request, as serve does.
	timeouts *weavehttp.Timeouts
	// wrap, when set, stands between the 1.1 front end and each node's
	// store (to inject store errors).
	wrap func(fleet.Shard) fleet.Shard
}

func newServer(t *testing.T, b backend, o serverOpts) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &server{t: t, ctx: ctx, shards: map[int64]fleet.Shard{}, captchas: map[string]string{}}
	var h http.Handler
	var front http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) })
	if o.timeouts != nil {
		front = o.timeouts.Handler(front)
	}
	hs := httptest.NewServer(front)
	t.Cleanup(hs.Close)
	s.url = hs.URL
	// The token database shares node 1's database, as a single weave.db
	// does; node 2 has its own.
	tokenDSN := b.fresh(t)
	tdb, err := b.tokens(ctx, tokenDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tdb.Close() })
	s.tokens, s.users = tdb, sqlstore.NewLegacyUserStore(tdb.DB())
	if o.signup == "" {
		o.signup = legacy.SignupCaptcha
	}
	s.svc, err = legacy.New(legacy.Config{
		Users: s.users, Tokens: tdb, PublicURL: hs.URL, Signup: o.signup,
		WeaveSecret: "qa-secret", CaptchaOverride: "override-secret", QuotaBytes: o.quota, Alert: o.alert, NewUsersDisabled: o.closed,
		// Cheap hashes: argon2 at full cost is slow under -race.
		KDF: passwd.Params{Memory: 64, Time: 1, Threads: 1},
		// As serve wires it: purge on the user's node, then refuse its uid.
		DeleteSyncData: func(ctx context.Context, email string) error {
			if _, err := s.migrator.ReplaceAccount(ctx, email); err != nil {
				return err
			}
			return s.watcher.Refresh(ctx)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	legacy.OnCaptcha(s.svc, func(id, answer string) {
		s.mu.Lock()
		s.captchas[id] = answer
		s.mu.Unlock()
	})
	s.watcher = fleet.NewWatcher(tdb, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	rt := &fleet.Router{Fallback: http.NotFoundHandler()}
	for i := range 2 {
		dsn := tokenDSN
		if i > 0 {
			dsn = b.fresh(t)
		}
		n, err := tdb.AddNode(ctx, weave.Node{URL: fmt.Sprintf("%s/node%d", hs.URL, i+1), Capacity: 100, DatabaseURL: dsn})
		if err != nil {
			t.Fatal(err)
		}
		shard, err := b.store(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shard.Close() })
		s.nodes = append(s.nodes, n)
		s.shards[n.ID] = shard
		s.watcher.Watch(n.URL, shard)
		front := shard
		if o.wrap != nil {
			front = o.wrap(shard)
		}
		if err := rt.Add(n.URL, s.svc.Storage(n.URL, front, s.watcher.Status(n.URL), http.NotFoundHandler())); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.watcher.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	go s.watcher.Run(ctx)
	s.migrator = &fleet.Migrator{Dir: tdb, Settle: 100 * time.Millisecond,
		Open: func(ctx context.Context, n weave.Node) (fleet.Shard, error) { return b.store(ctx, n.DatabaseURL) }}
	t.Cleanup(func() { s.migrator.Close() })
	h = s.svc.UserAPI(rt)
	return s
}

// setState sets a node's state and waits until the watcher has it.
func (s *server) setState(i int, st weave.NodeState, retryAfter, backoff time.Duration) {
	s.t.Helper()
	if err := s.tokens.SetNodeState(s.ctx, s.nodes[i].ID, st, retryAfter, backoff); err != nil {
		s.t.Fatal(err)
	}
	if err := s.watcher.Refresh(s.ctx); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) captchaAnswer(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.captchas[id]
}

// client is what the UXP Sync client does, request by request.
type client struct {
	t         *testing.T
	serverURL string // services.sync.serverURL, with its trailing slash
	username  string
	password  string
	cluster   string // services.sync.clusterURL
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, url string, body string, hdr map[string]string) resp {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.password != "" {
		req.SetBasicAuth(c.username, c.password)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

// usernameFromAccount is identity.js's rule, written from the client.
func usernameFromAccount(account string) string {
	a := strings.ToLower(account)
	if regexp.MustCompile(`^[a-z0-9._-]+$`).MatchString(a) {
		return a
	}
	sum := sha1.Sum([]byte(a))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))
}

var twoDecimals = regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`)

// storage sends a storage request to the cluster, handling a 401 as the
// client does: look the node up again, retry on the new node once.
func (c *client) storage(method, path, body string, hdr map[string]string) resp {
	c.t.Helper()
	r := c.do(method, c.cluster+"1.1/"+c.username+"/"+path, body, hdr)
	if r.status == http.StatusUnauthorized {
		old := c.cluster
		c.findCluster()
		if c.cluster != old {
			r = c.do(method, c.cluster+"1.1/"+c.username+"/"+path, body, hdr)
		}
	}
	if r.status == http.StatusOK {
		if ts := r.header.Get("X-Weave-Timestamp"); !twoDecimals.MatchString(ts) {
			c.t.Fatalf("%s %s: X-Weave-Timestamp %q is not seconds with two decimals", method, path, ts)
		}
	}
	return r
}

func (c *client) findCluster() {
	c.t.Helper()
	r := c.do("GET", c.serverURL+"user/1.0/"+c.username+"/node/weave", "", nil)
	if r.status != http.StatusOK || !strings.HasSuffix(r.body, "/") {
		c.t.Fatalf("node/weave = %d %q, want 200 and a URL with a trailing slash", r.status, r.body)
	}
	c.cluster = r.body
}

type record struct {
	ID        string `json:"id"`
	Modified  any    `json:"modified,omitempty"`
	SortIndex *int64 `json:"sortindex,omitempty"`
	Payload   string `json:"payload"`
	TTL       *int64 `json:"ttl,omitempty"`
}

func payload(coll string, i int) string {
	return fmt.Sprintf(`{"ciphertext":"%s-%04d","IV":"aXY=","hmac":"%064x"}`, coll, i, i)
}

func bsoID(coll string, i int) string { return fmt.Sprintf("%.4s%08d", coll+"____", i) }

// TestUXPClient is a Pale Moon/Basilisk setup and sync from the client's
// point of view, on every database: the wizard's server checks, sign-up
// with the captcha page and with X-Weave-Secret, node lookup, a first sync
// of several collections (uploads of 100, newline downloads of 50 ids), a
// move of the user to another node in the middle of it, a second device
// receiving everything, and a password change.
func TestUXPClient(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testUXPClient(t, b) })
	}
}

func testUXPClient(t *testing.T, b backend) {
	srv := newServer(t, b, serverOpts{})
	// Node 2 takes no new users yet, so the account starts on node 1.
	srv.setState(1, weave.NodeBackoff, 0, time.Second)

	account := "Jöhn.Doe@Example.com"
	a := &client{t: t, serverURL: srv.url + "/", username: usernameFromAccount(account), password: ""}
	if len(a.username) != 32 {
		t.Fatalf("username %q", a.username)
	}

	// Wizard: a custom server is accepted when user/1.0/a answers exactly
	// 0 or 1; then the name's availability.
	if r := a.do("GET", a.serverURL+"user/1.0/a", "", nil); r.status != 200 || r.body != "0" {
		t.Fatalf("probe = %d %q", r.status, r.body)
	}
	if r := a.do("GET", a.serverURL+"user/1.0/"+a.username, "", nil); r.body != "0" {
		t.Fatalf("availability = %q", r.body)
	}

	// The captcha page carries the two reCAPTCHA v1 fields the wizard reads.
	page := a.do("GET", a.serverURL+"misc/1.0/captcha_html", "", nil)
	if page.status != 200 || !strings.Contains(page.body, `id="recaptcha_response_field"`) || !strings.Contains(page.body, "data:image/png;base64,") {
		t.Fatalf("captcha_html = %d %q", page.status, page.body)
	}
	m := regexp.MustCompile(`id="recaptcha_challenge_field"[^>]*value="([0-9a-f]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no challenge field in %q", page.body)
	}
	challenge := m[1]
	create := func(c *client, resp string, hdr map[string]string) resp {
		body, _ := json.Marshal(map[string]any{"password": "correct horse", "email": account,
			"captcha-challenge": challenge, "captcha-response": resp})
		return c.do("PUT", c.serverURL+"user/1.0/"+c.username, string(body), hdr)
	}
	// A wrong answer is the bare code 2, and uses up the captcha.
	if r := create(a, "WRONG1", nil); r.status != 400 || r.body != "2" {
		t.Fatalf("wrong captcha = %d %q", r.status, r.body)
	}
	page = a.do("GET", a.serverURL+"misc/1.0/captcha_html", "", nil)
	challenge = regexp.MustCompile(`value="([0-9a-f]{32})"`).FindStringSubmatch(page.body)[1]
	if r := create(a, strings.ToLower(srv.captchaAnswer(challenge)), nil); r.status != 200 || r.body != a.username {
		t.Fatalf("create = %d %q", r.status, r.body)
	}
	if r := create(a, "x", nil); r.status != 400 || r.body != "4" {
		t.Fatalf("create again = %d %q, want 400 4", r.status, r.body)
	}
	if r := a.do("GET", a.serverURL+"user/1.0/"+a.username, "", nil); r.body != "1" {
		t.Fatalf("availability after create = %q", r.body)
	}
	// The QA hook: services.sync.admin-secret sent as X-Weave-Secret skips
	// the captcha; a wrong secret does not.
	qa := &client{t: t, serverURL: a.serverURL, username: usernameFromAccount("qa@example.com")}
	qaBody := `{"password":"qa password","email":"qa@example.com","captcha-challenge":null,"captcha-response":null}`
	if r := qa.do("PUT", qa.serverURL+"user/1.0/"+qa.username, qaBody, map[string]string{"X-Weave-Secret": "nope"}); r.status != 400 || r.body != "2" {
		t.Fatalf("wrong secret = %d %q", r.status, r.body)
	}
	if r := qa.do("PUT", qa.serverURL+"user/1.0/"+qa.username, qaBody, map[string]string{"X-Weave-Secret": "qa-secret"}); r.status != 200 {
		t.Fatalf("create with secret = %d %q", r.status, r.body)
	}

	// Login: node lookup (with Basic credentials, as the client sends
	// them), then info/collections on the node.
	a.password = "wrong password"
	if r := a.do("GET", a.serverURL+"user/1.0/"+a.username+"/node/weave", "", nil); r.status != 400 {
		t.Fatalf("node lookup with a wrong password = %d", r.status)
	}
	a.password = "correct horse"
	a.findCluster()
	if a.cluster != srv.nodes[0].URL+"/" {
		t.Fatalf("cluster %q, want node 1", a.cluster)
	}
	srv.setState(1, weave.NodeUp, 0, 0)
	if r := a.storage("GET", "info/collections", "", nil); r.status != 200 || r.body != "{}" {
		t.Fatalf("info/collections = %d %q", r.status, r.body)
	}

	// First sync: meta/global and keys, then the engines' uploads in POSTs
	// of at most 100 records.
	put := func(path, payload string) {
		r := a.storage("PUT", "storage/"+path, fmt.Sprintf(`{"id":%q,"payload":%q}`, path[strings.LastIndexByte(path, '/')+1:], payload), nil)
		if r.status != 200 || r.body != r.header.Get("X-Weave-Timestamp") {
			t.Fatalf("PUT %s = %d %q (X-Weave-Timestamp %q)", path, r.status, r.body, r.header.Get("X-Weave-Timestamp"))
		}
	}
	put("meta/global", `{"syncID":"abcdefghijkl","storageVersion":5,"engines":{}}`)
	put("crypto/keys", payload("keys", 0))
	counts := map[string]int{"bookmarks": 230, "history": 260, "passwords": 40, "forms": 120, "tabs": 2, "clients": 1}
	ttls := map[string]int64{"history": 5_184_000, "forms": 5_184_000, "tabs": 604_800, "clients": 1_814_400}
	colls := slices.Sorted(func(yield func(string) bool) {
		for c := range counts {
			if !yield(c) {
				return
			}
		}
	})
	var uid int64
	moved := false
	for _, coll := range colls {
		n := counts[coll]
		for start := 0; start < n; start += 100 {
			if !moved && coll == "history" && start == 100 {
				// Halfway: the operator moves the user to node 2. The
				// client's next request gets 401, it looks its node up
				// again and carries on there, with nothing re-uploaded.
				tu, err := srv.tokens.GetUser(srv.ctx, weave.LegacyTokenEmail(a.username))
				if err != nil {
					t.Fatal(err)
				}
				uid = tu.UID
				if _, err := srv.migrator.MigrateUser(srv.ctx, uid, srv.nodes[1].URL); err != nil {
					t.Fatal(err)
				}
				moved = true
			}
			var recs []record
			for i := start; i < min(start+100, n); i++ {
				si := int64(i % 7)
				r := record{ID: bsoID(coll, i), Payload: payload(coll, i), SortIndex: &si}
				if ttl, ok := ttls[coll]; ok {
					r.TTL = &ttl
				}
				recs = append(recs, r)
			}
			body, _ := json.Marshal(recs)
			r := a.storage("POST", "storage/"+coll, string(body), nil)
			var res struct {
				Modified json.Number         `json:"modified"`
				Success  []string            `json:"success"`
				Failed   map[string][]string `json:"failed"`
			}
			if err := json.Unmarshal([]byte(r.body), &res); err != nil || r.status != 200 {
				t.Fatalf("POST %s = %d %q", coll, r.status, r.body)
			}
			if len(res.Success) != len(recs) || len(res.Failed) != 0 || string(res.Modified) != r.header.Get("X-Weave-Timestamp") {
				t.Fatalf("POST %s: %d stored, failed %v, modified %s vs header %s", coll, len(res.Success), res.Failed, res.Modified, r.header.Get("X-Weave-Timestamp"))
			}
		}
	}
	if !moved || a.cluster != srv.nodes[1].URL+"/" {
		t.Fatalf("after the move the client is on %q, want node 2", a.cluster)
	}
	// The old node has nothing left of the user; the new one everything.
	if _, err := srv.shards[srv.nodes[0].ID].GetBSO(srv.ctx, uid, "bookmarks", bsoID("bookmarks", 0)); err == nil {
		t.Fatal("the old node still serves the moved user's data")
	}

	// A second device signs in with the same account and receives it all.
	bc := &client{t: t, serverURL: a.serverURL, username: a.username, password: a.password}
	bc.findCluster()
	if bc.cluster != srv.nodes[1].URL+"/" {
		t.Fatalf("second device's cluster %q", bc.cluster)
	}
	r := bc.storage("GET", "info/collections", "", nil)
	var stamps map[string]json.Number
	if err := json.Unmarshal([]byte(r.body), &stamps); err != nil || r.status != 200 {
		t.Fatalf("info/collections = %d %q", r.status, r.body)
	}
	if r.header.Get("X-Weave-Records") != fmt.Sprint(len(counts)+2) {
		t.Fatalf("X-Weave-Records = %q", r.header.Get("X-Weave-Records"))
	}
	for c, ts := range stamps {
		if !twoDecimals.MatchString(string(ts)) {
			t.Fatalf("info/collections %s = %s: not two decimals", c, ts)
		}
	}
	newlines := map[string]string{"Accept": "application/newlines"}
	for _, coll := range colls {
		if _, ok := stamps[coll]; !ok {
			t.Fatalf("%s missing from info/collections %v", coll, stamps)
		}
		// The backlog path: ids by sortindex, then full records 50 ids at
		// a time as newline-separated JSON.
		r := bc.storage("GET", "storage/"+coll+"?newer=0&sort=index&limit=5000", "", nil)
		var ids []string
		if err := json.Unmarshal([]byte(r.body), &ids); err != nil || len(ids) != counts[coll] {
			t.Fatalf("%s ids: %d %v (%q)", coll, len(ids), err, r.body[:min(len(r.body), 80)])
		}
		got := map[string]string{}
		for len(ids) > 0 {
			n := min(50, len(ids))
			r := bc.storage("GET", "storage/"+coll+"?full=1&ids="+strings.Join(ids[:n], ","), "", newlines)
			ids = ids[n:]
			if r.header.Get("Content-Type") != "application/newlines" || !strings.HasSuffix(r.body, "\n") {
				t.Fatalf("newlines answer %q: %q", r.header.Get("Content-Type"), r.body[:min(len(r.body), 80)])
			}
			lines := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
			if len(lines) != n || r.header.Get("X-Weave-Records") != fmt.Sprint(n) {
				t.Fatalf("%s: %d lines for %d ids", coll, len(lines), n)
			}
			for _, l := range lines {
				var w struct {
					ID        string          `json:"id"`
					Modified  json.RawMessage `json:"modified"`
					SortIndex int64           `json:"sortindex"`
					Payload   string          `json:"payload"`
				}
				if err := json.Unmarshal([]byte(l), &w); err != nil || !twoDecimals.Match(w.Modified) {
					t.Fatalf("line %q: %v", l, err)
				}
				got[w.ID] = w.Payload
			}
		}
		for i := range counts[coll] {
			if got[bsoID(coll, i)] != payload(coll, i) {
				t.Fatalf("%s record %d: got %q", coll, i, got[bsoID(coll, i)])
			}
		}
		// The incremental path sees nothing newer than the stamp.
		if r := bc.storage("GET", "storage/"+coll+"?full=1&newer="+string(stamps[coll]), "", newlines); r.body != "" {
			t.Fatalf("%s newer than its own stamp: %q", coll, r.body)
		}
	}
	if r := bc.storage("GET", "storage/meta/global", "", nil); !strings.Contains(r.body, `"payload":"{\"syncID\"`) {
		t.Fatalf("meta/global = %q", r.body)
	}

	// Password change from the first device; the second device's old
	// password stops working; the data stays.
	r = a.do("POST", a.serverURL+"user/1.0/"+a.username+"/password", "new horse battery", nil)
	if r.status != 200 || r.body != "success" {
		t.Fatalf("password change = %d %q", r.status, r.body)
	}
	if r := bc.do("GET", bc.cluster+"1.1/"+bc.username+"/info/collections", "", nil); r.status != 401 {
		t.Fatalf("old password after the change = %d", r.status)
	}
	bc.password = "new horse battery"
	if r := bc.storage("GET", "info/collection_counts", "", nil); r.status != 200 || !strings.Contains(r.body, `"history":260`) {
		t.Fatalf("collection_counts with the new password = %d %q", r.status, r.body)
	}
}
