//! Routes of the daemon and the OpenAPI document generated from them.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use pganalytics_core::api::{Api, Empty, RepoStatus, ServerSummary, VersionInfo};
use pganalytics_core::{Error, ErrorCode};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

type AppState = Arc<Api>;

#[derive(OpenApi)]
#[openapi(
    info(title = "pgAnalytics daemon API", description = "Headless pgAnalytics: the same core as the desktop app and the CLI."),
    paths(healthz, version, servers, repository),
    components(schemas(VersionInfo, ServerSummary, RepoStatus, pganalytics_core::Error, pganalytics_core::ErrorCode)),
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

pub fn router(api: AppState) -> Router {
    let authenticated = Router::new()
        .route("/api/v1/version", get(version))
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/repository", get(repository))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_token,
        ));
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
