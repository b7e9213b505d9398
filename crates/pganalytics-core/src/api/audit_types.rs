//! Requests and responses of the audit log commands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    Failure,
    /// Refused for lack of authority (a wrong token, a missing privilege).
    Denied,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Denied => "denied",
        }
    }
}

/// One recorded event. Personal fields are `null` once the subject was erased.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Position in the chain (1, 2, 3, …).
    #[ts(type = "number")]
    pub id: i64,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub action: String,
    pub outcome: AuditOutcome,
    /// `cli`, `desktop`, `daemon`, `api` or `system`.
    pub source: String,
    pub actor_id: uuid::Uuid,
    /// `os_user`, `api_token`, `db_role`, `external` (named by an event sent in) or `system`.
    pub actor_kind: String,
    pub actor_name: String,
    pub subject_id: Option<uuid::Uuid>,
    #[ts(type = "Record<string, unknown>")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub changes: serde_json::Value,
    #[ts(type = "unknown")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub old_values: Option<serde_json::Value>,
    #[ts(type = "unknown")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub new_values: Option<serde_json::Value>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[ts(type = "unknown")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub personal_details: Option<serde_json::Value>,
    /// The personal fields were erased (GDPR); the event still verifies.
    pub personal_erased: bool,
    pub content_hash: String,
    pub previous_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Filters of `audit logs` and `GET /api/v1/audit/logs`; newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
pub struct AuditLogsRequest {
    /// Actor id (UUID) or name.
    #[serde(default)]
    #[ts(optional)]
    pub actor: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub action: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub resource_type: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub event_type: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub since: Option<DateTime<Utc>>,
    #[serde(default)]
    #[ts(optional)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many events (default 100, at most 1000).
    #[serde(default)]
    #[ts(optional, type = "number")]
    pub limit: Option<i64>,
    #[serde(default)]
    #[ts(optional, type = "number")]
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Events matching the filters, over all pages.
    #[ts(type = "number")]
    pub total: i64,
    #[ts(type = "number")]
    pub limit: i64,
    #[ts(type = "number")]
    pub offset: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEventId {
    #[ts(type = "number")]
    pub id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditActivityRequest {
    /// Actor id (UUID) or name.
    pub actor: String,
    #[serde(default)]
    #[ts(optional)]
    pub since: Option<DateTime<Utc>>,
    #[serde(default)]
    #[ts(optional)]
    pub until: Option<DateTime<Utc>>,
}

/// An event sent from outside (`audit log`, the API): who did what to which resource.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogRequest {
    /// Who acted, e.g. a person's login or a system's name; recorded as an actor of kind
    /// `external` (the token or user that sent the event is kept in `changes.recorded_by`).
    pub actor: String,
    pub action: String,
    pub resource_type: String,
    #[serde(default)]
    #[ts(optional)]
    pub resource_id: Option<String>,
    /// Dotted event name (default `external.<action>`).
    #[serde(default)]
    #[ts(optional)]
    pub event_type: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub outcome: Option<AuditOutcome>,
    /// A JSON object of non-personal details.
    #[serde(default)]
    #[ts(optional, type = "Record<string, unknown>")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<serde_json::Value>,
    #[serde(default)]
    #[ts(optional, type = "unknown")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub old_values: Option<serde_json::Value>,
    #[serde(default)]
    #[ts(optional, type = "unknown")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub new_values: Option<serde_json::Value>,
    /// Personal data about the actor (an e-mail address, a name): covered by the salted
    /// digest and removed by `audit erase-subject` for that actor.
    #[serde(default)]
    #[ts(optional, type = "unknown")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub personal_details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogged {
    #[ts(type = "number")]
    pub id: i64,
    pub event_id: uuid::Uuid,
}

/// `audit verify`: a range (default: everything) and, optionally, where the trust comes from
/// (default: the public key and checkpoint folder of the config).
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerifyRequest {
    #[serde(default)]
    #[ts(optional, type = "number")]
    pub from: Option<i64>,
    #[serde(default)]
    #[ts(optional, type = "number")]
    pub to: Option<i64>,
    /// Path of a PEM public key.
    #[serde(default)]
    #[ts(optional)]
    pub public_key: Option<String>,
    /// Folder of the external checkpoints.
    #[serde(default)]
    #[ts(optional)]
    pub checkpoints: Option<String>,
}

/// What verification found. `intact = false` names the first bad event and the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditProblem {
    ContentChanged,
    EventMissing,
    EventInserted,
    OrderChanged,
    TailMissing,
    SignatureInvalid,
    /// The database holds signed checkpoints the checkpoint folder lacks.
    CheckpointsMissing,
}

impl AuditProblem {
    pub fn describe(self) -> &'static str {
        match self {
            AuditProblem::ContentChanged => "content changed",
            AuditProblem::EventMissing => "event missing",
            AuditProblem::EventInserted => "event inserted",
            AuditProblem::OrderChanged => "order changed",
            AuditProblem::TailMissing => "tail missing",
            AuditProblem::SignatureInvalid => "signature invalid",
            AuditProblem::CheckpointsMissing => "checkpoints missing",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditCheckpointInfo {
    /// `checkpoint` or `seal`.
    pub kind: String,
    #[ts(type = "number")]
    pub tree_size: i64,
    pub root_hash: String,
    pub chain_head: Option<String>,
    pub signed_at: DateTime<Utc>,
    pub algorithm: String,
    pub key_fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    pub intact: bool,
    pub problem: Option<AuditProblem>,
    #[ts(type = "number | null")]
    pub first_bad_id: Option<i64>,
    pub detail: Option<String>,
    #[ts(type = "number")]
    pub checked_from: i64,
    #[ts(type = "number")]
    pub checked_to: i64,
    #[ts(type = "number")]
    pub events_checked: i64,
    /// Newest events no signed checkpoint covers yet (only their chain was checked).
    #[ts(type = "number")]
    pub unsealed_events: i64,
    /// The newest external checkpoint the log was checked against.
    pub checkpoint: Option<AuditCheckpointInfo>,
    pub warnings: Vec<String>,
    pub seconds: f64,
    pub events_per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditKeygenRequest {
    /// `rsa-2048` (default) or `ed25519`.
    #[serde(default)]
    #[ts(optional)]
    pub algorithm: Option<String>,
    /// Keep the private key in this file (mode 0600) instead of the OS keyring.
    #[serde(default)]
    #[ts(optional)]
    pub key_file: Option<String>,
    /// Folder for the external checkpoints (default `<data-dir>/audit-checkpoints`).
    #[serde(default)]
    #[ts(optional)]
    pub checkpoints: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditKeyInfo {
    pub algorithm: String,
    pub fingerprint: String,
    /// Where the private key is: `keyring entry …` or `file …`.
    pub private_key: String,
    pub public_key_path: String,
    pub checkpoints: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditExportKeyRequest {
    /// Where to write the PEM public key.
    pub out: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditStatus {
    pub log_id: uuid::Uuid,
    #[ts(type = "number")]
    pub events: i64,
    #[ts(type = "number | null")]
    pub last_id: Option<i64>,
    pub signing_key: Option<String>,
    pub checkpoints: String,
    pub newest_checkpoint: Option<AuditCheckpointInfo>,
    #[ts(type = "number")]
    pub unsealed_events: i64,
    pub retention: Option<AuditRetentionPolicy>,
    /// Whether the repository's pool runs as `pganalytics_app` (no UPDATE/DELETE on the log).
    pub restricted_role: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditProof {
    #[ts(type = "number")]
    pub id: i64,
    pub content_hash: String,
    /// 0-based leaf index (id − 1) in the RFC 6962 tree.
    #[ts(type = "number")]
    pub leaf_index: i64,
    #[ts(type = "number")]
    pub tree_size: i64,
    pub root_hash: String,
    /// Audit path, hex, bottom up.
    pub proof: Vec<String>,
    /// The proof leads from the event to the checkpoint's signed root.
    pub verified: bool,
    pub checkpoint: AuditCheckpointInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEraseRequest {
    /// Actor id (UUID) or name.
    pub actor: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditErased {
    pub actor_id: uuid::Uuid,
    #[ts(type = "number")]
    pub events_erased: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRetentionPolicy {
    pub retention_days: i32,
    pub archive_after_days: Option<i32>,
    pub deletion_allowed: bool,
    pub compliance_framework: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRetentionSetRequest {
    pub retention_days: i32,
    #[serde(default)]
    #[ts(optional)]
    pub archive_after_days: Option<i32>,
    #[serde(default)]
    #[ts(optional)]
    pub deletion_allowed: Option<bool>,
    /// `GDPR`, `HIPAA`, `SOX` or `PCI-DSS`.
    #[serde(default)]
    #[ts(optional)]
    pub compliance_framework: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRetentionApplyRequest {
    #[serde(default)]
    #[ts(optional)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRetentionResult {
    /// Events up to this id are (or would be) removed; `null` when none is old enough.
    #[ts(type = "number | null")]
    pub through_id: Option<i64>,
    #[ts(type = "number")]
    pub removed: i64,
    pub dry_run: bool,
    pub seal: Option<AuditCheckpointInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// A long operation's progress and, once finished, its result or error.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStatus {
    pub id: uuid::Uuid,
    /// e.g. `audit_verify`.
    pub kind: String,
    pub state: JobState,
    #[ts(type = "number")]
    pub done: i64,
    #[ts(type = "number")]
    pub total: i64,
    /// The command's response, once succeeded (e.g. an `AuditVerification`).
    #[ts(type = "unknown")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<serde_json::Value>,
    pub error: Option<crate::Error>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobId {
    pub id: uuid::Uuid,
}
