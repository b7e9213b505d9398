-- Where a compressed backup's zstd ran: 'server' (BASE_BACKUP's COMPRESSION) or 'client'
-- (pgAnalytics, object by object). NULL for uncompressed backups and for those recorded before
-- this column. Shown with the backup, so that `--compress-on auto`'s choice can be seen.
ALTER TABLE backup_metadata
    ADD COLUMN compressed_on VARCHAR(10) CHECK (compressed_on IN ('server', 'client'));
