-- The push service (schema set "push"), used only with `weave serve --push`.
-- UAIDs are 32 lower-case hex digits, channel IDs lower-case dashed UUIDs;
-- times are milliseconds since the epoch. The contract is at the top of
-- sqlstore/push.go. A template shared by every backend: see sqlstore/ddl.go.

{{.Table "push_users"}} (
	uaid      CHAR(32) NOT NULL PRIMARY KEY,
	node_id   VARCHAR(64) NOT NULL DEFAULT '',
	connected BIGINT NOT NULL DEFAULT 0,
	created   BIGINT NOT NULL
){{.End}};

{{.Table "push_channels"}} (
	uaid    CHAR(32) NOT NULL,
	chid    CHAR(36) NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (uaid, chid)
){{.End}};

{{.Table "push_messages"}} (
	id      VARCHAR(64) NOT NULL PRIMARY KEY,
	uaid    CHAR(32) NOT NULL,
	chid    CHAR(36) NOT NULL,
	topic   VARCHAR(32),
	data    {{.LongText}} NOT NULL,
	headers TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL
	{{- .Index "push_messages_uaid" "uaid, created"}}
	{{- .Index "push_messages_expires" "expires"}}
	{{- .UniqueIndex "push_messages_topic" "uaid, chid, topic"}}
){{.End}};

{{.Table "push_wakeups"}} (
	id      {{.RowID}},
	node_id VARCHAR(64) NOT NULL,
	uaid    CHAR(32) NOT NULL,
	created BIGINT NOT NULL
	{{- .Index "push_wakeups_node" "node_id"}}
	{{- .Index "push_wakeups_created" "created"}}
){{.End}};
