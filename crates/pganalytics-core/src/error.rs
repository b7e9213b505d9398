//! Errors that callers must react to carry an [`ErrorCode`]; each shell maps the code in one
//! place (CLI exit status, HTTP status, UI message). Everything else is `anyhow` context.
//!
//! Rule: an error message never contains a secret (password, token, key). Messages say what
//! failed; `hint` says what to do.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What went wrong, in terms a caller can branch on. Never match on message strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The input is malformed (a DSN, a name, a duration...).
    InvalidInput,
    /// The named thing does not exist.
    NotFound,
    /// A thing with that name already exists.
    AlreadyExists,
    /// A PostgreSQL server could not be reached.
    Unreachable,
    /// The server refused our credentials.
    AuthenticationFailed,
    /// The connected role lacks a privilege the operation needs.
    PermissionDenied,
    /// The PostgreSQL version is not supported for this use.
    UnsupportedVersion,
    /// A TCP port is already used by another program.
    PortInUse,
    /// A folder is owned by another account, or otherwise unusable.
    DataDirUnusable,
    /// No OS keyring service could store or read a secret.
    KeyringUnavailable,
    /// PostgreSQL server binaries could not be found.
    BinariesMissing,
    /// A verification found damage (CLI exit status 3).
    VerificationFailed,
    /// The API token is missing or wrong.
    Unauthorized,
    /// Anything else: a bug or an environment failure; the message says which.
    Internal,
}

impl ErrorCode {
    /// Exit status of the `pganalytics` command for this code (2 is reserved for usage errors).
    pub fn exit_status(self) -> i32 {
        match self {
            ErrorCode::VerificationFailed => 3,
            _ => 1,
        }
    }
}

/// A core error: a code, a message saying what failed, and a hint saying what to do.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Untyped failures (I/O, a bug) become `Internal` with the whole context chain on one line.
impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Self {
        // A typed error wrapped in context keeps its code.
        if let Some(inner) = err.downcast_ref::<Error>() {
            let mut e = inner.clone();
            let chain = format!("{err:#}");
            if chain != inner.message {
                e.message = chain;
            }
            return e;
        }
        Error::internal(format!("{err:#}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::internal(err.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Error::internal(format!("repository query failed: {err}"))
    }
}
