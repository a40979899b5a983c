-- Accounts of the 2011 protocol (User API 1.0 + Storage API 1.1), kept next
-- to the token database: their storage is a token_users record keyed
-- "<username>@sync-1.1.invalid" (weave.LegacyTokenEmail). The contract is at
-- the top of sqlstore/legacyusers.go; times are ms since the epoch.
CREATE TABLE legacy_users (
	username            VARCHAR(100) NOT NULL PRIMARY KEY,
	email               VARCHAR(255) NOT NULL DEFAULT '',
	password_hash       VARCHAR(255) NOT NULL,
	created_at          BIGINT NOT NULL,
	password_changed_at BIGINT NOT NULL,
	reset_code_hash     VARCHAR(64) NOT NULL DEFAULT '',
	reset_expires_at    BIGINT NOT NULL DEFAULT 0
);
