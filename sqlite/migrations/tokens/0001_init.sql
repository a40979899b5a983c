-- Token server database (schema set "tokens"): services, storage nodes and
-- user records. The contract every dialect mirrors is written at the top of
-- sqlstore/tokendb.go.

CREATE TABLE token_services (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	service VARCHAR(30) NOT NULL UNIQUE,
	pattern VARCHAR(128) NOT NULL
);

INSERT INTO token_services (service, pattern) VALUES ('sync-1.5', '{node}/1.5/{uid}');

CREATE TABLE token_nodes (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	service      INTEGER NOT NULL,
	node         VARCHAR(255) NOT NULL,
	available    INTEGER NOT NULL DEFAULT 0,
	current_load INTEGER NOT NULL DEFAULT 0,
	capacity     INTEGER NOT NULL DEFAULT 0,
	state        VARCHAR(16) NOT NULL DEFAULT 'up',
	retry_after  INTEGER NOT NULL DEFAULT 0,
	backoff      INTEGER NOT NULL DEFAULT 0,
	database_url VARCHAR(1024) NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL,
	UNIQUE (service, node)
);

-- AUTOINCREMENT: a uid is never reused, even after the newest record is
-- purged, so a new user can never inherit an old user's storage.
CREATE TABLE token_users (
	uid             INTEGER PRIMARY KEY AUTOINCREMENT,
	service         INTEGER NOT NULL,
	email           VARCHAR(255) NOT NULL,
	generation      BIGINT NOT NULL,
	client_state    VARCHAR(32) NOT NULL,
	keys_changed_at BIGINT,
	created_at      BIGINT NOT NULL,
	replaced_at     BIGINT,
	nodeid          BIGINT NOT NULL
);

CREATE INDEX token_users_lookup ON token_users (email, service, created_at);
CREATE INDEX token_users_replaced ON token_users (service, replaced_at);
CREATE INDEX token_users_node ON token_users (nodeid);
