-- Epic 3 tables, as on the sprint board, with these fixes:
-- * every snapshot belongs to one monitored server: `sn_snapshot` records it, and each
--   sn_stat_* row carries server_id for simple dashboard queries;
-- * snap_id is BIGINT (an INTEGER sequence runs out after ~2^31 snapshots: 100 servers at 15 s
--   reach it in 10 years);
-- * checkpoint_write_time / checkpoint_sync_time are cumulative milliseconds: DECIMAL(10,2)
--   overflows at 99,999,999.99 ms (≈ 28 hours of checkpoint writing, days on a busy server):
--   DOUBLE PRECISION, the type PostgreSQL itself reports;
-- * stats_reset and every timestamp carry a time zone;
-- * `syncstal` is a typo of `sync_state`, and CHAR(1) cannot hold its values
--   ('async', 'potential', 'sync', 'quorum'): TEXT;
-- * client_addr is NULL for standbys on a unix socket, so it cannot be in a primary key:
--   the walsender's pid identifies a standby within one snapshot;
-- * LSNs are PG_LSN (comparable, pg_wal_lsn_diff works), not TEXT; lag in bytes is stored.

CREATE SEQUENCE sn_stat_snapshot_seq AS BIGINT;

CREATE TABLE sn_snapshot (
    snap_id             BIGINT PRIMARY KEY DEFAULT nextval('sn_stat_snapshot_seq'::regclass),
    server_id           UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    server_version_num  INTEGER,
    timestamp           TIMESTAMPTZ NOT NULL
);

CREATE INDEX idx_snapshot_server_timestamp ON sn_snapshot (server_id, timestamp DESC);

CREATE TABLE sn_stat_bgwriter (
    snap_id                 BIGINT DEFAULT currval('sn_stat_snapshot_seq'::regclass) NOT NULL
                            REFERENCES sn_snapshot (snap_id) ON DELETE CASCADE,
    server_id               UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    checkpoints_timed       BIGINT,
    checkpoints_req         BIGINT,
    checkpoint_write_time   DOUBLE PRECISION,
    checkpoint_sync_time    DOUBLE PRECISION,
    buffers_checkpoint      BIGINT,
    buffers_clean           BIGINT,
    maxwritten_clean        BIGINT,
    buffers_backend         BIGINT,
    buffers_backend_fsync   BIGINT,
    buffers_alloc           BIGINT,
    stats_reset             TIMESTAMPTZ,
    timestamp               TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snap_id, timestamp)
);

CREATE INDEX idx_bgwriter_timestamp ON sn_stat_bgwriter (timestamp DESC);
CREATE INDEX idx_bgwriter_server_timestamp ON sn_stat_bgwriter (server_id, timestamp DESC);

CREATE TABLE sn_stat_archiver (
    snap_id             BIGINT DEFAULT currval('sn_stat_snapshot_seq'::regclass) NOT NULL
                        REFERENCES sn_snapshot (snap_id) ON DELETE CASCADE,
    server_id           UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    archived_count      BIGINT,
    last_archived_wal   VARCHAR(255),
    last_archived_time  TIMESTAMPTZ,
    failed_count        BIGINT,
    last_failed_wal     VARCHAR(255),
    last_failed_time    TIMESTAMPTZ,
    stats_reset         TIMESTAMPTZ,
    timestamp           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snap_id, timestamp)
);

CREATE INDEX idx_archiver_timestamp ON sn_stat_archiver (timestamp DESC);
CREATE INDEX idx_archiver_server_timestamp ON sn_stat_archiver (server_id, timestamp DESC);

CREATE TABLE sn_stat_replication (
    snap_id             BIGINT DEFAULT currval('sn_stat_snapshot_seq'::regclass) NOT NULL
                        REFERENCES sn_snapshot (snap_id) ON DELETE CASCADE,
    server_id           UUID NOT NULL REFERENCES monitored_servers (id) ON DELETE CASCADE,
    pid                 INTEGER NOT NULL,
    usesysid            OID,
    usename             NAME,
    application_name    TEXT,
    client_addr         INET,
    state               TEXT,
    backend_start       TIMESTAMPTZ,
    sync_state          TEXT,
    wal_sent_lsn        PG_LSN,
    wal_flush_lsn       PG_LSN,
    wal_replay_lsn      PG_LSN,
    wal_write_lsn       PG_LSN,
    write_lag           INTERVAL,
    flush_lag           INTERVAL,
    replay_lag          INTERVAL,
    lag_bytes           NUMERIC,
    timestamp           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snap_id, pid, timestamp)
);

CREATE INDEX idx_replication_timestamp ON sn_stat_replication (timestamp DESC);
CREATE INDEX idx_replication_server_timestamp ON sn_stat_replication (server_id, timestamp DESC);
