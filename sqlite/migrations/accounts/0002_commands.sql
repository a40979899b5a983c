-- Device command queues (FxA's "pushbox"): a command sent with
-- /v1/account/devices/invoke_command waits here until its target device
-- reads it with /v1/account/device/commands or it expires. idx is the
-- command's index on the wire; AUTOINCREMENT never hands out a deleted
-- one again, and Firefox skips indexes up to the last one it handled.
-- data is the JSON {command, payload, sender}; times are ms.

CREATE TABLE accounts_commands (
	idx        INTEGER PRIMARY KEY AUTOINCREMENT,
	uid        CHAR(32) NOT NULL,
	device_id  CHAR(32) NOT NULL,
	data       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

CREATE INDEX accounts_commands_device ON accounts_commands (device_id, idx);
CREATE INDEX accounts_commands_uid ON accounts_commands (uid);
CREATE INDEX accounts_commands_expiry ON accounts_commands (expires_at);
