-- Users being moved to another node (weave user migrate / node drain).
-- state 'locked': writes are refused while the user is copied away;
-- state 'moved': the user lives on target now, this node answers 401 and
-- its copy of the data is purged. Every write checks this table after
-- locking its user_storage row (sqlstore/migrate_user.go).
CREATE TABLE IF NOT EXISTS user_moves (
	uid BIGINT NOT NULL PRIMARY KEY,
	state VARCHAR(16) NOT NULL,
	target VARCHAR(255) NOT NULL,
	updated_at BIGINT NOT NULL,
	KEY user_moves_updated (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
