//! The one place where core error codes become HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pganalytics_core::{Error, ErrorCode};

pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists => StatusCode::CONFLICT,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::Unreachable | ErrorCode::AuthenticationFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::UnsupportedVersion => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::VerificationFailed => StatusCode::CONFLICT,
        ErrorCode::PortInUse
        | ErrorCode::DataDirUnusable
        | ErrorCode::KeyringUnavailable
        | ErrorCode::BinariesMissing
        | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.code);
        if status.is_server_error() {
            tracing::error!(code = ?self.0.code, "request failed: {}", self.0.message);
        }
        (status, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}
