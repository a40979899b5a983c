-- Storage schema, version 1, for PostgreSQL 13+. It mirrors
-- sqlite/migrations/storage/0001_storage.sql; the contract is at the top of
-- sqlstore/store.go. Timestamps and expiries are integer milliseconds.
--
-- BSO ids and collection names use the "C" collation: compared and ordered
-- byte by byte, whatever the database's locale.

-- Collection names, shared by all users. Ids 1-13 are the fixed ids of the
-- standard collections; sqlstore gives custom names ids from 101.
CREATE TABLE collections (
	id INTEGER NOT NULL PRIMARY KEY,
	name VARCHAR(32) COLLATE "C" NOT NULL UNIQUE
);
INSERT INTO collections (id, name) VALUES
	(1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'), (5, 'keys'),
	(6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
	(11, 'addons'), (12, 'addresses'), (13, 'creditcards');

-- One row per user: the storage timestamp, and the row every write locks
-- first.
CREATE TABLE user_storage (
	uid BIGINT NOT NULL PRIMARY KEY,
	modified BIGINT NOT NULL
);

CREATE TABLE user_collections (
	uid BIGINT NOT NULL,
	collection_id INTEGER NOT NULL,
	modified BIGINT NOT NULL,
	PRIMARY KEY (uid, collection_id)
);

-- expiry is 9223372036854775807 for records that never expire, so that
-- "live" is always expiry > now.
CREATE TABLE bsos (
	uid BIGINT NOT NULL,
	collection_id INTEGER NOT NULL,
	id VARCHAR(64) COLLATE "C" NOT NULL,
	sortindex INTEGER,
	payload TEXT NOT NULL,
	payload_size INTEGER NOT NULL,
	modified BIGINT NOT NULL,
	expiry BIGINT NOT NULL,
	PRIMARY KEY (uid, collection_id, id)
);
-- Payloads are encrypted and do not compress: store large ones out of line
-- without trying.
ALTER TABLE bsos ALTER COLUMN payload SET STORAGE EXTERNAL;
-- newer/older reads and the newest/oldest orders.
CREATE INDEX bsos_modified ON bsos (uid, collection_id, modified, id);
-- PurgeExpired.
CREATE INDEX bsos_expiry ON bsos (expiry);

CREATE TABLE batches (
	uid BIGINT NOT NULL,
	id BIGINT NOT NULL,
	collection_id INTEGER NOT NULL,
	expiry BIGINT NOT NULL,
	PRIMARY KEY (uid, id)
);
CREATE INDEX batches_expiry ON batches (expiry);

-- Staged items of open batches, one row per BSO id; see the SQLite
-- migration for the *_set columns.
CREATE TABLE batch_bsos (
	uid BIGINT NOT NULL,
	batch_id BIGINT NOT NULL,
	id VARCHAR(64) COLLATE "C" NOT NULL,
	payload TEXT NOT NULL,
	payload_size INTEGER NOT NULL,
	payload_set SMALLINT NOT NULL,
	sortindex INTEGER,
	sortindex_set SMALLINT NOT NULL,
	ttl BIGINT,
	ttl_set SMALLINT NOT NULL,
	PRIMARY KEY (uid, batch_id, id)
);
ALTER TABLE batch_bsos ALTER COLUMN payload SET STORAGE EXTERNAL;
