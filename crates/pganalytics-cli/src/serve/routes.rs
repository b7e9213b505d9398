//! Routes of the daemon and the OpenAPI document generated from them.

use super::collect::Registry;
use super::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Extension, Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pganalytics_core::api::{
    Api, AuditActivityRequest, AuditCheckpointInfo, AuditEvent, AuditEventId, AuditLogRequest,
    AuditLogged, AuditLogsRequest, AuditOutcome, AuditPage, AuditProblem, AuditVerification,
    AuditVerifyRequest, BackupArchiveInfo, BackupDetail, BackupId, BackupImportProblem,
    BackupImportRequest, BackupImportResult, BackupKeyInfo, BackupKeyStatus, BackupKeyUse,
    BackupListRequest, BackupProblem, BackupRestoreRequest, BackupRunRequest, BackupStatus,
    BackupSummary, BackupVerification, BackupVerifyRequest, Empty, JobId, JobState, JobStatus,
    MetricsReport, MetricsShowRequest, MetricsSnapshotRequest, RepoStatus, RestoreSummary,
    ServerSummary, SnapshotResult, VersionInfo,
};
use pganalytics_core::audit::{Actor, Caller, Source};
use pganalytics_core::{Error, ErrorCode};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

type AppState = Arc<Api>;

#[derive(OpenApi)]
#[openapi(
    info(title = "pgAnalytics daemon API", description = "Headless pgAnalytics: the same core as the desktop app and the CLI."),
    paths(healthz, version, servers, repository, metrics_snapshot, metrics_show, prometheus_metrics,
        audit_logs, audit_show, audit_verify, audit_activity, audit_log_event,
        backups, backup_show, backup_trigger, backup_verify, backup_restore, backup_key,
        backup_import, job_status),
    components(schemas(VersionInfo, ServerSummary, RepoStatus, SnapshotResult, MetricsReport,
        AuditPage, AuditEvent, AuditOutcome, AuditVerifyRequest, AuditVerification, AuditProblem,
        AuditCheckpointInfo, AuditLogRequest, AuditLogged,
        BackupSummary, BackupStatus, BackupDetail, BackupArchiveInfo, RestoreSummary,
        BackupRunRequest, BackupVerifyBody, BackupRestoreBody, BackupVerification, BackupProblem,
        BackupKeyStatus, BackupKeyInfo, BackupKeyUse, BackupImportRequest, BackupImportResult,
        BackupImportProblem,
        JobId, JobStatus, JobState,
        pganalytics_core::Error, pganalytics_core::ErrorCode)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, also served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = pganalytics_core::VERSION.to_string();
    doc
}

pub fn router(api: AppState, registry: Registry) -> Router {
    let authenticated = Router::new()
        .route("/metrics", get(prometheus_metrics))
        .route("/api/v1/version", get(version))
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/repository", get(repository))
        .route("/api/v1/servers/{name}/metrics", get(metrics_show))
        .route(
            "/api/v1/servers/{name}/metrics/snapshot",
            post(metrics_snapshot),
        )
        .route("/api/v1/audit/logs", get(audit_logs))
        .route("/api/v1/audit/logs/{id}", get(audit_show))
        .route("/api/v1/audit/verify", post(audit_verify))
        .route("/api/v1/audit/activity/users/{userId}", get(audit_activity))
        .route("/api/v1/audit/events", post(audit_log_event))
        .route("/api/v1/backups", get(backups))
        .route("/api/v1/backups/trigger", post(backup_trigger))
        .route("/api/v1/backups/key", get(backup_key))
        .route("/api/v1/backups/import", post(backup_import))
        .route("/api/v1/backups/{backupId}", get(backup_show))
        .route("/api/v1/backups/{backupId}/verify", post(backup_verify))
        .route("/api/v1/backups/{backupId}/restore", post(backup_restore))
        .route("/api/v1/jobs/{jobId}", get(job_status))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_token,
        ))
        .layer(Extension(registry));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(|| async { Json(openapi()) }))
        .merge(authenticated)
        .with_state(api)
}

/// The Api acting for the authenticated caller of this request (its token, address and user
/// agent): what the handler does is audited under that identity.
#[derive(Clone)]
struct AsCaller(Api);

/// Bearer-token authentication: the token's hash must match a stored, unrevoked token. Both a
/// use and a rejection are audited with the peer's address and user agent; the handler then
/// acts as the token ([`AsCaller`]).
async fn require_token(
    State(api): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = header.strip_prefix("Bearer ").unwrap_or_default().trim();
    if token.is_empty() {
        return Err(Error::new(ErrorCode::Unauthorized, "missing API token")
            .with_hint("send `Authorization: Bearer <token>`; create one with `pganalytics token create NAME`")
            .into());
    }
    let ip_address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let user_agent = request.headers().get(USER_AGENT).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(MAX_USER_AGENT)
            .collect::<String>()
    });
    let caller = |actor| Caller {
        actor,
        source: Source::Api,
        ip_address,
        user_agent: user_agent.clone(),
    };
    let name = api
        .with_caller(caller(Actor::anonymous()))
        .authenticate_token(token)
        .await?;
    tracing::debug!(token = %name, path = %request.uri().path(), "authenticated request");
    request
        .extensions_mut()
        .insert(AsCaller(api.with_caller(caller(Actor::api_token(&name)))));
    Ok(next.run(request).await)
}

/// Longer user agents are cut (they are stored in every audit event of the request).
const MAX_USER_AGENT: usize = 512;

/// Malformed query strings, paths and bodies answer like every other error: JSON, 400.
fn rejected(what: &str, text: String) -> ApiError {
    Error::invalid_input(format!("invalid {what}: {text}")).into()
}

/// Liveness: answers without authentication or repository access.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The daemon runs", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Version of the daemon.
#[utoipa::path(get, path = "/api/v1/version", security(("bearer" = [])),
    responses((status = 200, body = VersionInfo), (status = 401, body = pganalytics_core::Error)))]
async fn version(
    Extension(AsCaller(api)): Extension<AsCaller>,
) -> Result<Json<VersionInfo>, ApiError> {
    Ok(Json(api.version(Empty {}).await?))
}

/// Registered monitored servers.
#[utoipa::path(get, path = "/api/v1/servers", security(("bearer" = [])),
    responses((status = 200, body = Vec<ServerSummary>), (status = 401, body = pganalytics_core::Error)))]
async fn servers(
    Extension(AsCaller(api)): Extension<AsCaller>,
) -> Result<Json<Vec<ServerSummary>>, ApiError> {
    Ok(Json(api.server_list(Empty {}).await?))
}

/// Repository kind, location and applied migrations.
#[utoipa::path(get, path = "/api/v1/repository", security(("bearer" = [])),
    responses((status = 200, body = RepoStatus), (status = 401, body = pganalytics_core::Error)))]
async fn repository(
    Extension(AsCaller(api)): Extension<AsCaller>,
) -> Result<Json<RepoStatus>, ApiError> {
    Ok(Json(api.repo_status(Empty {}).await?))
}

/// Read a server's statistics views once and store a snapshot.
#[utoipa::path(post, path = "/api/v1/servers/{name}/metrics/snapshot", security(("bearer" = [])),
    params(("name" = String, Path, description = "Registered server name")),
    responses((status = 200, body = SnapshotResult), (status = 401, body = pganalytics_core::Error),
        (status = 403, description = "The role lacks pg_monitor", body = pganalytics_core::Error),
        (status = 404, body = pganalytics_core::Error),
        (status = 502, description = "The server is unreachable", body = pganalytics_core::Error)))]
async fn metrics_snapshot(
    Extension(AsCaller(api)): Extension<AsCaller>,
    Path(name): Path<String>,
) -> Result<Json<SnapshotResult>, ApiError> {
    Ok(Json(
        api.metrics_snapshot(MetricsSnapshotRequest { server: name })
            .await?,
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct SinceQuery {
    /// Window for rates and advice, e.g. `15m`, `1h` (default `1h`).
    since: Option<String>,
}

/// Latest engine metrics of a server, rates and advice over a window, collection status.
#[utoipa::path(get, path = "/api/v1/servers/{name}/metrics", security(("bearer" = [])),
    params(("name" = String, Path, description = "Registered server name"), SinceQuery),
    responses((status = 200, body = MetricsReport), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error), (status = 404, body = pganalytics_core::Error)))]
async fn metrics_show(
    Extension(AsCaller(api)): Extension<AsCaller>,
    Path(name): Path<String>,
    Query(q): Query<SinceQuery>,
) -> Result<Json<MetricsReport>, ApiError> {
    Ok(Json(
        api.metrics_show(MetricsShowRequest {
            server: name,
            since: q.since,
        })
        .await?,
    ))
}

/// Engine metrics of every registered server, in the Prometheus text format.
///
/// Renders the values the daemon collected last (no database is queried per scrape). Needs a
/// token like every other endpoint: in Prometheus, `authorization: { credentials_file: … }`.
#[utoipa::path(get, path = "/metrics", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition: `pganalytics_up{server}`, `pganalytics_collection_error{server,code,reason,hint}`, counters and gauges of each server", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, body = pganalytics_core::Error)))]
async fn prometheus_metrics(Extension(registry): Extension<Registry>) -> Response {
    let body = super::collect::render(&registry).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            pganalytics_core::metrics::prometheus::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

/// Filters of `GET /api/v1/audit/logs`; every one is optional.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditLogsQuery {
    /// Actor id (UUID) or name.
    actor: Option<String>,
    /// Verb, e.g. `read`, `create`, `login`.
    action: Option<String>,
    resource_type: Option<String>,
    /// Dotted event name, e.g. `auth.token_rejected`.
    event_type: Option<String>,
    /// From this time: RFC 3339 (`2026-11-29T08:00:00Z`) or a duration back from now (`2h`).
    since: Option<String>,
    /// Before this time: RFC 3339 or a duration back from now.
    until: Option<String>,
    /// At most this many events (default 100, at most 1000).
    limit: Option<i64>,
    /// Skip this many of the newest matching events.
    offset: Option<i64>,
}

/// Audit events, newest first, filtered and paged.
///
/// The read is itself audited (`audit.logs_read`, with the token, address and user agent).
#[utoipa::path(get, path = "/api/v1/audit/logs", security(("bearer" = [])), params(AuditLogsQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error)))]
async fn audit_logs(
    Extension(AsCaller(api)): Extension<AsCaller>,
    query: Result<Query<AuditLogsQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = query.map_err(|e| rejected("query", e.body_text()))?;
    let now = chrono::Utc::now();
    let req = AuditLogsRequest {
        actor: q.actor,
        action: q.action,
        resource_type: q.resource_type,
        event_type: q.event_type,
        since: crate::audit::parse_time_opt(q.since.as_deref(), now)?,
        until: crate::audit::parse_time_opt(q.until.as_deref(), now)?,
        limit: q.limit,
        offset: q.offset,
    };
    Ok(Json(api.audit_logs(req).await?))
}

/// One audit event with its before/after values, address and hashes.
#[utoipa::path(get, path = "/api/v1/audit/logs/{id}", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The event's position in the chain")),
    responses((status = 200, body = AuditEvent), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error), (status = 404, body = pganalytics_core::Error)))]
async fn audit_show(
    Extension(AsCaller(api)): Extension<AsCaller>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<AuditEvent>, ApiError> {
    let Path(id) = id.map_err(|e| rejected("event id", e.body_text()))?;
    Ok(Json(api.audit_show(AuditEventId { id }).await?))
}

/// Verify the audit log (or the range `from`..`to`) against the signed external checkpoints.
///
/// Answers 200 with the report whether or not the log is intact: `intact: false` names the
/// first bad event (`first_bad_id`) and the `problem`. Other statuses mean the verification
/// could not run (a bad range, no readable public key). The daemon verifies with its own
/// configured public key and checkpoint folder: `public_key` and `checkpoints` are refused
/// here (verify with other trust anchors offline: `pganalytics audit verify --public-key`).
/// An empty body verifies everything.
#[utoipa::path(post, path = "/api/v1/audit/verify", security(("bearer" = [])),
    request_body(content = Option<AuditVerifyRequest>, description = "The range to check; `{}` or no body for everything"),
    responses((status = 200, description = "The verification ran; see `intact`", body = AuditVerification),
        (status = 400, body = pganalytics_core::Error), (status = 401, body = pganalytics_core::Error),
        (status = 404, description = "No public key is configured or readable", body = pganalytics_core::Error)))]
async fn audit_verify(
    Extension(AsCaller(api)): Extension<AsCaller>,
    body: axum::body::Bytes,
) -> Result<Json<AuditVerification>, ApiError> {
    // No body, `null` and `{}` all mean everything.
    let req: AuditVerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        AuditVerifyRequest::default()
    } else {
        serde_json::from_slice::<Option<AuditVerifyRequest>>(&body)
            .map_err(|e| rejected("request body", e.to_string()))?
            .unwrap_or_default()
    };
    if req.public_key.is_some() || req.checkpoints.is_some() {
        return Err(Error::invalid_input(
            "the daemon verifies with its configured public key and checkpoints",
        )
        .with_hint("send only `from` and `to`; to verify with another key or folder, run `pganalytics audit verify --public-key FILE --checkpoints DIR`")
        .into());
    }
    Ok(Json(api.audit_verify(req).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WindowQuery {
    /// From this time: RFC 3339 or a duration back from now (`2h`, `7d`).
    since: Option<String>,
    /// Before this time: RFC 3339 or a duration back from now.
    until: Option<String>,
}

/// Everything one actor did (or that concerned them) in a window, oldest first.
#[utoipa::path(get, path = "/api/v1/audit/activity/users/{userId}", security(("bearer" = [])),
    params(("userId" = String, Path, description = "Actor id (UUID) or name"), WindowQuery),
    responses((status = 200, body = Vec<AuditEvent>), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error), (status = 404, description = "No such actor", body = pganalytics_core::Error)))]
async fn audit_activity(
    Extension(AsCaller(api)): Extension<AsCaller>,
    Path(actor): Path<String>,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let Query(q) = query.map_err(|e| rejected("query", e.body_text()))?;
    let now = chrono::Utc::now();
    let req = AuditActivityRequest {
        actor,
        since: crate::audit::parse_time_opt(q.since.as_deref(), now)?,
        until: crate::audit::parse_time_opt(q.until.as_deref(), now)?,
    };
    Ok(Json(api.audit_activity(req).await?))
}

/// Record an event that happened outside pgAnalytics.
///
/// Answers once the event is durable. The event's actor is the `actor` named in the body (an
/// external actor); the token that sent it is recorded in its details (`recorded_by`).
#[utoipa::path(post, path = "/api/v1/audit/events", security(("bearer" = [])),
    request_body = AuditLogRequest,
    responses((status = 201, description = "Recorded and durable", body = AuditLogged),
        (status = 400, body = pganalytics_core::Error), (status = 401, body = pganalytics_core::Error)))]
async fn audit_log_event(
    Extension(AsCaller(api)): Extension<AsCaller>,
    body: Result<Json<AuditLogRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<AuditLogged>), ApiError> {
    let Json(req) = body.map_err(|e| rejected("request body", e.body_text()))?;
    Ok((StatusCode::CREATED, Json(api.audit_log_event(req).await?)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct BackupsQuery {
    /// Only this registered server's backups.
    server: Option<String>,
    /// Include pruned (`deleted`) backups (default false).
    include_deleted: Option<bool>,
}

/// Backups, newest first.
#[utoipa::path(get, path = "/api/v1/backups", security(("bearer" = [])), params(BackupsQuery),
    responses((status = 200, body = Vec<BackupSummary>), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error)))]
async fn backups(
    Extension(AsCaller(api)): Extension<AsCaller>,
    query: Result<Query<BackupsQuery>, QueryRejection>,
) -> Result<Json<Vec<BackupSummary>>, ApiError> {
    let Query(q) = query.map_err(|e| rejected("query", e.body_text()))?;
    Ok(Json(
        api.backup_list(BackupListRequest {
            server: q.server,
            include_deleted: q.include_deleted,
        })
        .await?,
    ))
}

/// One backup with its archives, keys and restores.
#[utoipa::path(get, path = "/api/v1/backups/{backupId}", security(("bearer" = [])),
    params(("backupId" = uuid::Uuid, Path, description = "The backup's id")),
    responses((status = 200, body = BackupDetail), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error), (status = 404, body = pganalytics_core::Error)))]
async fn backup_show(
    Extension(AsCaller(api)): Extension<AsCaller>,
    id: Result<Path<uuid::Uuid>, PathRejection>,
) -> Result<Json<BackupDetail>, ApiError> {
    let Path(id) = id.map_err(|e| rejected("backup id", e.body_text()))?;
    Ok(Json(api.backup_show(BackupId { id }).await?))
}

/// Start a full backup of a registered server into a registered storage target.
///
/// Answers 202 at once with the job's id; `GET /api/v1/jobs/{jobId}` reports the bytes done
/// (and the server's estimate of the total), then the `BackupSummary` or the error. Unknown
/// server or storage names and a missing signing key are reported by the job.
#[utoipa::path(post, path = "/api/v1/backups/trigger", security(("bearer" = [])),
    request_body = BackupRunRequest,
    responses((status = 202, description = "Started; poll the job", body = JobId),
        (status = 400, body = pganalytics_core::Error), (status = 401, body = pganalytics_core::Error)))]
async fn backup_trigger(
    Extension(AsCaller(api)): Extension<AsCaller>,
    body: Result<Json<BackupRunRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<JobId>), ApiError> {
    let Json(req) = body.map_err(|e| rejected("request body", e.body_text()))?;
    Ok((StatusCode::ACCEPTED, Json(api.backup_start(req).await?)))
}

/// Whether the backup key here opens the encrypted backups on record, and which other keys
/// the rest need (`pganalytics backup key`).
#[utoipa::path(get, path = "/api/v1/backups/key", security(("bearer" = [])),
    responses((status = 200, body = BackupKeyStatus), (status = 401, body = pganalytics_core::Error)))]
async fn backup_key(
    Extension(AsCaller(api)): Extension<AsCaller>,
) -> Result<Json<BackupKeyStatus>, ApiError> {
    Ok(Json(api.backup_key_status(Empty {}).await?))
}

/// Record the backups a registered storage target holds, from their signed catalogues (after
/// the repository was lost). Catalogues whose signature does not verify are listed in
/// `refused`, never imported; backups on record already are counted, not changed.
#[utoipa::path(post, path = "/api/v1/backups/import", security(("bearer" = [])),
    request_body = BackupImportRequest,
    responses((status = 200, body = BackupImportResult), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error), (status = 404, body = pganalytics_core::Error)))]
async fn backup_import(
    Extension(AsCaller(api)): Extension<AsCaller>,
    body: Result<Json<BackupImportRequest>, JsonRejection>,
) -> Result<Json<BackupImportResult>, ApiError> {
    let Json(req) = body.map_err(|e| rejected("request body", e.body_text()))?;
    Ok(Json(api.backup_import(req).await?))
}

/// Body of `POST /api/v1/backups/{backupId}/verify`; `{}` or no body checks the objects only.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BackupVerifyBody {
    /// Also restore into a temporary cluster, start it, read its catalogs, remove it, and
    /// record the measured restore time.
    #[serde(default)]
    restore_test: Option<bool>,
}

/// Verify a backup: every stored object against the signed catalogue and the server's manifest.
///
/// Answers 202 with the job's id. The job succeeds with the `BackupVerification` whether or not
/// the backup is intact (`intact: false` lists the damaged objects in `problems`); it fails only
/// when verification could not run.
#[utoipa::path(post, path = "/api/v1/backups/{backupId}/verify", security(("bearer" = [])),
    params(("backupId" = uuid::Uuid, Path, description = "The backup's id")),
    request_body(content = Option<BackupVerifyBody>, description = "`{\"restore_test\": true}`, or `{}` / no body"),
    responses((status = 202, description = "Started; poll the job", body = JobId),
        (status = 400, body = pganalytics_core::Error), (status = 401, body = pganalytics_core::Error)))]
async fn backup_verify(
    Extension(AsCaller(api)): Extension<AsCaller>,
    id: Result<Path<uuid::Uuid>, PathRejection>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobId>), ApiError> {
    let Path(id) = id.map_err(|e| rejected("backup id", e.body_text()))?;
    // No body, `null` and `{}` all mean the default.
    let body: BackupVerifyBody = if body.iter().all(u8::is_ascii_whitespace) {
        BackupVerifyBody::default()
    } else {
        serde_json::from_slice::<Option<BackupVerifyBody>>(&body)
            .map_err(|e| rejected("request body", e.to_string()))?
            .unwrap_or_default()
    };
    let req = BackupVerifyRequest {
        id,
        restore_test: body.restore_test,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(api.backup_verify_start(req).await?),
    ))
}

/// Body of `POST /api/v1/backups/{backupId}/restore`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BackupRestoreBody {
    /// A folder on the daemon's host, empty or absent; it becomes the restored data directory.
    target_dir: String,
    /// Start the restored server afterwards.
    #[serde(default)]
    start: Option<bool>,
    /// Port for `start` (default: a free one).
    #[serde(default)]
    port: Option<u16>,
}

/// Restore a backup into an empty folder on the daemon's host, optionally starting the server.
///
/// Answers 202 with the job's id; the job reports bytes restored, then the `RestoreSummary`
/// or the error (a non-empty folder is refused).
#[utoipa::path(post, path = "/api/v1/backups/{backupId}/restore", security(("bearer" = [])),
    params(("backupId" = uuid::Uuid, Path, description = "The backup's id")),
    request_body = BackupRestoreBody,
    responses((status = 202, description = "Started; poll the job", body = JobId),
        (status = 400, body = pganalytics_core::Error), (status = 401, body = pganalytics_core::Error)))]
async fn backup_restore(
    Extension(AsCaller(api)): Extension<AsCaller>,
    id: Result<Path<uuid::Uuid>, PathRejection>,
    body: Result<Json<BackupRestoreBody>, JsonRejection>,
) -> Result<(StatusCode, Json<JobId>), ApiError> {
    let Path(id) = id.map_err(|e| rejected("backup id", e.body_text()))?;
    let Json(body) = body.map_err(|e| rejected("request body", e.body_text()))?;
    let req = BackupRestoreRequest {
        id,
        target_dir: body.target_dir,
        start: body.start,
        port: body.port,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(api.backup_restore_start(req).await?),
    ))
}

/// Progress and result of a long operation started by this daemon (a backup, a verification,
/// a restore).
///
/// `state` is `running` (with `done` of `total`: bytes for backups and restores; `total` is 0
/// while unknown), then `succeeded` with the operation's response in `result`, or `failed` with
/// the `error`. The daemon keeps the last 100 finished jobs in memory (404 after that, or after
/// a restart).
#[utoipa::path(get, path = "/api/v1/jobs/{jobId}", security(("bearer" = [])),
    params(("jobId" = uuid::Uuid, Path, description = "The id a 202 answer returned")),
    responses((status = 200, body = JobStatus), (status = 400, body = pganalytics_core::Error),
        (status = 401, body = pganalytics_core::Error), (status = 404, body = pganalytics_core::Error)))]
async fn job_status(
    Extension(AsCaller(api)): Extension<AsCaller>,
    id: Result<Path<uuid::Uuid>, PathRejection>,
) -> Result<Json<JobStatus>, ApiError> {
    let Path(id) = id.map_err(|e| rejected("job id", e.body_text()))?;
    Ok(Json(api.job_status(JobId { id }).await?))
}
