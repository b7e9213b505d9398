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
