-- Megaphone broadcasts the operator publishes (docs/operations.md):
-- every process reads this table and tells its connected browsers that
-- subscribed to an id of a new version.

{{.Table "push_broadcasts"}} (
	id      VARCHAR(128) NOT NULL PRIMARY KEY,
	version VARCHAR(128) NOT NULL,
	updated BIGINT NOT NULL
){{.End}};
