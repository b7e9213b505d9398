//! Requests and responses of the API. They serialize to JSON for IPC and HTTP, export to
//! TypeScript (`ui/src/generated/`) so the UI and the core cannot drift apart, and (feature
//! `openapi`) describe themselves for the daemon's OpenAPI document.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// No arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Empty {}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    pub version: String,
    /// Oldest PostgreSQL accepted, as `server_version_num` (130000 = 13).
    pub min_server_version_num: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RepositoryKind {
    /// A cluster inside the data directory, started by pgAnalytics.
    Embedded,
    /// A database the user named with `--repository`.
    External,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepoStatus {
    pub kind: RepositoryKind,
    /// Where it is: `user@host:port/db` (never a password), or the embedded cluster's folder.
    pub location: String,
    pub data_dir: String,
    pub server_version: String,
    pub server_version_num: i32,
    pub migrations: Vec<AppliedMigration>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppliedMigration {
    #[ts(type = "number")]
    pub version: i64,
    pub description: String,
    pub installed_on: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerAddRequest {
    pub name: String,
    /// libpq connection string: URI or `key=value` form.
    pub dsn: String,
    /// Register without connecting first (the server may be down for maintenance).
    #[serde(default)]
    #[ts(optional)]
    pub skip_check: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerName {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerSummary {
    pub id: uuid::Uuid,
    pub name: String,
    /// The connection string as stored: keyword/value form without any password.
    pub dsn: String,
    /// A password for this server is held in the OS keyring.
    pub password_in_keyring: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerCheck {
    pub name: String,
    /// `version()` of the server.
    pub version: String,
    pub server_version_num: i32,
    pub current_user: String,
    pub is_superuser: bool,
    /// Member of `pg_monitor` (or superuser): can read every statistics view.
    pub can_read_stats: bool,
    /// Has the REPLICATION attribute (or superuser): can stream base backups and WAL.
    pub can_replicate: bool,
    pub in_recovery: bool,
    pub settings: Vec<ServerSetting>,
    /// What each feature of pgAnalytics needs and whether this server has it.
    pub features: Vec<FeatureReadiness>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerSetting {
    pub name: String,
    /// `None` when the server version has no such setting.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureReadiness {
    /// `engine_metrics`, `base_backup`, `wal_archiving`, `point_in_time_recovery`,
    /// `incremental_backup`.
    pub feature: String,
    pub ready: bool,
    /// What to change when not ready (a GRANT, a setting), or what is fine.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenCreateRequest {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub name: String,
    /// Shown once; only its SHA-256 is stored.
    pub token: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenSummary {
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[ts(optional)]
    pub last_used_at: Option<DateTime<Utc>>,
}

// ---- Engine metrics (issue 4) -------------------------------------------------------------
//
// Field names equal the `sn_stat_*` column names and the keys of the collectors' JSON, so one
// serde mapping serves the server, the repository and the shells. Counters are cumulative as
// PostgreSQL reports them; `None` means the server version has no such metric (never 0).

/// Ask for one snapshot of a server, or its report.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsShowRequest {
    pub server: String,
    /// Window for rates and advice, e.g. `15m`, `1h`, `2d` (default `1h`).
    #[serde(default)]
    #[ts(optional)]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsSnapshotRequest {
    pub server: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsPruneRequest {
    /// Keep snapshots younger than this (e.g. `30d`); older ones are deleted with their rows.
    pub keep: String,
    /// Only this server's snapshots (default: all servers).
    #[serde(default)]
    #[ts(optional)]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PruneResult {
    #[ts(type = "number")]
    pub deleted_snapshots: i64,
    /// Snapshots taken before this instant were deleted.
    pub cutoff: DateTime<Utc>,
}

/// Checkpointer and background writer: the board's ten metrics plus 17/18's additions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BgwriterValues {
    #[ts(type = "number | null")]
    pub checkpoints_timed: Option<i64>,
    #[ts(type = "number | null")]
    pub checkpoints_req: Option<i64>,
    /// Checkpoints actually performed (18+).
    #[ts(type = "number | null")]
    pub checkpoints_done: Option<i64>,
    #[ts(type = "number | null")]
    pub restartpoints_timed: Option<i64>,
    #[ts(type = "number | null")]
    pub restartpoints_req: Option<i64>,
    #[ts(type = "number | null")]
    pub restartpoints_done: Option<i64>,
    /// Milliseconds.
    pub checkpoint_write_time: Option<f64>,
    /// Milliseconds.
    pub checkpoint_sync_time: Option<f64>,
    #[ts(type = "number | null")]
    pub buffers_checkpoint: Option<i64>,
    /// SLRU buffers written by checkpoints (18+).
    #[ts(type = "number | null")]
    pub slru_written: Option<i64>,
    #[ts(type = "number | null")]
    pub buffers_clean: Option<i64>,
    #[ts(type = "number | null")]
    pub maxwritten_clean: Option<i64>,
    /// 13–16: pg_stat_bgwriter; 17+: pg_stat_io writes of every other process type.
    #[ts(type = "number | null")]
    pub buffers_backend: Option<i64>,
    #[ts(type = "number | null")]
    pub buffers_backend_fsync: Option<i64>,
    #[ts(type = "number | null")]
    pub buffers_alloc: Option<i64>,
    /// Reset time of pg_stat_bgwriter.
    pub stats_reset: Option<DateTime<Utc>>,
    /// Reset time of pg_stat_checkpointer (17+).
    pub checkpointer_stats_reset: Option<DateTime<Utc>>,
    /// Reset time of pg_stat_io, source of buffers_backend* on 17+.
    pub io_stats_reset: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArchiverValues {
    #[ts(type = "number | null")]
    pub archived_count: Option<i64>,
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<DateTime<Utc>>,
    #[ts(type = "number | null")]
    pub failed_count: Option<i64>,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<DateTime<Utc>>,
    pub stats_reset: Option<DateTime<Utc>>,
    /// WAL file being written (primary only).
    pub current_wal_file: Option<String>,
    /// Complete segments written but not yet archived (`None`: archiving off, nothing archived
    /// yet, or a standby).
    #[ts(type = "number | null")]
    pub archive_lag_segments: Option<i64>,
    /// Bytes of WAL after the end of the last archived segment.
    #[ts(type = "number | null")]
    pub archive_lag_bytes: Option<i64>,
    /// Files archived per second since the previous snapshot of this server.
    pub archive_rate: Option<f64>,
}

/// One walsender on a primary (`pg_stat_replication`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicationRow {
    pub pid: i32,
    #[ts(type = "number | null")]
    pub usesysid: Option<i64>,
    pub usename: Option<String>,
    pub application_name: Option<String>,
    /// `None` for a standby on a unix socket.
    pub client_addr: Option<String>,
    pub state: Option<String>,
    pub backend_start: Option<DateTime<Utc>>,
    pub sync_state: Option<String>,
    pub wal_sent_lsn: Option<String>,
    pub wal_write_lsn: Option<String>,
    pub wal_flush_lsn: Option<String>,
    pub wal_replay_lsn: Option<String>,
    /// Seconds.
    pub write_lag: Option<f64>,
    pub flush_lag: Option<f64>,
    pub replay_lag: Option<f64>,
    /// Bytes between the primary's current WAL position and the standby's replay position.
    #[ts(type = "number | null")]
    pub lag_bytes: Option<i64>,
}

/// The WAL receiver of a standby (`pg_stat_wal_receiver`) and its replay position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalReceiverValues {
    pub pid: Option<i32>,
    pub status: Option<String>,
    pub receive_start_lsn: Option<String>,
    pub written_lsn: Option<String>,
    pub flushed_lsn: Option<String>,
    pub received_tli: Option<i32>,
    pub last_msg_send_time: Option<DateTime<Utc>>,
    pub last_msg_receipt_time: Option<DateTime<Utc>>,
    pub latest_end_lsn: Option<String>,
    pub latest_end_time: Option<DateTime<Utc>>,
    pub slot_name: Option<String>,
    pub sender_host: Option<String>,
    pub sender_port: Option<i32>,
    pub replay_lsn: Option<String>,
    /// Received (flushed) but not yet replayed, in bytes.
    #[ts(type = "number | null")]
    pub replay_lag_bytes: Option<i64>,
    pub last_replay_time: Option<DateTime<Utc>>,
}

/// A replication slot (`pg_replication_slots`) and the WAL it holds back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlotRow {
    pub slot_name: String,
    pub plugin: Option<String>,
    pub slot_type: Option<String>,
    pub database: Option<String>,
    pub temporary: Option<bool>,
    pub active: Option<bool>,
    pub active_pid: Option<i32>,
    pub restart_lsn: Option<String>,
    pub confirmed_flush_lsn: Option<String>,
    /// `reserved`, `extended`, `unreserved`, `lost`.
    pub wal_status: Option<String>,
    #[ts(type = "number | null")]
    pub safe_wal_size: Option<i64>,
    /// Bytes of WAL kept for this slot (current WAL position − restart_lsn).
    #[ts(type = "number | null")]
    pub retained_bytes: Option<i64>,
    /// 16+.
    pub conflicting: Option<bool>,
    /// 17+.
    pub inactive_since: Option<DateTime<Utc>>,
    /// 17+.
    pub invalidation_reason: Option<String>,
}

/// `pg_stat_wal` (14+; 18 has no write/sync columns).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalValues {
    #[ts(type = "number | null")]
    pub wal_records: Option<i64>,
    #[ts(type = "number | null")]
    pub wal_fpi: Option<i64>,
    #[ts(type = "number | null")]
    pub wal_bytes: Option<i64>,
    #[ts(type = "number | null")]
    pub wal_buffers_full: Option<i64>,
    #[ts(type = "number | null")]
    pub wal_write: Option<i64>,
    #[ts(type = "number | null")]
    pub wal_sync: Option<i64>,
    pub wal_write_time: Option<f64>,
    pub wal_sync_time: Option<f64>,
    pub stats_reset: Option<DateTime<Utc>>,
}

/// One row of `pg_stat_io` (16+) that counted anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IoRow {
    pub backend_type: String,
    pub object: String,
    pub context: String,
    #[ts(type = "number | null")]
    pub reads: Option<i64>,
    #[ts(type = "number | null")]
    pub read_bytes: Option<i64>,
    pub read_time: Option<f64>,
    #[ts(type = "number | null")]
    pub writes: Option<i64>,
    #[ts(type = "number | null")]
    pub write_bytes: Option<i64>,
    pub write_time: Option<f64>,
    #[ts(type = "number | null")]
    pub writebacks: Option<i64>,
    pub writeback_time: Option<f64>,
    #[ts(type = "number | null")]
    pub extends: Option<i64>,
    #[ts(type = "number | null")]
    pub extend_bytes: Option<i64>,
    pub extend_time: Option<f64>,
    #[ts(type = "number | null")]
    pub op_bytes: Option<i64>,
    #[ts(type = "number | null")]
    pub hits: Option<i64>,
    #[ts(type = "number | null")]
    pub evictions: Option<i64>,
    #[ts(type = "number | null")]
    pub reuses: Option<i64>,
    #[ts(type = "number | null")]
    pub fsyncs: Option<i64>,
    pub fsync_time: Option<f64>,
    pub stats_reset: Option<DateTime<Utc>>,
}

/// Everything one snapshot read from a server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotValues {
    pub server_version_num: i32,
    /// The server's clock when the statistics were read.
    pub collected_at: DateTime<Utc>,
    pub in_recovery: bool,
    pub postmaster_start_time: Option<DateTime<Utc>>,
    pub current_wal_lsn: Option<String>,
    #[ts(type = "number | null")]
    pub wal_segment_size: Option<i64>,
    /// Settings advice refers to (`max_wal_size`, `checkpoint_timeout`, `bgwriter_*`,
    /// `archive_mode`), as `current_setting()` shows them.
    #[ts(type = "Record<string, string>")]
    pub settings: std::collections::BTreeMap<String, String>,
    pub bgwriter: BgwriterValues,
    pub archiver: ArchiverValues,
    /// `None` before 14.
    pub wal: Option<WalValues>,
    /// `None` before 16.
    pub io: Option<Vec<IoRow>>,
    /// Standbys streaming from this server.
    pub replication: Vec<ReplicationRow>,
    /// `Some` on a standby with a running WAL receiver.
    pub wal_receiver: Option<WalReceiverValues>,
    pub slots: Vec<SlotRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotResult {
    #[ts(type = "number")]
    pub snap_id: i64,
    pub server: String,
    pub values: SnapshotValues,
}

/// Change of one cumulative counter over the report's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricRate {
    /// Counter name, as in the snapshot (`checkpoints_req`, `archived_count`, `wal_bytes` …).
    pub metric: String,
    /// Sum of the valid increases in the window.
    pub delta: Option<f64>,
    /// `delta` per second of the time the valid increases cover.
    pub per_second: Option<f64>,
    /// Seconds covered by valid pairs of snapshots.
    pub covered_seconds: f64,
    /// Pairs of snapshots left out and why (statistics reset, restart, counter went back).
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AdviceSeverity {
    Info,
    Warning,
    Critical,
}

/// Something a DBA should act on, with the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Advice {
    pub severity: AdviceSeverity,
    /// `checkpoints`, `bgwriter`, `archiver`, `replication_slots`.
    pub topic: String,
    /// What the numbers show.
    pub finding: String,
    /// What to do.
    pub action: String,
}

/// The outcome of the latest collection attempts of a server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionStatus {
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    #[ts(type = "number | null")]
    pub last_snap_id: Option<i64>,
    /// The last attempt failed with this error (cleared by the next success).
    pub last_error: Option<crate::error::Error>,
    pub consecutive_failures: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsReport {
    pub server: String,
    /// The newest snapshot; `None` before the first.
    #[ts(type = "number | null")]
    pub latest_snap_id: Option<i64>,
    pub latest: Option<SnapshotValues>,
    /// Start of the window the rates and advice cover.
    pub since: DateTime<Utc>,
    pub snapshots_in_window: i32,
    pub rates: Vec<MetricRate>,
    pub advice: Vec<Advice>,
    pub status: CollectionStatus,
}

// ---- Engine charts (issue 4, desktop panel; reused by PDF reports) ------------------------

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsChartsRequest {
    pub server: String,
    /// Window the charts cover, e.g. `15m`, `1h`, `1d` (default `1h`).
    #[serde(default)]
    #[ts(optional)]
    pub since: Option<String>,
    /// The viewer's offset from UTC in minutes, east positive (JavaScript:
    /// `-new Date().getTimezoneOffset()`); the time axes show local time. Default 0 (UTC).
    #[serde(default)]
    #[ts(optional)]
    pub utc_offset_minutes: Option<i32>,
}

/// One chart, drawn by the core.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chart {
    /// `checkpoints`, `buffers`, `archiver`, `lag_bytes`, `lag_time`.
    pub id: String,
    pub title: String,
    /// A complete SVG document (every text escaped); show it as an image.
    pub svg: String,
    pub width: u32,
    pub height: u32,
    /// Set when the chart has nothing to plot yet, with the reason (also drawn in the SVG).
    pub empty_message: Option<String>,
}

/// The Engine charts panel: every chart of one server over a window, the advice, and how
/// collection is going.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngineCharts {
    pub server: String,
    /// Start of the window.
    pub since: DateTime<Utc>,
    pub snapshots_in_window: i32,
    /// Server time of the newest snapshot (also when older than the window); `None` before
    /// the first.
    pub latest_snapshot_at: Option<DateTime<Utc>>,
    pub server_version_num: Option<i32>,
    /// The newest snapshot was taken on a standby.
    pub in_recovery: Option<bool>,
    pub charts: Vec<Chart>,
    /// Advice from the newest snapshot and the window's rates (as `metrics show`).
    pub advice: Vec<Advice>,
    pub status: CollectionStatus,
}
