//! Routes of the daemon and the OpenAPI document generated from them.

use super::collect::Registry;
use super::error::ApiError;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pganalytics_core::api::{
    Api, Empty, MetricsReport, MetricsShowRequest, MetricsSnapshotRequest, RepoStatus,
    ServerSummary, SnapshotResult, VersionInfo,
};
use pganalytics_core::{Error, ErrorCode};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

type AppState = Arc<Api>;

#[derive(OpenApi)]
#[openapi(
    info(title = "pgAnalytics daemon API", description = "Headless pgAnalytics: the same core as the desktop app and the CLI."),
    paths(healthz, version, servers, repository, metrics_snapshot, metrics_show, prometheus_metrics),
    components(schemas(VersionInfo, ServerSummary, RepoStatus, SnapshotResult, MetricsReport, pganalytics_core::Error, pganalytics_core::ErrorCode)),
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

/// Bearer-token authentication: the token's hash must match a stored, unrevoked token.
async fn require_token(
    State(api): State<AppState>,
    request: Request,
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
    let name = api.authenticate_token(token).await?;
    tracing::debug!(token = %name, path = %request.uri().path(), "authenticated request");
    Ok(next.run(request).await)
}

/// Liveness: answers without authentication or repository access.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The daemon runs", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Version of the daemon.
#[utoipa::path(get, path = "/api/v1/version", security(("bearer" = [])),
    responses((status = 200, body = VersionInfo), (status = 401, body = pganalytics_core::Error)))]
async fn version(State(api): State<AppState>) -> Result<Json<VersionInfo>, ApiError> {
    Ok(Json(api.version(Empty {}).await?))
}

/// Registered monitored servers.
#[utoipa::path(get, path = "/api/v1/servers", security(("bearer" = [])),
    responses((status = 200, body = Vec<ServerSummary>), (status = 401, body = pganalytics_core::Error)))]
async fn servers(State(api): State<AppState>) -> Result<Json<Vec<ServerSummary>>, ApiError> {
    Ok(Json(api.server_list(Empty {}).await?))
}

/// Repository kind, location and applied migrations.
#[utoipa::path(get, path = "/api/v1/repository", security(("bearer" = [])),
    responses((status = 200, body = RepoStatus), (status = 401, body = pganalytics_core::Error)))]
async fn repository(State(api): State<AppState>) -> Result<Json<RepoStatus>, ApiError> {
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
    State(api): State<AppState>,
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
    State(api): State<AppState>,
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
