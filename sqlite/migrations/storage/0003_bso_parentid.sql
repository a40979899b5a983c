-- The deprecated Sync 1.1 fields parentid and predecessorid (ids of other
-- records, up to 64 bytes; NULL when unset), which the 1.1 API stores,
-- filters on and shows again. Sync 1.5 neither writes nor reads them.
-- Like Mozilla's server-storage, no index: the filters only ever narrow
-- one user's collection, which the primary key already selects.
ALTER TABLE bsos ADD COLUMN parentid VARCHAR(64);
ALTER TABLE bsos ADD COLUMN predecessorid VARCHAR(64);
