-- The deprecated Sync 1.1 fields parentid and predecessorid; see
-- sqlite/migrations/storage/0003_bso_parentid.sql. VARBINARY like the ids
-- they name. Nullable columns added last are instant on InnoDB.
--
-- Re-runnable (MySQL commits DDL implicitly): MySQL 8 has no ADD COLUMN
-- IF NOT EXISTS, so the ALTER runs only while the columns are missing.
SET @weave_alter = (SELECT IF(COUNT(*) = 0,
	'ALTER TABLE bsos ADD COLUMN parentid VARBINARY(64) NULL, ADD COLUMN predecessorid VARBINARY(64) NULL',
	'DO 0')
	FROM information_schema.columns
	WHERE table_schema = DATABASE() AND table_name = 'bsos' AND column_name = 'parentid');
PREPARE weave_alter FROM @weave_alter;
EXECUTE weave_alter;
DEALLOCATE PREPARE weave_alter;
