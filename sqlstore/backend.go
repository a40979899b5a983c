package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Backends register here, as database/sql drivers do with sql.Register:
// packages sqlite, mysql and postgres each register theirs in init, and a
// program links the ones it wants (cmd/weave links all three). The registry
// is in sqlstore rather than the root because its currency is *DB and
// Migration: the root package knows nothing of SQL, and every backend
// imports sqlstore already.

// Backend is one SQL technology weave runs on.
type Backend struct {
	// Name is the backend's and its Dialect's name: "sqlite", "mysql",
	// "postgres".
	Name string
	// Schemes are the URL schemes it opens ("postgres", "postgresql").
	Schemes []string
	// Form is the URL form shown in messages.
	Form string
	// DefaultPort is the server's TCP port when a URL names none ("" for
	// embedded databases).
	DefaultPort string
	// Open connects to the database of a URL with the given pools and
	// checks that it answers; it applies no migrations.
	Open func(ctx context.Context, url string, opts PoolOptions) (*DB, error)
	// OpenForeign opens a database another program owns (a server to
	// import from) for reading, changing nothing about it. Nil: Open does
	// that already.
	OpenForeign func(ctx context.Context, url string, opts PoolOptions) (*DB, error)
	// Migrations holds the backend's own migration files: a directory
	// migrations/<set>/ per schema set (storage, tokens, accounts, ...),
	// files NNNN_description.sql, for the versions whose SQL differs beyond
	// what DDL spells; the other versions are shared (sqlstore's
	// migrations/<set>/).
	Migrations fs.FS
	// DDL spells the shared migrations for this backend.
	DDL DDL
	// BackupTool is the tool that backs up its databases, named in
	// messages; "" when `weave db backup` does.
	BackupTool string
	// Redact hides the secrets of a URL for messages; nil: the URL's
	// password, as for every URL-shaped DSN.
	Redact func(url string) string
}

var registry struct {
	sync.RWMutex
	byScheme map[string]*Backend
	all      []*Backend
}

// Register makes a backend available to Lookup and Open. It panics if a
// scheme is registered twice or the backend lacks Open or Migrations.
func Register(b *Backend) {
	if b.Name == "" || len(b.Schemes) == 0 || b.Open == nil || b.Migrations == nil {
		panic("sqlstore: Register of an incomplete backend " + b.Name)
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.byScheme == nil {
		registry.byScheme = map[string]*Backend{}
	}
	for _, s := range b.Schemes {
		if _, dup := registry.byScheme[s]; dup {
			panic("sqlstore: Register called twice for scheme " + s)
		}
		registry.byScheme[s] = b
	}
	registry.all = append(registry.all, b)
}

// Backends lists the registered backends, by name.
func Backends() []*Backend {
	registry.RLock()
	defer registry.RUnlock()
	all := slices.Clone(registry.all)
	slices.SortFunc(all, func(a, b *Backend) int { return strings.Compare(a.Name, b.Name) })
	return all
}

func lookup(rawURL string) *Backend {
	scheme, _, _ := strings.Cut(rawURL, ":")
	registry.RLock()
	defer registry.RUnlock()
	return registry.byScheme[strings.ToLower(scheme)]
}

// Lookup returns the backend of a database URL's scheme.
func Lookup(rawURL string) (*Backend, error) {
	if b := lookup(rawURL); b != nil {
		return b, nil
	}
	var forms []string
	for _, b := range Backends() {
		forms = append(forms, b.Form)
	}
	use := "no database backend is linked into this program"
	switch len(forms) {
	case 0:
	case 1:
		use = "use " + forms[0]
	default:
		use = "use " + strings.Join(forms[:len(forms)-1], ", ") + " or " + forms[len(forms)-1]
	}
	return nil, fmt.Errorf("unsupported database URL %q: %s", RedactURL(rawURL), use)
}

// MigrationsOf returns the backend's migrations of one schema set, in
// order: its own files of the set and the shared ones (sqlstore's
// migrations/<set>/) rendered with its DDL.
func (b *Backend) MigrationsOf(set string) ([]Migration, error) {
	dir := "migrations/" + set
	own, errOwn := readMigrations(b.Migrations, dir)
	shared, errShared := readMigrations(sharedMigrations, dir)
	switch {
	case errOwn != nil && !errors.Is(errOwn, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", b.Name, errOwn)
	case errShared != nil && !errors.Is(errShared, fs.ErrNotExist):
		return nil, errShared
	case errOwn != nil && errShared != nil:
		return nil, fmt.Errorf("%s: %w", b.Name, errOwn)
	}
	for i, m := range shared {
		sql, err := renderMigration(m.Name, m.SQL, b.DDL)
		if err != nil {
			return nil, fmt.Errorf("%s: migration %s/%s: %w", b.Name, set, m.Name, err)
		}
		shared[i].SQL = sql
	}
	ms := append(own, shared...)
	if err := checkVersions(ms, dir); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name, err)
	}
	return ms, nil
}

// RedactURL hides the secrets of a database URL, for messages and logs,
// even of a URL that does not parse or whose backend is unknown.
func RedactURL(rawURL string) string {
	if b := lookup(rawURL); b != nil && b.Redact != nil {
		return b.Redact(rawURL)
	}
	if u, err := url.Parse(rawURL); err == nil && u.Opaque == "" {
		return u.Redacted()
	}
	at := strings.LastIndex(rawURL, "@")
	if at < 0 {
		return rawURL
	}
	if i := strings.Index(rawURL, "://"); i >= 0 && i < at {
		return rawURL[:i+3] + "…@" + rawURL[at+1:]
	}
	return "(unparsable URL)"
}

// PoolOptions tune the connection pools of a database; zero values take the
// defaults. The same options serve every backend: a server backend has a
// read and a write pool of MaxOpenConns each; SQLite has one writer and a
// read pool of MaxOpenConns, and ignores the connection ages (its
// connections are to a local file).
type PoolOptions struct {
	// MaxOpenConns bounds each pool (default: the backend's, see
	// DefaultServerConns).
	MaxOpenConns int
	// MaxIdleConns is how many connections each pool keeps open when idle
	// (default MaxOpenConns).
	MaxIdleConns int
	// ConnMaxLifetime closes server connections after this age, so that
	// they follow failovers and server restarts (default 30 min).
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes server connections unused for this long
	// (default 5 min).
	ConnMaxIdleTime time.Duration
	// Timeout is the default deadline of every database call (default 10 s).
	Timeout time.Duration
	// LockTimeout is how long a statement waits for a lock another
	// transaction holds before the transaction is retried (MySQL:
	// innodb_lock_wait_timeout in whole seconds; PostgreSQL: lock_timeout;
	// SQLite: the busy timeout) (default 5 s).
	LockTimeout time.Duration
	// MaxRetries bounds the retries of a transaction the database rolled
	// back for a deadlock, serialisation failure or lock timeout (default 3;
	// negative: none).
	MaxRetries int
}

// ParseURL parses the URL of a database. Unlike url.Parse's, its error does
// not quote the URL, which may hold a password.
func ParseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	return u, nil
}

// OpenServer makes the DB of a database server's write and read pools:
// it sizes both from opts (defaults already applied) and checks within
// opts.Timeout that the server answers. On failure it closes both pools and
// returns the classified error.
func OpenServer(ctx context.Context, write, read *sql.DB, d Dialect, opts PoolOptions) (*DB, error) {
	for _, pool := range []*sql.DB{write, read} {
		pool.SetMaxOpenConns(opts.MaxOpenConns)
		pool.SetMaxIdleConns(opts.MaxIdleConns)
		pool.SetConnMaxLifetime(opts.ConnMaxLifetime)
		pool.SetConnMaxIdleTime(opts.ConnMaxIdleTime)
	}
	db := &DB{Read: read, Write: write, Dialect: d, MaxRetries: opts.MaxRetries, Timeout: opts.Timeout}
	pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := write.PingContext(pctx); err != nil {
		db.Close()
		return nil, db.Classify(err)
	}
	return db, nil
}

// DefaultServerConns is the default pool size of a database server:
// 4×GOMAXPROCS, at least 8, at most 16 (PostgreSQL allows 100 connections
// by default, shared by every pool of every process).
func DefaultServerConns() int { return min(16, max(8, 4*runtime.GOMAXPROCS(0))) }

// WithDefaults returns o with its zero values replaced by the defaults;
// conns is the backend's default pool size.
func (o PoolOptions) WithDefaults(conns int) PoolOptions {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = conns
	}
	if o.MaxIdleConns <= 0 || o.MaxIdleConns > o.MaxOpenConns {
		o.MaxIdleConns = o.MaxOpenConns
	}
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = 30 * time.Minute
	}
	if o.ConnMaxIdleTime <= 0 {
		o.ConnMaxIdleTime = 5 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = 3
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	return o
}

// Open opens the database of a URL with the backend registered for its
// scheme. It applies no migrations: see OpenSet.
func Open(ctx context.Context, rawURL string, opts PoolOptions) (*DB, error) {
	b, err := Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	return b.Open(ctx, rawURL, opts)
}

// OpenForeign opens a database another program owns (a server to import
// from) for reading, changing nothing about it.
func OpenForeign(ctx context.Context, rawURL string, opts PoolOptions) (*DB, error) {
	b, err := Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	if b.OpenForeign != nil {
		return b.OpenForeign(ctx, rawURL, opts)
	}
	return b.Open(ctx, rawURL, opts)
}

// OpenSet opens the database of a URL and brings one schema set up to date
// (migrate) or checks that it is current; on failure the database is
// closed. Every schema set is opened this way: a new set needs only its
// migration files in each backend.
func OpenSet(ctx context.Context, rawURL string, opts PoolOptions, set string, migrate bool) (*DB, error) {
	b, err := Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	ms, err := b.MigrationsOf(set)
	if err != nil {
		return nil, err
	}
	db, err := b.Open(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	if err := db.Prepare(ctx, set, ms, migrate, nil); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenStore opens a Store on the database of a URL: OpenSet of the storage
// set, then NewStore. Closing the Store closes the database.
func OpenStore(ctx context.Context, rawURL string, pool PoolOptions, migrate bool, opts StoreOptions) (*Store, error) {
	db, err := OpenSet(ctx, rawURL, pool, SetStorage, migrate)
	if err != nil {
		return nil, err
	}
	return NewStore(db, opts), nil
}

// OpenTokenDB opens a TokenDB on the database of a URL: OpenSet of the
// tokens set, then NewTokenDB. The TokenDB owns the database (opts.KeepOpen
// is ignored): Close closes it.
func OpenTokenDB(ctx context.Context, rawURL string, pool PoolOptions, migrate bool, opts TokenDBOptions) (*TokenDB, error) {
	db, err := OpenSet(ctx, rawURL, pool, SetTokens, migrate)
	if err != nil {
		return nil, err
	}
	opts.KeepOpen = false
	return NewTokenDB(db, opts), nil
}
