package metrics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Database names one database for WatchDB. The fields match a
// *sqlstore.DB's, so that this package does not depend on the SQL layer:
//
//	metrics.Database{Name: "storage", Kind: db.Dialect.Name(), Read: db.Read, Write: db.Write, Path: file}
type Database struct {
	// Name is the db label, e.g. "storage", "tokens", or a shard's name.
	Name string
	// Kind is "sqlite", "mysql" or "postgres".
	Kind string
	// Read and Write are the connection pools; Write may be nil or the
	// same as Read. The server statistics are polled on Read.
	Read, Write *sql.DB
	// Path is the SQLite database file (its WAL is Path+"-wal").
	Path string
	// GroupCommit, when set, reads the counters of the database's group
	// committer (SQLite: concurrent writes share a transaction).
	GroupCommit func() GroupCommit
}

// GroupCommit is what a group committer has done so far (sqlstore's
// GroupStats).
type GroupCommit struct {
	Groups, Members uint64
	Queued          int
	// Wait is the members' total time from queueing to their outcome.
	Wait time.Duration
}

// WatchDB registers the pool statistics of d's pools ("read" and "write",
// or one "rw" pool when they are the same) and the server statistics
// collector of its kind, all labelled db=d.Name.
func (m *Metrics) WatchDB(d Database) error {
	if d.Read == nil {
		return fmt.Errorf("metrics: database %q has no Read pool", d.Name)
	}
	if d.Write == nil || d.Write == d.Read {
		if err := m.WatchPool(d.Name, "rw", d.Read); err != nil {
			return err
		}
	} else {
		if err := m.WatchPool(d.Name, "read", d.Read); err != nil {
			return err
		}
		if err := m.WatchPool(d.Name, "write", d.Write); err != nil {
			return err
		}
	}
	if d.GroupCommit != nil {
		if err := m.register(newGroupCollector(d.Name, d.GroupCommit), "group commit "+d.Name); err != nil {
			return err
		}
	}
	switch d.Kind {
	case "mysql":
		return m.WatchMySQL(d.Name, d.Read)
	case "postgres":
		return m.WatchPostgres(d.Name, d.Read)
	case "sqlite":
		return m.WatchSQLite(d.Name, d.Read, d.Path)
	default:
		return fmt.Errorf("metrics: no server statistics for database kind %q", d.Kind)
	}
}

// WatchPool registers the database/sql statistics of one connection pool
// (open, in use, idle connections; waits for a connection), labelled
// db=name, pool=pool. It reads in-process counters only.
func (m *Metrics) WatchPool(name, pool string, p *sql.DB) error {
	return m.register(newPoolCollector(name, pool, p), "pool "+name+"/"+pool)
}

// WatchMySQL registers the MariaDB/MySQL server statistics of the server p
// talks to (SHOW GLOBAL STATUS: row operations, InnoDB buffer pool reads,
// row lock waits, threads, queries; the InnoDB history list length),
// labelled db=name.
func (m *Metrics) WatchMySQL(name string, p *sql.DB) error {
	src := newMySQLSource(name, p)
	return m.register(m.newPoller("mysql", name, src, m.opts.PollInterval), "mysql "+name)
}

// WatchPostgres registers the pg_stat_database counters of the database p
// is connected to, labelled db=name.
func (m *Metrics) WatchPostgres(name string, p *sql.DB) error {
	src := newPostgresSource(name, p)
	return m.register(m.newPoller("postgres", name, src, m.opts.PollInterval), "postgres "+name)
}

// WatchSQLite registers the size of the SQLite database p has open (pages,
// free pages) and of its write-ahead log at path+"-wal", labelled db=name.
func (m *Metrics) WatchSQLite(name string, p *sql.DB, path string) error {
	src := newSQLiteSource(name, p, path)
	return m.register(m.newPoller("sqlite", name, src, m.opts.PollInterval), "sqlite "+name)
}

func (m *Metrics) register(c prometheus.Collector, what string) error {
	if err := m.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return fmt.Errorf("metrics: %s is already watched", what)
		}
		return fmt.Errorf("metrics: register %s: %w", what, err)
	}
	return nil
}

// poolCollector reports sql.DB.Stats.
type poolCollector struct {
	p                                           *sql.DB
	open, inUse, idle, maxOpen, waits, waitTime *prometheus.Desc
	closedIdle, closedLifetime                  *prometheus.Desc
}

func newPoolCollector(name, pool string, p *sql.DB) *poolCollector {
	l := prometheus.Labels{"db": name, "pool": pool}
	d := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(n, help, nil, l) }
	return &poolCollector{
		p:        p,
		open:     d("weave_db_pool_open_connections", "Connections open in the pool (in use + idle)."),
		inUse:    d("weave_db_pool_in_use_connections", "Connections in use."),
		idle:     d("weave_db_pool_idle_connections", "Idle connections."),
		maxOpen:  d("weave_db_pool_max_open_connections", "Pool size limit (0: unlimited)."),
		waits:    d("weave_db_pool_waits_total", "Times a caller waited for a free connection."),
		waitTime: d("weave_db_pool_wait_seconds_total", "Total time callers waited for a free connection."),
		closedIdle: d("weave_db_pool_closed_idle_total",
			"Connections closed for idleness (SetMaxIdleConns, SetConnMaxIdleTime)."),
		closedLifetime: d("weave_db_pool_closed_lifetime_total",
			"Connections closed for reaching SetConnMaxLifetime."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.inUse, c.idle, c.maxOpen, c.waits, c.waitTime, c.closedIdle, c.closedLifetime} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(c.open, g, float64(s.OpenConnections))
	ch <- prometheus.MustNewConstMetric(c.inUse, g, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(c.idle, g, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(c.maxOpen, g, float64(s.MaxOpenConnections))
	ch <- prometheus.MustNewConstMetric(c.waits, k, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitTime, k, s.WaitDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(c.closedIdle, k, float64(s.MaxIdleClosed+s.MaxIdleTimeClosed))
	ch <- prometheus.MustNewConstMetric(c.closedLifetime, k, float64(s.MaxLifetimeClosed))
}

// groupCollector reports a group committer's counters: mean group size
// is members/groups, a write's mean time in the committer wait/members.
type groupCollector struct {
	read                          func() GroupCommit
	groups, members, queued, wait *prometheus.Desc
}

func newGroupCollector(name string, read func() GroupCommit) *groupCollector {
	l := prometheus.Labels{"db": name}
	d := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(n, help, nil, l) }
	return &groupCollector{
		read:    read,
		groups:  d("weave_db_group_commits_total", "Group transactions run (committed or failed); each commits its members' writes at once."),
		members: d("weave_db_group_members_total", "Writes run in group transactions."),
		queued:  d("weave_db_group_queued_writes", "Writes waiting for the group committer now."),
		wait: d("weave_db_group_wait_seconds_total",
			"Total time writes spent from queueing for the group committer to their group's outcome (their statements and the commit included)."),
	}
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.groups, c.members, c.queued, c.wait} {
		ch <- d
	}
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	k := prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(c.groups, k, float64(s.Groups))
	ch <- prometheus.MustNewConstMetric(c.members, k, float64(s.Members))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(c.wait, k, s.Wait.Seconds())
}

// statDesc maps one server status value to a metric.
type statDesc struct {
	key   string // the server's name for it
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	scale float64 // multiplier to base units (ms → s); 0 means 1
}

func (s statDesc) metric(v float64) prometheus.Metric {
	if s.scale != 0 {
		v *= s.scale
	}
	return prometheus.MustNewConstMetric(s.desc, s.kind, v)
}

// mysqlSource reads SHOW GLOBAL STATUS and the InnoDB history list length.
type mysqlSource struct {
	p        *sql.DB
	stats    []statDesc
	rowOps   *prometheus.Desc
	hitRatio *prometheus.Desc
	history  *prometheus.Desc
	query    string
	// innodbOps and handlerOps map status variables to operation labels:
	// the InnoDB row counters where the server has them (MySQL, older
	// MariaDB), the server-wide handler counters otherwise (MariaDB 10.6+
	// dropped Innodb_rows_*).
	innodbOps, handlerOps [4][2]string
	// historyRE finds the length in SHOW ENGINE INNODB STATUS.
	historyRE *regexp.Regexp
}

func newMySQLSource(name string, p *sql.DB) *mysqlSource {
	l := prometheus.Labels{"db": name}
	d := func(n, help string, vars ...string) *prometheus.Desc { return prometheus.NewDesc(n, help, vars, l) }
	k, g := prometheus.CounterValue, prometheus.GaugeValue
	s := &mysqlSource{
		p: p,
		stats: []statDesc{
			{"Innodb_buffer_pool_read_requests", d("weave_mysql_innodb_buffer_pool_read_requests_total",
				"InnoDB logical page reads (Innodb_buffer_pool_read_requests)."), k, 0},
			{"Innodb_buffer_pool_reads", d("weave_mysql_innodb_buffer_pool_reads_total",
				"InnoDB page reads that missed the buffer pool and went to disk (Innodb_buffer_pool_reads)."), k, 0},
			{"Innodb_row_lock_waits", d("weave_mysql_innodb_row_lock_waits_total",
				"Times a statement waited for an InnoDB row lock (Innodb_row_lock_waits)."), k, 0},
			{"Innodb_row_lock_time", d("weave_mysql_innodb_row_lock_wait_seconds_total",
				"Total time spent waiting for InnoDB row locks (Innodb_row_lock_time)."), k, 0.001},
			{"Threads_connected", d("weave_mysql_threads_connected",
				"Client connections open on the server (Threads_connected)."), g, 0},
			{"Questions", d("weave_mysql_questions_total",
				"Statements sent by clients (Questions)."), k, 0},
			{"Slow_queries", d("weave_mysql_slow_queries_total",
				"Queries slower than long_query_time (Slow_queries)."), k, 0},
		},
		rowOps: d("weave_mysql_row_operations_total",
			"Rows read, inserted, updated, deleted: InnoDB's Innodb_rows_* (source=innodb) or, where the server lacks them, Rows_read and Handler_write/update/delete (source=handler).",
			"operation", "source"),
		hitRatio: d("weave_mysql_innodb_buffer_pool_hit_ratio",
			"Share of InnoDB page reads served from the buffer pool since server start: 1 − reads / read_requests."),
		history: d("weave_mysql_innodb_history_list_length",
			"Undo log records not yet purged (InnoDB history list length); growth means old read views block purge."),
	}
	s.innodbOps = [4][2]string{
		{"Innodb_rows_read", "read"},
		{"Innodb_rows_inserted", "inserted"},
		{"Innodb_rows_updated", "updated"},
		{"Innodb_rows_deleted", "deleted"},
	}
	s.handlerOps = [4][2]string{
		{"Rows_read", "read"},
		{"Handler_write", "inserted"},
		{"Handler_update", "updated"},
		{"Handler_delete", "deleted"},
	}
	s.historyRE = regexp.MustCompile(`History list length (\d+)`)
	names := []string{"'Innodb_history_list_length'"}
	for _, st := range s.stats {
		names = append(names, "'"+st.key+"'")
	}
	for _, op := range append(s.innodbOps[:], s.handlerOps[:]...) {
		names = append(names, "'"+op[0]+"'")
	}
	s.query = "SHOW GLOBAL STATUS WHERE Variable_name IN (" + strings.Join(names, ", ") + ")"
	return s
}

func (s *mysqlSource) describe(ch chan<- *prometheus.Desc) {
	for _, st := range s.stats {
		ch <- st.desc
	}
	ch <- s.rowOps
	ch <- s.hitRatio
	ch <- s.history
}

func (s *mysqlSource) fetch(ctx context.Context) ([]prometheus.Metric, error) {
	vals, err := nameValues(ctx, s.p, s.query)
	if err != nil {
		return nil, fmt.Errorf("mysql: global status: %w", err)
	}
	var out []prometheus.Metric
	for _, st := range s.stats {
		if v, ok := vals[strings.ToLower(st.key)]; ok {
			out = append(out, st.metric(v))
		}
	}
	ops, source := s.innodbOps, "innodb"
	if _, ok := vals["innodb_rows_inserted"]; !ok {
		ops, source = s.handlerOps, "handler"
	}
	for _, op := range ops {
		if v, ok := vals[strings.ToLower(op[0])]; ok {
			out = append(out, prometheus.MustNewConstMetric(s.rowOps, prometheus.CounterValue, v, op[1], source))
		}
	}
	if req, ok := vals["innodb_buffer_pool_read_requests"]; ok && req > 0 {
		out = append(out, prometheus.MustNewConstMetric(s.hitRatio, prometheus.GaugeValue, 1-vals["innodb_buffer_pool_reads"]/req))
	}
	// MariaDB publishes the history length as a status variable; MySQL
	// only in INNODB_METRICS (needs PROCESS) or SHOW ENGINE INNODB STATUS.
	// Its absence is not an error: the other figures still count.
	h, ok := vals["innodb_history_list_length"]
	if !ok {
		h, ok = s.historyLength(ctx)
	}
	if ok {
		out = append(out, prometheus.MustNewConstMetric(s.history, prometheus.GaugeValue, h))
	}
	return out, nil
}

func (s *mysqlSource) historyLength(ctx context.Context) (float64, bool) {
	var v float64
	// The counter is enabled by default; MySQL and MariaDB name the
	// column that says so differently, so it is not checked.
	err := s.p.QueryRowContext(ctx,
		"SELECT `COUNT` FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'").Scan(&v)
	if err == nil {
		return v, true
	}
	if ctx.Err() != nil {
		return 0, false
	}
	var typ, name, status string
	if err := s.p.QueryRowContext(ctx, "SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &status); err != nil {
		return 0, false
	}
	if m := s.historyRE.FindStringSubmatch(status); m != nil {
		if n, err := strconv.ParseFloat(m[1], 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

// nameValues runs a two-column (name, value) query, keeping numeric values
// by lowercased name.
func nameValues(ctx context.Context, p *sql.DB, query string) (map[string]float64, error) {
	rows, err := p.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals := map[string]float64{}
	for rows.Next() {
		var name, val string
		if err := rows.Scan(&name, &val); err != nil {
			return nil, err
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			vals[strings.ToLower(name)] = v
		}
	}
	return vals, rows.Err()
}

// postgresSource reads pg_stat_database for the current database.
type postgresSource struct {
	p                                               *sql.DB
	backends, commits, rollbacks, blksRead, blksHit *prometheus.Desc
	tuples, conflicts, deadlocks, hitRatio          *prometheus.Desc
}

func newPostgresSource(name string, p *sql.DB) *postgresSource {
	l := prometheus.Labels{"db": name}
	d := func(n, help string, vars ...string) *prometheus.Desc { return prometheus.NewDesc(n, help, vars, l) }
	return &postgresSource{
		p:         p,
		backends:  d("weave_postgres_backends", "Sessions connected to the database (numbackends)."),
		commits:   d("weave_postgres_xact_commit_total", "Transactions committed (xact_commit)."),
		rollbacks: d("weave_postgres_xact_rollback_total", "Transactions rolled back (xact_rollback)."),
		blksRead:  d("weave_postgres_blocks_read_total", "Blocks read from disk or the OS cache (blks_read)."),
		blksHit:   d("weave_postgres_blocks_hit_total", "Blocks found in shared buffers (blks_hit)."),
		tuples: d("weave_postgres_tuples_total",
			"Rows returned, fetched, inserted, updated, deleted (tup_*).", "operation"),
		conflicts: d("weave_postgres_conflicts_total", "Queries canceled by recovery conflicts on a standby (conflicts)."),
		deadlocks: d("weave_postgres_deadlocks_total", "Deadlocks detected (deadlocks)."),
		hitRatio: d("weave_postgres_cache_hit_ratio",
			"Share of block reads served from shared buffers since the statistics reset: blks_hit / (blks_hit + blks_read)."),
	}
}

func (s *postgresSource) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.backends, s.commits, s.rollbacks, s.blksRead, s.blksHit, s.tuples, s.conflicts, s.deadlocks, s.hitRatio} {
		ch <- d
	}
}

func (s *postgresSource) fetch(ctx context.Context) ([]prometheus.Metric, error) {
	var v [12]float64
	err := s.p.QueryRowContext(ctx, `SELECT numbackends, xact_commit, xact_rollback, blks_read, blks_hit,
		tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted, conflicts, deadlocks
		FROM pg_stat_database WHERE datname = current_database()`).Scan(
		&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11])
	if err != nil {
		return nil, fmt.Errorf("postgres: pg_stat_database: %w", err)
	}
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	out := []prometheus.Metric{
		prometheus.MustNewConstMetric(s.backends, g, v[0]),
		prometheus.MustNewConstMetric(s.commits, k, v[1]),
		prometheus.MustNewConstMetric(s.rollbacks, k, v[2]),
		prometheus.MustNewConstMetric(s.blksRead, k, v[3]),
		prometheus.MustNewConstMetric(s.blksHit, k, v[4]),
		prometheus.MustNewConstMetric(s.tuples, k, v[5], "returned"),
		prometheus.MustNewConstMetric(s.tuples, k, v[6], "fetched"),
		prometheus.MustNewConstMetric(s.tuples, k, v[7], "inserted"),
		prometheus.MustNewConstMetric(s.tuples, k, v[8], "updated"),
		prometheus.MustNewConstMetric(s.tuples, k, v[9], "deleted"),
		prometheus.MustNewConstMetric(s.conflicts, k, v[10]),
		prometheus.MustNewConstMetric(s.deadlocks, k, v[11]),
	}
	if v[3]+v[4] > 0 {
		out = append(out, prometheus.MustNewConstMetric(s.hitRatio, g, v[4]/(v[3]+v[4])))
	}
	return out, nil
}

// sqliteSource reads the page counts of an SQLite database and stats its
// write-ahead log.
type sqliteSource struct {
	p                                  *sql.DB
	path                               string
	size, pages, free, pageSize, walSz *prometheus.Desc
}

func newSQLiteSource(name string, p *sql.DB, path string) *sqliteSource {
	l := prometheus.Labels{"db": name}
	d := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(n, help, nil, l) }
	return &sqliteSource{
		p:        p,
		path:     path,
		size:     d("weave_sqlite_database_bytes", "Size of the main database file: page_count × page_size."),
		pages:    d("weave_sqlite_pages", "Pages in the database (page_count)."),
		free:     d("weave_sqlite_freelist_pages", "Unused pages kept in the file (freelist_count); VACUUM returns them."),
		pageSize: d("weave_sqlite_page_size_bytes", "Database page size (page_size)."),
		walSz:    d("weave_sqlite_wal_bytes", "Size of the write-ahead log file; it shrinks only at checkpoints."),
	}
}

func (s *sqliteSource) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.size, s.pages, s.free, s.pageSize, s.walSz} {
		ch <- d
	}
}

func (s *sqliteSource) fetch(ctx context.Context) ([]prometheus.Metric, error) {
	var pages, size, free float64
	// One connection for the three pragmas, so they describe one file state.
	conn, err := s.p.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer conn.Close()
	for _, q := range []struct {
		pragma string
		v      *float64
	}{{"page_count", &pages}, {"page_size", &size}, {"freelist_count", &free}} {
		if err := conn.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.v); err != nil {
			return nil, fmt.Errorf("sqlite: PRAGMA %s: %w", q.pragma, err)
		}
	}
	g := prometheus.GaugeValue
	out := []prometheus.Metric{
		prometheus.MustNewConstMetric(s.size, g, pages*size),
		prometheus.MustNewConstMetric(s.pages, g, pages),
		prometheus.MustNewConstMetric(s.free, g, free),
		prometheus.MustNewConstMetric(s.pageSize, g, size),
	}
	if s.path != "" {
		fi, err := os.Stat(s.path + "-wal")
		switch {
		case err == nil:
			out = append(out, prometheus.MustNewConstMetric(s.walSz, g, float64(fi.Size())))
		case errors.Is(err, os.ErrNotExist):
			// No WAL yet (or after a clean close): nothing to replay.
			out = append(out, prometheus.MustNewConstMetric(s.walSz, g, 0))
		default:
			return nil, fmt.Errorf("sqlite: stat WAL: %w", err)
		}
	}
	return out, nil
}
