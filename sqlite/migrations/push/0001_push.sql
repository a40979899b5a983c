-- The push service (schema set "push"), used only with `weave serve --push`.
-- UAIDs are 32 lower-case hex digits, channel IDs lower-case dashed UUIDs;
-- times are milliseconds since the epoch. The contract is at the top of
-- sqlstore/push.go.

CREATE TABLE push_users (
	uaid      CHAR(32) NOT NULL PRIMARY KEY,
	node_id   VARCHAR(64) NOT NULL DEFAULT '',
	connected BIGINT NOT NULL DEFAULT 0,
	created   BIGINT NOT NULL
);

CREATE TABLE push_channels (
	uaid    CHAR(32) NOT NULL,
	chid    CHAR(36) NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (uaid, chid)
);

CREATE TABLE push_messages (
	id      VARCHAR(64) NOT NULL PRIMARY KEY,
	uaid    CHAR(32) NOT NULL,
	chid    CHAR(36) NOT NULL,
	topic   VARCHAR(32),
	data    TEXT NOT NULL,
	headers TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL
);

CREATE INDEX push_messages_uaid ON push_messages (uaid, created);
CREATE INDEX push_messages_expires ON push_messages (expires);
CREATE UNIQUE INDEX push_messages_topic ON push_messages (uaid, chid, topic);

CREATE TABLE push_wakeups (
	id      INTEGER PRIMARY KEY,
	node_id VARCHAR(64) NOT NULL,
	uaid    CHAR(32) NOT NULL,
	created BIGINT NOT NULL
);

CREATE INDEX push_wakeups_node ON push_wakeups (node_id);
CREATE INDEX push_wakeups_created ON push_wakeups (created);
