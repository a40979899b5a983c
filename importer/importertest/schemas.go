package importertest

import "strconv"

// The source schemas, as the servers' published migrations (syncstorage-rs)
// or table definitions (server-syncstorage and the Python tokenserver, in
// the DDL SQLAlchemy emits for them) leave them.

// rsMySQLStorage is syncstorage-rs's MySQL storage schema: its migrations
// 2018-08-28 (init), 2019-09-11 (columns renamed to the Python names,
// payload_size), 2019-09-25 (collection ids from 101), 2020-04-03 (BIGINT
// user ids), 2020-06-12 (batch_uploads, batch_upload_items) and 2020-08-24
// (quota columns), in order.
var rsMySQLStorage = []string{
	`CREATE TABLE bso (
		user_id INT NOT NULL,
		collection_id INT NOT NULL,
		id VARCHAR(64) NOT NULL,
		sortindex INT,
		payload MEDIUMTEXT NOT NULL,
		modified BIGINT NOT NULL,
		expiry BIGINT DEFAULT '3153600000000' NOT NULL,
		PRIMARY KEY (user_id, collection_id, id),
		KEY bso_expiry_idx (expiry),
		KEY bso_usr_col_mod_idx (user_id, collection_id, modified)
	) ENGINE = InnoDB DEFAULT CHARSET = latin1`,
	`CREATE TABLE collections (
		id INT PRIMARY KEY NOT NULL AUTO_INCREMENT,
		name VARCHAR(32) UNIQUE NOT NULL
	) ENGINE = InnoDB DEFAULT CHARSET = latin1`,
	`INSERT INTO collections (id, name) VALUES (1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'),
		(5, 'keys'), (6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
		(11, 'addons'), (12, 'addresses'), (13, 'creditcards')`,
	`CREATE TABLE user_collections (
		user_id INT NOT NULL,
		collection_id INT NOT NULL,
		modified BIGINT NOT NULL,
		PRIMARY KEY (user_id, collection_id)
	) ENGINE = InnoDB DEFAULT CHARSET = latin1`,
	`CREATE TABLE batches (
		user_id INT NOT NULL,
		collection_id INT NOT NULL,
		id BIGINT NOT NULL,
		bsos LONGTEXT NOT NULL,
		expiry BIGINT DEFAULT '3153600000000' NOT NULL,
		PRIMARY KEY (user_id, collection_id, id)
	) ENGINE = InnoDB DEFAULT CHARSET = latin1`,
	// 2019-09-11
	"ALTER TABLE `batches` CHANGE COLUMN `user_id` `userid` int(11) NOT NULL",
	"ALTER TABLE `batches` CHANGE COLUMN `collection_id` `collection` int(11) NOT NULL",
	"ALTER TABLE `bso` CHANGE COLUMN `user_id` `userid` int(11) NOT NULL",
	"ALTER TABLE `bso` CHANGE COLUMN `collection_id` `collection` int(11) NOT NULL",
	"ALTER TABLE `bso` CHANGE COLUMN `expiry` `ttl` bigint(20) NOT NULL",
	"ALTER TABLE `user_collections` CHANGE COLUMN `user_id` `userid` int(11) NOT NULL",
	"ALTER TABLE `user_collections` CHANGE COLUMN `collection_id` `collection` int(11) NOT NULL",
	"ALTER TABLE `user_collections` CHANGE COLUMN `modified` `last_modified` bigint(20) NOT NULL",
	"ALTER TABLE `bso` ADD COLUMN `payload_size` int(11) DEFAULT 0",
	// 2019-09-25
	`INSERT INTO collections (id, name) VALUES (100, '')`,
	// 2020-04-03
	"ALTER TABLE `batches` CHANGE COLUMN `userid` `userid` bigint(20) NOT NULL",
	"ALTER TABLE `bso` CHANGE COLUMN `userid` `userid` bigint(20) NOT NULL",
	"ALTER TABLE `user_collections` CHANGE COLUMN `userid` `userid` bigint(20) NOT NULL",
	// 2020-06-12
	"DROP TABLE `batches`",
	"CREATE TABLE `batch_uploads` (" +
		"`batch` bigint(20) NOT NULL, `userid` bigint(20) NOT NULL, `collection` int(11) NOT NULL, " +
		"PRIMARY KEY (`batch`, `userid`)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
	"CREATE TABLE `batch_upload_items` (" +
		"`batch` bigint(20) NOT NULL, `userid` bigint(20) NOT NULL, `id` varchar(64) NOT NULL, " +
		"`sortindex` int(11) DEFAULT NULL, `payload` mediumtext, `payload_size` int(11) DEFAULT NULL, `ttl_offset` int(11) DEFAULT NULL, " +
		"PRIMARY KEY (`batch`, `userid`, `id`)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
	// 2020-08-24
	`ALTER TABLE user_collections ADD COLUMN (total_bytes BIGINT, count INT)`,
}

// rsMySQLTokens is the tokenserver schema of syncstorage-rs on MySQL.
var rsMySQLTokens = []string{
	`CREATE TABLE services (
		id INT NOT NULL AUTO_INCREMENT,
		service VARCHAR(30) DEFAULT NULL,
		pattern VARCHAR(128) DEFAULT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY service (service)
	)`,
	`CREATE TABLE nodes (
		id BIGINT NOT NULL AUTO_INCREMENT,
		service INT NOT NULL,
		node VARCHAR(64) NOT NULL,
		available INT NOT NULL,
		current_load INT NOT NULL,
		capacity INT NOT NULL,
		downed INT NOT NULL,
		backoff INT NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY unique_idx (service, node)
	)`,
	`CREATE TABLE users (
		uid BIGINT NOT NULL AUTO_INCREMENT,
		service INT NOT NULL,
		email VARCHAR(255) NOT NULL,
		generation BIGINT NOT NULL,
		client_state VARCHAR(32) NOT NULL,
		created_at BIGINT NOT NULL,
		replaced_at BIGINT DEFAULT NULL,
		nodeid BIGINT NOT NULL,
		keys_changed_at BIGINT DEFAULT NULL,
		PRIMARY KEY (uid),
		KEY lookup_idx (email, service, created_at),
		KEY replaced_at_idx (service, replaced_at),
		KEY node_idx (nodeid)
	)`,
	tokenService,
	tokenNode,
}

const (
	tokenService = `INSERT INTO services (id, service, pattern) VALUES (1, 'sync-1.5', '{node}/1.5/{uid}')`
	tokenNode    = `INSERT INTO nodes (id, service, node, available, current_load, capacity, downed, backoff)
		VALUES (800, 1, 'https://sync-1.example.net', 10, 3, 100, 0, 0)`
)

// rsPostgresStorage is syncstorage-rs's PostgreSQL storage schema
// (migration 2025-10-20-155711_create_schema).
var rsPostgresStorage = []string{
	`CREATE TABLE user_collections (
		user_id BIGINT NOT NULL,
		collection_id INTEGER NOT NULL,
		modified TIMESTAMPTZ NOT NULL,
		count BIGINT,
		total_bytes BIGINT,
		PRIMARY KEY (user_id, collection_id)
	)`,
	`CREATE TABLE bsos (
		user_id BIGINT NOT NULL,
		collection_id INTEGER NOT NULL,
		bso_id TEXT NOT NULL,
		sortindex INTEGER,
		payload TEXT NOT NULL,
		modified TIMESTAMPTZ NOT NULL,
		expiry TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (user_id, collection_id, bso_id),
		FOREIGN KEY (user_id, collection_id) REFERENCES user_collections (user_id, collection_id) ON DELETE CASCADE
	)`,
	`CREATE INDEX bsos_modified_idx ON bsos (user_id, collection_id, modified DESC)`,
	`CREATE INDEX bsos_expiry_idx ON bsos (user_id, collection_id, expiry)`,
	`CREATE TABLE collections (
		collection_id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
		name VARCHAR(32) NOT NULL UNIQUE
	)`,
	`INSERT INTO collections (collection_id, name) VALUES (1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'),
		(5, 'keys'), (6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
		(11, 'addons'), (12, 'addresses'), (13, 'creditcards')`,
	`ALTER TABLE collections ALTER COLUMN collection_id RESTART WITH 101`,
	`CREATE TABLE batches (
		user_id BIGINT NOT NULL,
		collection_id INTEGER NOT NULL,
		batch_id UUID NOT NULL,
		expiry TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (user_id, collection_id, batch_id),
		FOREIGN KEY (user_id, collection_id) REFERENCES user_collections (user_id, collection_id) ON DELETE CASCADE
	)`,
	`CREATE INDEX batch_expiry_idx ON batches (user_id, collection_id, expiry)`,
	`CREATE TABLE batch_bsos (
		user_id BIGINT NOT NULL,
		collection_id INTEGER NOT NULL,
		batch_id UUID NOT NULL,
		batch_bso_id TEXT NOT NULL,
		sortindex INTEGER,
		payload TEXT,
		ttl BIGINT,
		PRIMARY KEY (user_id, collection_id, batch_id, batch_bso_id),
		FOREIGN KEY (user_id, collection_id, batch_id) REFERENCES batches (user_id, collection_id, batch_id) ON DELETE CASCADE
	)`,
}

// rsPostgresTokens is syncstorage-rs's PostgreSQL tokenserver schema
// (migration 2025-09-02-195720_create_schema).
var rsPostgresTokens = []string{
	`CREATE TABLE IF NOT EXISTS services (
		id SERIAL PRIMARY KEY,
		service VARCHAR(30) UNIQUE,
		pattern VARCHAR(128)
	)`,
	`CREATE TABLE IF NOT EXISTS nodes (
		id BIGSERIAL PRIMARY KEY,
		service INTEGER NOT NULL,
		node VARCHAR(64) NOT NULL,
		available INTEGER NOT NULL,
		current_load INTEGER NOT NULL,
		capacity INTEGER NOT NULL,
		downed INTEGER NOT NULL,
		backoff INTEGER NOT NULL,
		UNIQUE (service, node)
	)`,
	`CREATE TABLE IF NOT EXISTS users (
		uid BIGSERIAL PRIMARY KEY,
		service INTEGER NOT NULL,
		email VARCHAR(255) NOT NULL,
		generation BIGINT NOT NULL,
		client_state VARCHAR(32) NOT NULL,
		created_at BIGINT NOT NULL,
		replaced_at BIGINT,
		nodeid BIGINT NOT NULL,
		keys_changed_at BIGINT
	)`,
	`CREATE INDEX IF NOT EXISTS lookup_idx ON users (email, service, created_at)`,
	`CREATE INDEX IF NOT EXISTS replaced_at_idx ON users (service, replaced_at)`,
	`CREATE INDEX IF NOT EXISTS node_idx ON users (nodeid)`,
	tokenService,
	tokenNode,
}

// pythonStorage is server-syncstorage's schema (syncstorage/storage/sql/
// dbconnect.py, with batch uploads) on c's database, sharded into c.Shards
// bso and batch_upload_items tables or not.
func pythonStorage(c Case) []string {
	mysql := c.DB == "mysql"
	opts, serial, payload := "", "SERIAL", "TEXT"
	if mysql {
		opts, serial, payload = " ENGINE=InnoDB CHARSET=latin1", "INTEGER AUTO_INCREMENT", "MEDIUMTEXT"
	}
	out := []string{
		`CREATE TABLE collections (
			collectionid ` + serial + ` NOT NULL,
			name VARCHAR(32) NOT NULL,
			PRIMARY KEY (collectionid),
			UNIQUE (name)
		)` + opts,
		`CREATE TABLE user_collections (
			userid INTEGER NOT NULL,
			collection INTEGER NOT NULL,
			last_modified BIGINT NOT NULL,
			PRIMARY KEY (userid, collection)
		)` + opts,
		`CREATE TABLE batch_uploads (
			batch BIGINT NOT NULL,
			userid INTEGER NOT NULL,
			collection INTEGER NOT NULL,
			PRIMARY KEY (batch, userid)
		)` + opts,
		`CREATE TABLE migration (
			fxa_uid VARCHAR(255) NOT NULL,
			started_at BIGINT NOT NULL,
			state VARCHAR(32),
			PRIMARY KEY (fxa_uid)
		)` + opts,
	}
	if c.StandardCollections {
		// What server-syncstorage runs at start with standard_collections:
		// custom collections get ids from 100.
		if mysql {
			out = append(out, `ALTER TABLE collections AUTO_INCREMENT = 100`)
		} else {
			out = append(out, `ALTER SEQUENCE collections_collectionid_seq MINVALUE 100 START WITH 100 RESTART WITH 100`)
		}
	}
	bso := func(name string) []string {
		return []string{
			`CREATE TABLE ` + name + ` (
				userid INTEGER NOT NULL,
				collection INTEGER NOT NULL,
				id VARCHAR(64) NOT NULL,
				sortindex INTEGER,
				modified BIGINT NOT NULL,
				payload ` + payload + ` NOT NULL,
				payload_size INTEGER NOT NULL DEFAULT 0,
				ttl INTEGER NOT NULL DEFAULT 2100000000,
				PRIMARY KEY (userid, collection, id)
			)` + opts,
			`CREATE INDEX ` + name + `_ttl_idx ON ` + name + ` (ttl)`,
			`CREATE INDEX ` + name + `_usr_col_mod_idx ON ` + name + ` (userid, collection, modified)`,
		}
	}
	bui := func(name string) string {
		return `CREATE TABLE ` + name + ` (
			batch BIGINT NOT NULL,
			userid INTEGER NOT NULL,
			id VARCHAR(64) NOT NULL,
			sortindex INTEGER,
			payload ` + payload + `,
			payload_size INTEGER,
			ttl_offset INTEGER,
			PRIMARY KEY (batch, userid, id)
		)` + opts
	}
	if c.Shards == 0 {
		return append(append(out, bso("bso")...), bui("batch_upload_items"))
	}
	for i := range c.Shards {
		out = append(append(out, bso("bso"+strconv.Itoa(i))...), bui("batch_upload_items"+strconv.Itoa(i)))
	}
	return out
}

// pythonMySQLTokens is the Python tokenserver's schema
// (tokenserver/assignment/sqlnode/schemas.py after its migrations: nodeid
// instead of node, keys_changed_at) on MySQL.
var pythonMySQLTokens = []string{
	`CREATE TABLE services (
		id INTEGER NOT NULL AUTO_INCREMENT,
		service VARCHAR(30),
		pattern VARCHAR(128),
		PRIMARY KEY (id),
		UNIQUE (service)
	)ENGINE=InnoDB`,
	`CREATE TABLE nodes (
		id BIGINT NOT NULL AUTO_INCREMENT,
		service INTEGER NOT NULL,
		node VARCHAR(64) NOT NULL,
		available INTEGER NOT NULL,
		current_load INTEGER NOT NULL,
		capacity INTEGER NOT NULL,
		downed INTEGER NOT NULL,
		backoff INTEGER NOT NULL,
		PRIMARY KEY (id)
	)ENGINE=InnoDB CHARSET=utf8`,
	`CREATE UNIQUE INDEX unique_idx ON nodes (service, node)`,
	`CREATE TABLE users (
		uid BIGINT NOT NULL AUTO_INCREMENT,
		service INTEGER NOT NULL,
		email VARCHAR(255) NOT NULL,
		generation BIGINT NOT NULL,
		client_state VARCHAR(32) NOT NULL,
		created_at BIGINT NOT NULL,
		replaced_at BIGINT,
		nodeid BIGINT NOT NULL,
		keys_changed_at BIGINT,
		PRIMARY KEY (uid)
	)ENGINE=InnoDB CHARSET=utf8`,
	`CREATE INDEX lookup_idx ON users (email, service, created_at)`,
	`CREATE INDEX replaced_at_idx ON users (service, replaced_at)`,
	`CREATE INDEX node_idx ON users (nodeid)`,
	tokenService,
	tokenNode,
}

// pythonPostgresTokens is the same on PostgreSQL.
var pythonPostgresTokens = []string{
	`CREATE TABLE services (
		id SERIAL NOT NULL,
		service VARCHAR(30),
		pattern VARCHAR(128),
		PRIMARY KEY (id),
		UNIQUE (service)
	)`,
	`CREATE TABLE nodes (
		id BIGSERIAL NOT NULL,
		service INTEGER NOT NULL,
		node VARCHAR(64) NOT NULL,
		available INTEGER NOT NULL,
		current_load INTEGER NOT NULL,
		capacity INTEGER NOT NULL,
		downed INTEGER NOT NULL,
		backoff INTEGER NOT NULL,
		PRIMARY KEY (id)
	)`,
	`CREATE UNIQUE INDEX unique_idx ON nodes (service, node)`,
	`CREATE TABLE users (
		uid BIGSERIAL NOT NULL,
		service INTEGER NOT NULL,
		email VARCHAR(255) NOT NULL,
		generation BIGINT NOT NULL,
		client_state VARCHAR(32) NOT NULL,
		created_at BIGINT NOT NULL,
		replaced_at BIGINT,
		nodeid BIGINT NOT NULL,
		keys_changed_at BIGINT,
		PRIMARY KEY (uid)
	)`,
	`CREATE INDEX lookup_idx ON users (email, service, created_at)`,
	`CREATE INDEX replaced_at_idx ON users (service, replaced_at)`,
	`CREATE INDEX node_idx ON users (nodeid)`,
	tokenService,
	tokenNode,
}
