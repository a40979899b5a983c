-- Journal of user migrations between nodes (fleet.Migrator): one row per
-- user being moved, kept until the move finishes, so that a crashed move is
-- resumed by running the command again. step is the last completed step:
-- 'locked', 'copied', 'repointed'.
CREATE TABLE IF NOT EXISTS user_migrations (
	uid BIGINT NOT NULL PRIMARY KEY,
	from_node BIGINT NOT NULL,
	to_node BIGINT NOT NULL,
	step VARCHAR(16) NOT NULL,
	started_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
