-- Device command queues (FxA's "pushbox"); see the SQLite migration.
-- AUTO_INCREMENT: InnoDB keeps the counter across restarts (MariaDB
-- 10.2.4+, MySQL 8), so an index is never handed out twice.

CREATE TABLE IF NOT EXISTS accounts_commands (
	idx        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	uid        CHAR(32) NOT NULL,
	device_id  CHAR(32) NOT NULL,
	data       MEDIUMTEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	KEY accounts_commands_device (device_id, idx),
	KEY accounts_commands_uid (uid),
	KEY accounts_commands_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
