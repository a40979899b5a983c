-- Storage schema, version 1. The contract every backend reproduces is at the
-- top of sqlstore/store.go. Timestamps and expiries are integer
-- milliseconds. A template shared by every backend: see sqlstore/ddl.go.
--
-- BSO ids and collection names compare and order byte by byte, case and
-- trailing spaces included: VARBINARY on MySQL (whose _bin collations before
-- 0900_bin are PAD SPACE, taking 'a' and 'a ' for the same id), the "C"
-- collation on PostgreSQL.

-- Collection names, shared by all users. Ids 1-13 are the fixed ids of the
-- standard collections; sqlstore gives custom names ids from 101.
{{.Table "collections"}} (
	id INTEGER NOT NULL PRIMARY KEY,
	name {{.Bytes 32}} NOT NULL
	{{- .Unique "collections_name" "name"}}
){{.End}};
INSERT INTO collections (id, name) VALUES
	(1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'), (5, 'keys'),
	(6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
	(11, 'addons'), (12, 'addresses'), (13, 'creditcards'){{.KeepExisting "id"}};

-- One row per user: the storage timestamp, and the row every write locks
-- first.
{{.Table "user_storage"}} (
	uid {{.RowKey}} NOT NULL PRIMARY KEY,
	modified BIGINT NOT NULL
){{.End}};

{{.Table "user_collections"}} (
	uid BIGINT NOT NULL,
	collection_id INTEGER NOT NULL,
	modified BIGINT NOT NULL,
	PRIMARY KEY (uid, collection_id)
){{.Clustered}}{{.End}};

-- Clustered by (uid, collection_id, id) where the database allows: a user's
-- records sit together. expiry is 9223372036854775807 for records that never
-- expire, so that "live" is always expiry > now. Payloads are encrypted and
-- do not compress: large ones are stored out of line without trying.
{{.Table "bsos"}} (
	uid BIGINT NOT NULL,
	collection_id INTEGER NOT NULL,
	id {{.Bytes 64}} NOT NULL,
	sortindex INTEGER,
	payload {{.LongText}} NOT NULL{{.Uncompressed "payload"}},
	payload_size INTEGER NOT NULL,
	modified BIGINT NOT NULL,
	expiry BIGINT NOT NULL,
	PRIMARY KEY (uid, collection_id, id)
	{{- /* newer/older reads and the newest/oldest orders, tie-break included so that no sort step is needed */}}
	{{- .Index "bsos_modified" "uid, collection_id, modified, id"}}
	{{- /* PurgeExpired */}}
	{{- .Index "bsos_expiry" "expiry"}}
){{.End}};

{{.Table "batches"}} (
	uid BIGINT NOT NULL,
	id BIGINT NOT NULL,
	collection_id INTEGER NOT NULL,
	expiry BIGINT NOT NULL,
	PRIMARY KEY (uid, id)
	{{- .Index "batches_expiry" "expiry"}}
){{.Clustered}}{{.End}};

-- Staged items of open batches, one row per BSO id: a later append merges
-- into the row, so it holds the composition of every staged update. The
-- *_set columns (0/1) say which fields the updates set; ttl NULL with
-- ttl_set = 1 means "never expires".
{{.Table "batch_bsos"}} (
	uid BIGINT NOT NULL,
	batch_id BIGINT NOT NULL,
	id {{.Bytes 64}} NOT NULL,
	payload {{.LongText}} NOT NULL{{.Uncompressed "payload"}},
	payload_size INTEGER NOT NULL,
	payload_set SMALLINT NOT NULL,
	sortindex INTEGER,
	sortindex_set SMALLINT NOT NULL,
	ttl BIGINT,
	ttl_set SMALLINT NOT NULL,
	PRIMARY KEY (uid, batch_id, id)
){{.End}};
