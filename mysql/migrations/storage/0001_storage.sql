-- Storage schema, version 1, for MariaDB 10.6+ and MySQL 8.0+. It mirrors
-- sqlite/migrations/storage/0001_storage.sql; the contract is at the top of
-- sqlstore/store.go. Timestamps and expiries are integer milliseconds.
--
-- Every statement can run again harmlessly (MySQL commits DDL implicitly, so
-- a migration that failed halfway is retried from its start).
--
-- BSO ids and collection names are VARBINARY: compared byte by byte, case
-- and trailing spaces included. (The _bin collations of MariaDB and of MySQL
-- before 0900_bin are PAD SPACE: they would take 'a' and 'a ' for the same
-- id, and ids may contain spaces.)

-- Collection names, shared by all users. Ids 1-13 are the fixed ids of the
-- standard collections; sqlstore gives custom names ids from 101.
CREATE TABLE IF NOT EXISTS collections (
	id INT NOT NULL,
	name VARBINARY(32) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY collections_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO collections (id, name) VALUES
	(1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'), (5, 'keys'),
	(6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
	(11, 'addons'), (12, 'addresses'), (13, 'creditcards')
	ON DUPLICATE KEY UPDATE id = id;

-- One row per user: the storage timestamp, and the row every write locks
-- first.
CREATE TABLE IF NOT EXISTS user_storage (
	uid BIGINT NOT NULL,
	modified BIGINT NOT NULL,
	PRIMARY KEY (uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS user_collections (
	uid BIGINT NOT NULL,
	collection_id INT NOT NULL,
	modified BIGINT NOT NULL,
	PRIMARY KEY (uid, collection_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Clustered by (uid, collection_id, id): a user's records sit together.
-- expiry is 9223372036854775807 for records that never expire, so that
-- "live" is always expiry > now. MEDIUMTEXT holds payloads up to 16 MiB.
CREATE TABLE IF NOT EXISTS bsos (
	uid BIGINT NOT NULL,
	collection_id INT NOT NULL,
	id VARBINARY(64) NOT NULL,
	sortindex INT NULL,
	payload MEDIUMTEXT NOT NULL,
	payload_size INT NOT NULL,
	modified BIGINT NOT NULL,
	expiry BIGINT NOT NULL,
	PRIMARY KEY (uid, collection_id, id),
	-- newer/older reads and the newest/oldest orders.
	KEY bsos_modified (uid, collection_id, modified, id),
	-- PurgeExpired.
	KEY bsos_expiry (expiry)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS batches (
	uid BIGINT NOT NULL,
	id BIGINT NOT NULL,
	collection_id INT NOT NULL,
	expiry BIGINT NOT NULL,
	PRIMARY KEY (uid, id),
	KEY batches_expiry (expiry)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Staged items of open batches, one row per BSO id; see the SQLite
-- migration for the *_set columns.
CREATE TABLE IF NOT EXISTS batch_bsos (
	uid BIGINT NOT NULL,
	batch_id BIGINT NOT NULL,
	id VARBINARY(64) NOT NULL,
	payload MEDIUMTEXT NOT NULL,
	payload_size INT NOT NULL,
	payload_set SMALLINT NOT NULL,
	sortindex INT NULL,
	sortindex_set SMALLINT NOT NULL,
	ttl BIGINT NULL,
	ttl_set SMALLINT NOT NULL,
	PRIMARY KEY (uid, batch_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
