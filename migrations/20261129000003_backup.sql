-- Epic 2 tables, as on the sprint board, plus what the backup engine, WAL archiving, PITR
-- and incremental backups need (LSNs, timeline, WAL range, parent backup). Fixes:
-- * timestamps carry a time zone;
-- * checksum and source_size_bytes are known only when a backup completes, so they are
--   nullable, and a CHECK makes them mandatory for a completed backup (a running or failed
--   backup would otherwise need a fake value);
-- * compression_ratio DECIMAL(5,2) overflows above 999.99 (empty or repetitive data compresses
--   further): NUMERIC(12,2).

CREATE TABLE backup_metadata (
    id                      UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    backup_name             VARCHAR(255) NOT NULL,
    backup_type             VARCHAR(50) NOT NULL CHECK (backup_type IN ('full', 'incremental')),
    backup_status           VARCHAR(50) NOT NULL
                            CHECK (backup_status IN ('running', 'completed', 'failed', 'deleted')),
    source_database         VARCHAR(100) NOT NULL,
    source_size_bytes       BIGINT,
    compressed_size_bytes   BIGINT,
    compression_ratio       NUMERIC(12,2),
    compression_type        VARCHAR(50),
    encrypted               BOOLEAN DEFAULT TRUE,
    encryption_algorithm    VARCHAR(50),
    checksum                VARCHAR(64),
    verified                BOOLEAN DEFAULT FALSE,
    retention_days          INTEGER NOT NULL CHECK (retention_days > 0),
    destination_type        VARCHAR(50) NOT NULL,
    destination_path        VARCHAR(512),
    rto_seconds             INTEGER,
    rpo_seconds             INTEGER,
    created_at              TIMESTAMPTZ NOT NULL,
    -- Beyond the board:
    server_id               UUID REFERENCES monitored_servers (id) ON DELETE SET NULL,
    storage_target_id       UUID REFERENCES storage_targets (id),
    parent_backup_id        UUID REFERENCES backup_metadata (id),
    started_at              TIMESTAMPTZ,
    completed_at            TIMESTAMPTZ,
    verified_at             TIMESTAMPTZ,
    start_lsn               PG_LSN,
    stop_lsn                PG_LSN,
    timeline_id             INTEGER,
    wal_start_segment       TEXT,
    wal_stop_segment        TEXT,
    system_identifier       TEXT,
    server_version_num      INTEGER,
    failure_reason          TEXT,
    CHECK (backup_status <> 'completed'
           OR (checksum IS NOT NULL AND source_size_bytes IS NOT NULL AND completed_at IS NOT NULL)),
    CHECK (backup_type <> 'incremental' OR parent_backup_id IS NOT NULL)
);

CREATE INDEX idx_backup_metadata_server ON backup_metadata (server_id, created_at DESC);

CREATE TABLE backup_schedule (
    id                  SERIAL PRIMARY KEY,
    schedule_name       VARCHAR(255) NOT NULL UNIQUE,
    schedule_type       VARCHAR(50) NOT NULL,
    backup_type         VARCHAR(50) NOT NULL CHECK (backup_type IN ('full', 'incremental')),
    cron_expression     VARCHAR(100),
    retention_days      INTEGER NOT NULL CHECK (retention_days > 0),
    destination_type    VARCHAR(50) NOT NULL,
    destination_config  JSONB,
    -- Beyond the board:
    server_id           UUID REFERENCES monitored_servers (id) ON DELETE CASCADE,
    storage_target_id   UUID REFERENCES storage_targets (id),
    time_zone           TEXT NOT NULL DEFAULT 'UTC',
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE restore_operations (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    backup_id           UUID NOT NULL REFERENCES backup_metadata (id),
    target_database     VARCHAR(100) NOT NULL,
    point_in_time       TIMESTAMPTZ,
    restore_status      VARCHAR(50) NOT NULL
                        CHECK (restore_status IN ('running', 'completed', 'failed')),
    started_at          TIMESTAMPTZ NOT NULL,
    completed_at        TIMESTAMPTZ,
    -- Beyond the board:
    target_dir          TEXT,
    target_lsn          PG_LSN,
    duration_ms         BIGINT,
    failure_reason      TEXT
);
