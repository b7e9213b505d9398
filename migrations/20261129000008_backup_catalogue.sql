-- What the backup commands show without reading the store: the archives of a backup (name,
-- tablespace, sizes, object count), which key wraps its data key and which key signed its
-- catalogue; and, for restores, where tablespaces went, how much was written, and the port of
-- a restored server that was started. The full catalogue (every object with its SHA-256)
-- stays in the store beside the objects, signed; `checksum` is SHA-256 of that catalogue.

ALTER TABLE backup_metadata
    ADD COLUMN archives        JSONB,
    ADD COLUMN key_fingerprint TEXT,
    ADD COLUMN signed_by       TEXT;

ALTER TABLE restore_operations
    ADD COLUMN tablespace_dirs JSONB,
    ADD COLUMN bytes_restored  BIGINT,
    ADD COLUMN started_port    INTEGER;

CREATE INDEX idx_restore_operations_backup ON restore_operations (backup_id, started_at DESC);
