-- Engine metrics beyond the board's three tables (issue 4). The board's tables stay as landed;
-- this adds what PostgreSQL 17/18 report, what rates need to survive resets and restarts, and
-- the views DBAs ask postgres_exporter for. Every added column is nullable: NULL means "this
-- server version has no such metric" (never 0), see docs/DATABASE_ENGINE_METRICS.md.

-- What a snapshot needs to be interpreted later:
-- * postmaster_start_time tells a restart apart from a statistics reset;
-- * current_wal_lsn (pg_current_wal_lsn on a primary, the receive/replay LSN on a standby) and
--   wal_segment_size make archive lag and slot retention computable without assuming 16 MB;
-- * settings holds the few settings checkpoint advice names (max_wal_size, bgwriter_*), so
--   `metrics show` can advise from the repository alone. Never archive_command (it may hold
--   credentials).
ALTER TABLE sn_snapshot
    ADD COLUMN in_recovery            BOOLEAN,
    ADD COLUMN postmaster_start_time  TIMESTAMPTZ,
    ADD COLUMN current_wal_lsn        PG_LSN,
    ADD COLUMN wal_segment_size       BIGINT,
    ADD COLUMN settings               JSONB;

-- pg_stat_checkpointer (17+) fields the board lacks, and the reset times of the views that feed
-- the board's columns on 17+ (pg_stat_checkpointer and pg_stat_io are reset separately from
-- pg_stat_bgwriter: a rate must only span snapshots where its own source was not reset).
ALTER TABLE sn_stat_bgwriter
    ADD COLUMN checkpoints_done          BIGINT,
    ADD COLUMN restartpoints_timed       BIGINT,
    ADD COLUMN restartpoints_req         BIGINT,
    ADD COLUMN restartpoints_done        BIGINT,
    ADD COLUMN slru_written              BIGINT,
    ADD COLUMN checkpointer_stats_reset  TIMESTAMPTZ,
    ADD COLUMN io_stats_reset            TIMESTAMPTZ;

-- Archive lag, and the archive rate (files per second since the previous snapshot of the same
-- server, NULL when no valid previous snapshot exists: first one, reset, counter went back).
-- Stored rather than recomputed so dashboards need no reset logic of their own.
ALTER TABLE sn_stat_archiver
    ADD COLUMN current_wal_file      TEXT,
    ADD COLUMN archive_lag_segments  BIGINT,
    ADD COLUMN archive_lag_bytes     BIGINT,
    ADD COLUMN archive_rate          DOUBLE PRECISION;

-- On a standby: its WAL receiver (at most one row per snapshot).
CREATE TABLE sn_stat_wal_receiver (
    snap_id                BIGINT NOT NULL REFERENCES sn_snapshot (snap_id) ON DELETE CASCADE,
    server_id              UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    pid                    INTEGER,
    status                 TEXT,
    receive_start_lsn      PG_LSN,
    written_lsn            PG_LSN,
    flushed_lsn            PG_LSN,
    received_tli           INTEGER,
    last_msg_send_time     TIMESTAMPTZ,
    last_msg_receipt_time  TIMESTAMPTZ,
    latest_end_lsn         PG_LSN,
    latest_end_time        TIMESTAMPTZ,
    slot_name              TEXT,
    sender_host            TEXT,
    sender_port            INTEGER,
    replay_lsn             PG_LSN,
    replay_lag_bytes       BIGINT,
    last_replay_time       TIMESTAMPTZ,
    timestamp              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snap_id)
);

CREATE INDEX idx_wal_receiver_server_timestamp ON sn_stat_wal_receiver (server_id, timestamp DESC);

-- pg_replication_slots, with the WAL each slot holds back (retained_bytes).
CREATE TABLE sn_stat_replication_slots (
    snap_id              BIGINT NOT NULL REFERENCES sn_snapshot (snap_id) ON DELETE CASCADE,
    server_id            UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    slot_name            TEXT NOT NULL,
    plugin               TEXT,
    slot_type            TEXT,
    database             TEXT,
    temporary            BOOLEAN,
    active               BOOLEAN,
    active_pid           INTEGER,
    restart_lsn          PG_LSN,
    confirmed_flush_lsn  PG_LSN,
    wal_status           TEXT,
    safe_wal_size        BIGINT,
    retained_bytes       BIGINT,
    conflicting          BOOLEAN,
    inactive_since       TIMESTAMPTZ,
    invalidation_reason  TEXT,
    timestamp            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snap_id, slot_name)
);

CREATE INDEX idx_slots_server_timestamp ON sn_stat_replication_slots (server_id, timestamp DESC);

-- pg_stat_wal (14+; 18 dropped the write/sync columns: NULL there).
CREATE TABLE sn_stat_wal (
    snap_id           BIGINT NOT NULL REFERENCES sn_snapshot (snap_id) ON DELETE CASCADE,
    server_id         UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    wal_records       BIGINT,
    wal_fpi           BIGINT,
    wal_bytes         NUMERIC,
    wal_buffers_full  BIGINT,
    wal_write         BIGINT,
    wal_sync          BIGINT,
    wal_write_time    DOUBLE PRECISION,
    wal_sync_time     DOUBLE PRECISION,
    stats_reset       TIMESTAMPTZ,
    timestamp         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snap_id)
);

CREATE INDEX idx_wal_server_timestamp ON sn_stat_wal (server_id, timestamp DESC);

-- pg_stat_io (16+): one row per (backend_type, object, context) that has counted anything;
-- all-zero rows are not stored (about two thirds of the view on an ordinary server).
-- op_bytes is 16–17 only; read_bytes/write_bytes/extend_bytes are 18+.
CREATE TABLE sn_stat_io (
    snap_id         BIGINT NOT NULL REFERENCES sn_snapshot (snap_id) ON DELETE CASCADE,
    server_id       UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    backend_type    TEXT NOT NULL,
    object          TEXT NOT NULL,
    context         TEXT NOT NULL,
    reads           BIGINT,
    read_bytes      NUMERIC,
    read_time       DOUBLE PRECISION,
    writes          BIGINT,
    write_bytes     NUMERIC,
    write_time      DOUBLE PRECISION,
    writebacks      BIGINT,
    writeback_time  DOUBLE PRECISION,
    extends         BIGINT,
    extend_bytes    NUMERIC,
    extend_time     DOUBLE PRECISION,
    op_bytes        BIGINT,
    hits            BIGINT,
    evictions       BIGINT,
    reuses          BIGINT,
    fsyncs          BIGINT,
    fsync_time      DOUBLE PRECISION,
    stats_reset     TIMESTAMPTZ,
    timestamp       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snap_id, backend_type, object, context)
);

CREATE INDEX idx_io_server_timestamp ON sn_stat_io (server_id, timestamp DESC);

-- The outcome of the latest collection attempt per server, so a failing server is visible
-- (`metrics show`, the app, an `*_up` metric) with the reason.
CREATE TABLE sn_collection_status (
    server_id             UUID PRIMARY KEY REFERENCES monitored_servers (id) ON DELETE CASCADE,
    last_attempt_at       TIMESTAMPTZ NOT NULL,
    last_success_at       TIMESTAMPTZ,
    last_snap_id          BIGINT,
    last_error_code       TEXT,
    last_error_message    TEXT,
    last_error_hint       TEXT,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0
);
