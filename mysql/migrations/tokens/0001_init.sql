-- Token server database (schema set "tokens"), version 1, for MariaDB 10.6+
-- and MySQL 8.0+: services, storage nodes and user records. It mirrors
-- sqlite/migrations/tokens/0001_init.sql; the contract is at the top of
-- sqlstore/tokendb.go. Every statement can run again harmlessly (MySQL
-- commits DDL implicitly). Text compares bytewise (utf8mb4_bin), as on SQLite.

CREATE TABLE IF NOT EXISTS token_services (
	id INT NOT NULL AUTO_INCREMENT,
	service VARCHAR(30) NOT NULL,
	pattern VARCHAR(128) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY token_services_service (service)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO token_services (service, pattern) VALUES ('sync-1.5', '{node}/1.5/{uid}')
	ON DUPLICATE KEY UPDATE service = service;

CREATE TABLE IF NOT EXISTS token_nodes (
	id BIGINT NOT NULL AUTO_INCREMENT,
	service INT NOT NULL,
	node VARCHAR(255) NOT NULL,
	available INT NOT NULL DEFAULT 0,
	current_load INT NOT NULL DEFAULT 0,
	capacity INT NOT NULL DEFAULT 0,
	state VARCHAR(16) NOT NULL DEFAULT 'up',
	retry_after INT NOT NULL DEFAULT 0,
	backoff INT NOT NULL DEFAULT 0,
	database_url VARCHAR(1024) NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY token_nodes_service_node (service, node)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- AUTO_INCREMENT: InnoDB keeps the counter across restarts (MariaDB 10.2.4+,
-- MySQL 8.0+), so a uid is never reused, even after the newest record is
-- purged, and a new user can never inherit an old user's storage.
CREATE TABLE IF NOT EXISTS token_users (
	uid BIGINT NOT NULL AUTO_INCREMENT,
	service INT NOT NULL,
	email VARCHAR(255) NOT NULL,
	generation BIGINT NOT NULL,
	client_state VARCHAR(32) NOT NULL,
	keys_changed_at BIGINT NULL,
	created_at BIGINT NOT NULL,
	replaced_at BIGINT NULL,
	nodeid BIGINT NOT NULL,
	PRIMARY KEY (uid),
	KEY token_users_lookup (email, service, created_at),
	KEY token_users_replaced (service, replaced_at),
	KEY token_users_node (nodeid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
