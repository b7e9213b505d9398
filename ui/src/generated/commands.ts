// Generated from crates/pganalytics-core/src/api/mod.rs (`commands!`). Do not edit.
import type { AuditActivityRequest } from "./AuditActivityRequest";
import type { AuditCheckpointInfo } from "./AuditCheckpointInfo";
import type { AuditEraseRequest } from "./AuditEraseRequest";
import type { AuditErased } from "./AuditErased";
import type { AuditEvent } from "./AuditEvent";
import type { AuditEventId } from "./AuditEventId";
import type { AuditExportKeyRequest } from "./AuditExportKeyRequest";
import type { AuditKeyInfo } from "./AuditKeyInfo";
import type { AuditKeygenRequest } from "./AuditKeygenRequest";
import type { AuditLogRequest } from "./AuditLogRequest";
import type { AuditLogged } from "./AuditLogged";
import type { AuditLogsRequest } from "./AuditLogsRequest";
import type { AuditOutcome } from "./AuditOutcome";
import type { AuditPage } from "./AuditPage";
import type { AuditProof } from "./AuditProof";
import type { AuditRetentionApplyRequest } from "./AuditRetentionApplyRequest";
import type { AuditRetentionPolicy } from "./AuditRetentionPolicy";
import type { AuditRetentionResult } from "./AuditRetentionResult";
import type { AuditRetentionSetRequest } from "./AuditRetentionSetRequest";
import type { AuditStatus } from "./AuditStatus";
import type { AuditVerification } from "./AuditVerification";
import type { AuditVerifyRequest } from "./AuditVerifyRequest";
import type { BackupDetail } from "./BackupDetail";
import type { BackupId } from "./BackupId";
import type { BackupImportRequest } from "./BackupImportRequest";
import type { BackupImportResult } from "./BackupImportResult";
import type { BackupKeyInfo } from "./BackupKeyInfo";
import type { BackupKeyStatus } from "./BackupKeyStatus";
import type { BackupKeygenRequest } from "./BackupKeygenRequest";
import type { BackupListRequest } from "./BackupListRequest";
import type { BackupPruneRequest } from "./BackupPruneRequest";
import type { BackupPruneResult } from "./BackupPruneResult";
import type { BackupRestoreRequest } from "./BackupRestoreRequest";
import type { BackupRunRequest } from "./BackupRunRequest";
import type { BackupStatus } from "./BackupStatus";
import type { BackupSummary } from "./BackupSummary";
import type { BackupVerification } from "./BackupVerification";
import type { BackupVerifyRequest } from "./BackupVerifyRequest";
import type { CompressOn } from "./CompressOn";
import type { CreatedToken } from "./CreatedToken";
import type { Empty } from "./Empty";
import type { EngineCharts } from "./EngineCharts";
import type { Error } from "./Error";
import type { JobId } from "./JobId";
import type { JobStatus } from "./JobStatus";
import type { MetricsChartsRequest } from "./MetricsChartsRequest";
import type { MetricsPruneRequest } from "./MetricsPruneRequest";
import type { MetricsReport } from "./MetricsReport";
import type { MetricsShowRequest } from "./MetricsShowRequest";
import type { MetricsSnapshotRequest } from "./MetricsSnapshotRequest";
import type { PruneResult } from "./PruneResult";
import type { RepoStatus } from "./RepoStatus";
import type { RestoreSummary } from "./RestoreSummary";
import type { ServerAddRequest } from "./ServerAddRequest";
import type { ServerCheck } from "./ServerCheck";
import type { ServerName } from "./ServerName";
import type { ServerSummary } from "./ServerSummary";
import type { SnapshotResult } from "./SnapshotResult";
import type { StorageAddRequest } from "./StorageAddRequest";
import type { StorageCheck } from "./StorageCheck";
import type { StorageKind } from "./StorageKind";
import type { StorageName } from "./StorageName";
import type { StorageOptions } from "./StorageOptions";
import type { StorageTarget } from "./StorageTarget";
import type { TokenCreateRequest } from "./TokenCreateRequest";
import type { TokenSummary } from "./TokenSummary";
import type { VersionInfo } from "./VersionInfo";

export type { AuditActivityRequest, AuditCheckpointInfo, AuditEraseRequest, AuditErased, AuditEvent, AuditEventId, AuditExportKeyRequest, AuditKeyInfo, AuditKeygenRequest, AuditLogRequest, AuditLogged, AuditLogsRequest, AuditOutcome, AuditPage, AuditProof, AuditRetentionApplyRequest, AuditRetentionPolicy, AuditRetentionResult, AuditRetentionSetRequest, AuditStatus, AuditVerification, AuditVerifyRequest, BackupDetail, BackupId, BackupImportRequest, BackupImportResult, BackupKeyInfo, BackupKeyStatus, BackupKeygenRequest, BackupListRequest, BackupPruneRequest, BackupPruneResult, BackupRestoreRequest, BackupRunRequest, BackupStatus, BackupSummary, BackupVerification, BackupVerifyRequest, CompressOn, CreatedToken, Empty, EngineCharts, Error, JobId, JobStatus, MetricsChartsRequest, MetricsPruneRequest, MetricsReport, MetricsShowRequest, MetricsSnapshotRequest, PruneResult, RepoStatus, RestoreSummary, ServerAddRequest, ServerCheck, ServerName, ServerSummary, SnapshotResult, StorageAddRequest, StorageCheck, StorageKind, StorageName, StorageOptions, StorageTarget, TokenCreateRequest, TokenSummary, VersionInfo };

/** Every command of the core API with its request and response type. */
export interface Commands {
  /** Build version of the core. */
  version: { request: Empty; response: VersionInfo };
  /** Repository kind, location, server version and applied migrations. */
  repo_status: { request: Empty; response: RepoStatus };
  /** Monitored servers, by name. */
  server_list: { request: Empty; response: Array<ServerSummary> };
  /** Register a monitored server; the DSN's password moves to the OS keyring. */
  server_add: { request: ServerAddRequest; response: ServerSummary };
  /** Forget a monitored server and its keyring entry. */
  server_remove: { request: ServerName; response: ServerSummary };
  /** Connect and report version, privileges and feature readiness. */
  server_check: { request: ServerName; response: ServerCheck };
  /** Storage targets for backups and WAL, by name (never their credentials). */
  storage_list: { request: Empty; response: Array<StorageTarget> };
  /** Register a storage target (folder, S3, GCS, Azure Blob) after a probe; credentials */
  /** stay in the environment or move to the OS keyring. */
  storage_add: { request: StorageAddRequest; response: StorageTarget };
  /** Forget a storage target and its keyring entry (its objects stay). */
  storage_remove: { request: StorageName; response: StorageTarget };
  /** Write, read back, list and delete a probe object under the target's prefix. */
  storage_check: { request: StorageName; response: StorageCheck };
  /** Create an API token for the daemon; the token is shown once. */
  token_create: { request: TokenCreateRequest; response: CreatedToken };
  /** API tokens (names and dates, never the tokens). */
  token_list: { request: Empty; response: Array<TokenSummary> };
  /** Read a server's statistics views and store one snapshot. */
  metrics_snapshot: { request: MetricsSnapshotRequest; response: SnapshotResult };
  /** Latest engine metrics of a server, rates and advice over a window, collection status. */
  metrics_show: { request: MetricsShowRequest; response: MetricsReport };
  /** Engine charts of a server over a window (SVG), advice and collection status. */
  metrics_charts: { request: MetricsChartsRequest; response: EngineCharts };
  /** Delete engine-metric snapshots older than a retention period. */
  metrics_prune: { request: MetricsPruneRequest; response: PruneResult };
  /** Record an event sent from outside (who did what to which resource). */
  audit_log_event: { request: AuditLogRequest; response: AuditLogged };
  /** Audit events, newest first, filtered and paged. */
  audit_logs: { request: AuditLogsRequest; response: AuditPage };
  /** One audit event with its before/after values. */
  audit_show: { request: AuditEventId; response: AuditEvent };
  /** Everything one actor did (or that concerned them) in a window. */
  audit_activity: { request: AuditActivityRequest; response: Array<AuditEvent> };
  /** Events, signing key, checkpoints and retention of the audit log. */
  audit_status: { request: Empty; response: AuditStatus };
  /** Verify the audit log against the external checkpoints with the public key. */
  audit_verify: { request: AuditVerifyRequest; response: AuditVerification };
  /** Start verification as a job; read it with `job_status`. */
  audit_verify_start: { request: AuditVerifyRequest; response: JobId };
  /** Progress and result of a long operation. */
  job_status: { request: JobId; response: JobStatus };
  /** Create the checkpoint signing key (keyring or a file) and export its public key. */
  audit_keygen: { request: AuditKeygenRequest; response: AuditKeyInfo };
  /** Write the public key that verifies the checkpoints. */
  audit_export_public_key: { request: AuditExportKeyRequest; response: AuditKeyInfo };
  /** Inclusion proof of one event in a signed checkpoint. */
  audit_prove: { request: AuditEventId; response: AuditProof };
  /** Sign a checkpoint of the audit log now. */
  audit_checkpoint: { request: Empty; response: AuditCheckpointInfo | null };
  /** GDPR erasure of one actor's personal fields; the log still verifies. */
  audit_erase_subject: { request: AuditEraseRequest; response: AuditErased };
  /** Set the audit retention policy. */
  audit_retention_set: { request: AuditRetentionSetRequest; response: AuditRetentionPolicy };
  /** Seal and delete audit events older than the retention policy allows. */
  audit_retention_apply: { request: AuditRetentionApplyRequest; response: AuditRetentionResult };
  /** Create the key that wraps each encrypted backup's data key (keyring or a file). */
  backup_keygen: { request: BackupKeygenRequest; response: BackupKeyInfo };
  /** Whether the backup key here opens the encrypted backups on record. */
  backup_key_status: { request: Empty; response: BackupKeyStatus };
  /** Take a full physical backup of a server into a storage target; returns when done. */
  backup_run: { request: BackupRunRequest; response: BackupSummary };
  /** Start a backup as a job (progress in bytes); read it with `job_status`. */
  backup_start: { request: BackupRunRequest; response: JobId };
  /** Backups, newest first. */
  backup_list: { request: BackupListRequest; response: Array<BackupSummary> };
  /** One backup with its catalogue and restores. */
  backup_show: { request: BackupId; response: BackupDetail };
  /** Check every object against the signed catalogue and the server's manifest. */
  backup_verify: { request: BackupVerifyRequest; response: BackupVerification };
  /** Start verification as a job. */
  backup_verify_start: { request: BackupVerifyRequest; response: JobId };
  /** Restore a backup into an empty folder, optionally starting the server. */
  backup_restore: { request: BackupRestoreRequest; response: RestoreSummary };
  /** Start a restore as a job. */
  backup_restore_start: { request: BackupRestoreRequest; response: JobId };
  /** Remove expired backups of a server (never the last good one). */
  backup_prune: { request: BackupPruneRequest; response: BackupPruneResult };
  /** Record the backups a storage target holds, from their signed catalogues. */
  backup_import: { request: BackupImportRequest; response: BackupImportResult };
}
