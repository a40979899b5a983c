-- The deprecated Sync 1.1 fields parentid and predecessorid; see
-- sqlite/migrations/storage/0003_bso_parentid.sql. Adding nullable
-- columns without a default rewrites nothing.
ALTER TABLE bsos ADD COLUMN parentid VARCHAR(64) COLLATE "C";
ALTER TABLE bsos ADD COLUMN predecessorid VARCHAR(64) COLLATE "C";
