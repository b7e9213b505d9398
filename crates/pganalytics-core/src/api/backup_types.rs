//! Requests and responses of the backup commands. No type here carries a key: the backup
//! encryption key lives in the OS keyring or a file the user names (see `crate::backup::keys`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Create the key that wraps every backup's data key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupKeygenRequest {
    /// Keep the key in this file (created 0600) instead of the OS keyring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub key_file: Option<String>,
    /// Replace an existing key. Backups made with the old one then need the old key to restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub replace: Option<bool>,
}

/// Where the backup encryption key is and how to recognise it (never the key).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupKeyInfo {
    /// `keyring` or the file's path.
    pub location: String,
    /// First 16 hex digits of SHA-256 over the key: printed in catalogues and errors.
    pub fingerprint: String,
}

/// `backup key`: whether the key configured here opens the encrypted backups on record — what
/// a DBA wants to know before a disaster, not during one.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupKeyStatus {
    /// The key configured here, when it can be read.
    pub key: Option<BackupKeyInfo>,
    /// Why it cannot be read, when it cannot.
    pub problem: Option<String>,
    /// What to do about `problem`.
    pub hint: Option<String>,
    /// Completed encrypted backups (not pruned) whose data key this key unwraps.
    #[ts(type = "number")]
    pub opens: i64,
    /// Completed encrypted backups (not pruned) that need another key, by fingerprint.
    pub need_other_keys: Vec<BackupKeyUse>,
}

/// Encrypted backups made with one key.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupKeyUse {
    pub fingerprint: String,
    #[ts(type = "number")]
    pub backups: i64,
    /// When the newest of them completed.
    pub newest: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupRunRequest {
    /// Registered server to back up.
    pub server: String,
    /// Registered storage target to write to.
    pub storage: String,
    /// `none`, `zstd` or `zstd:LEVEL` (1–19); default `zstd:1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub compress: Option<String>,
    /// Encrypt with AES-256-GCM under a fresh data key wrapped by the backup key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub encrypt: Option<bool>,
    /// Days the backup is kept by `backup prune --keep-days` (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub retention_days: Option<i32>,
    /// Spread the start checkpoint over `checkpoint_timeout` instead of forcing it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub spread_checkpoint: Option<bool>,
    /// Where zstd runs; default `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub compress_on: Option<CompressOn>,
}

/// Where a backup's zstd compression runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CompressOn {
    /// On the server when it can (PostgreSQL 15+ built with zstd: two of its threads, and it
    /// sends ~a tenth of the bytes on compressible data), else here — and here too when this
    /// server's previous compressed backup was stored at more than half its size: on data
    /// that barely compresses the server's zstd saves few bytes and costs more than ours.
    #[default]
    Auto,
    /// On the server, or refuse the backup when it cannot.
    Server,
    /// Here: the server's CPUs are left to its clients.
    Client,
}

/// A backup's state in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    Running,
    Completed,
    Failed,
    Deleted,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Running => "running",
            BackupStatus::Completed => "completed",
            BackupStatus::Failed => "failed",
            BackupStatus::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<BackupStatus> {
        Some(match text {
            "running" => BackupStatus::Running,
            "completed" => BackupStatus::Completed,
            "failed" => BackupStatus::Failed,
            "deleted" => BackupStatus::Deleted,
            _ => return None,
        })
    }
}

/// One backup as listed (a row of `backup_metadata`).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupSummary {
    pub id: uuid::Uuid,
    pub name: String,
    /// `full` (incremental backups come later).
    pub backup_type: String,
    pub status: BackupStatus,
    /// Registered server name, when the server is still registered.
    pub server: Option<String>,
    pub storage: Option<String>,
    /// Storage URL the objects are under.
    pub destination: Option<String>,
    /// Bytes read from the server (the tar archives and the manifest).
    #[ts(type = "number | null")]
    pub source_size_bytes: Option<i64>,
    /// Bytes stored (compressed, encrypted).
    #[ts(type = "number | null")]
    pub stored_size_bytes: Option<i64>,
    /// source / stored.
    pub compression_ratio: Option<f64>,
    /// `none` or `zstd:LEVEL`.
    pub compression: Option<String>,
    /// Where zstd ran (`server` or `client`; never `auto`); `None` when not compressed, or
    /// recorded before 2026-12-07.
    pub compressed_on: Option<CompressOn>,
    pub encrypted: bool,
    pub verified: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub retention_days: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Seconds from start to completion.
    pub duration_seconds: Option<f64>,
    pub start_lsn: Option<String>,
    pub stop_lsn: Option<String>,
    pub timeline: Option<i32>,
    pub server_version_num: Option<i32>,
    pub system_identifier: Option<String>,
    /// Measured restore time of the last `verify --restore-test`.
    pub rto_seconds: Option<i32>,
    /// SHA-256 of the signed catalogue (the board's `checksum`).
    pub checksum: Option<String>,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupListRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub server: Option<String>,
    /// Include pruned (`deleted`) backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub include_deleted: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupId {
    pub id: uuid::Uuid,
}

/// One stored object of a backup, as the catalogue lists it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupObjectInfo {
    /// Key relative to the storage target's prefix.
    pub key: String,
    #[ts(type = "number")]
    pub raw_bytes: u64,
    #[ts(type = "number")]
    pub stored_bytes: u64,
    pub sha256: String,
}

/// A backup with its catalogue and its restores.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupDetail {
    pub backup: BackupSummary,
    /// Tar archives: `base.tar` and one per tablespace.
    pub archives: Vec<BackupArchiveInfo>,
    pub wal_start_segment: Option<String>,
    pub wal_stop_segment: Option<String>,
    /// Fingerprint of the key that wraps the data key (encrypted backups).
    pub key_fingerprint: Option<String>,
    /// Fingerprint of the key that signed the catalogue.
    pub signed_by: Option<String>,
    pub restores: Vec<RestoreSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupArchiveInfo {
    pub name: String,
    pub tablespace_oid: Option<u32>,
    /// The tablespace's folder on the source server.
    pub location: Option<String>,
    #[ts(type = "number")]
    pub raw_bytes: u64,
    #[ts(type = "number")]
    pub stored_bytes: u64,
    pub objects: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupVerifyRequest {
    pub id: uuid::Uuid,
    /// Also restore into a temporary cluster, start it, read its catalogs, remove it, and
    /// record the measured restore time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub restore_test: Option<bool>,
}

/// What is wrong with one object of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupProblem {
    /// Object key, or the file inside the archive for a manifest mismatch.
    pub object: String,
    /// `missing`, `size_mismatch`, `checksum_mismatch`, `authentication_failed`,
    /// `undecodable`, `manifest_mismatch`, `catalogue_signature_invalid`, `catalogue_changed`.
    pub problem: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupVerification {
    pub backup_id: uuid::Uuid,
    /// No problem found.
    pub intact: bool,
    pub objects_checked: usize,
    #[ts(type = "number")]
    pub bytes_checked: u64,
    /// Files of the server's `backup_manifest` whose checksum was compared.
    pub manifest_files_checked: usize,
    /// The first problems found (at most 100).
    pub problems: Vec<BackupProblem>,
    /// The restore test's measured duration, when one ran.
    pub restore_test_seconds: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupRestoreRequest {
    pub id: uuid::Uuid,
    /// An empty (or absent) folder; becomes the restored data directory.
    pub target_dir: String,
    /// Start the restored server afterwards (with the matching PostgreSQL binaries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub start: Option<bool>,
    /// Port for `start` (default: a free one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreSummary {
    pub id: uuid::Uuid,
    pub backup_id: uuid::Uuid,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub target_dir: Option<String>,
    /// Folders the tablespaces were restored into.
    pub tablespace_dirs: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    #[ts(type = "number")]
    pub bytes_restored: u64,
    /// Set when the restored server was started: its port.
    pub started_port: Option<u16>,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupPruneRequest {
    pub server: String,
    /// Keep the newest N completed full backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub keep_full: Option<u32>,
    /// Keep backups younger than D days (default: each backup's own retention_days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub keep_days: Option<u32>,
    /// List what would go without removing anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub dry_run: Option<bool>,
    /// Remove at most these backups (the ones a dry run listed and the user confirmed); each
    /// must still qualify under the rules, so nothing unconfirmed goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub only: Option<Vec<uuid::Uuid>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrunedBackup {
    pub id: uuid::Uuid,
    pub name: String,
    pub status: BackupStatus,
    pub completed_at: Option<DateTime<Utc>>,
    /// Why it goes: `older than D days`, `beyond the newest N`, `failed`.
    pub reason: String,
    #[ts(type = "number")]
    pub objects_removed: u64,
}

/// `backup import`: record the backups a storage target holds (after losing the repository,
/// or on another machine), from their signed catalogues.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupImportRequest {
    /// Registered storage target to read.
    pub storage: String,
    /// Registered server to attach the backups to (else they belong to none).
    pub server: Option<String>,
    /// Days `backup prune` keeps them (default: what each catalogue says it was taken with,
    /// else 30).
    pub retention_days: Option<i32>,
    /// PEM public key that must have signed the catalogues (default: the installation's).
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupImportResult {
    /// Backups recorded now, newest first.
    pub imported: Vec<BackupSummary>,
    /// Backups found that were on record already.
    pub already_recorded: usize,
    /// What in the store could not be trusted, with why (a bad signature, a changed
    /// catalogue, …): catalogues, whose backups are not imported, and verification records,
    /// which are ignored (the backup is imported without their verdict).
    pub refused: Vec<BackupImportProblem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupImportProblem {
    pub backup_id: uuid::Uuid,
    pub object: String,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupPruneResult {
    pub dry_run: bool,
    pub removed: Vec<PrunedBackup>,
    /// Completed backups that stay.
    pub kept: usize,
}
