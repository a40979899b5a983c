-- The push service (schema set "push"), used only with `weave serve --push`.
-- UAIDs are 32 lower-case hex digits, channel IDs lower-case dashed UUIDs;
-- times are milliseconds since the epoch. The contract is at the top of
-- sqlstore/push.go.

CREATE TABLE IF NOT EXISTS push_users (
	uaid      CHAR(32) NOT NULL PRIMARY KEY,
	node_id   VARCHAR(64) NOT NULL DEFAULT '',
	connected BIGINT NOT NULL DEFAULT 0,
	created   BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS push_channels (
	uaid    CHAR(32) NOT NULL,
	chid    CHAR(36) NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (uaid, chid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS push_messages (
	id      VARCHAR(64) NOT NULL PRIMARY KEY,
	uaid    CHAR(32) NOT NULL,
	chid    CHAR(36) NOT NULL,
	topic   VARCHAR(32),
	data    MEDIUMTEXT NOT NULL,
	headers TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	KEY push_messages_uaid (uaid, created),
	KEY push_messages_expires (expires),
	UNIQUE KEY push_messages_topic (uaid, chid, topic)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS push_wakeups (
	id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	node_id VARCHAR(64) NOT NULL,
	uaid    CHAR(32) NOT NULL,
	created BIGINT NOT NULL,
	KEY push_wakeups_node (node_id),
	KEY push_wakeups_created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
