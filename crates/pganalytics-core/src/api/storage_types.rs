//! Requests and responses of the storage-target commands. No type here ever carries a
//! credential: those live in the environment or the OS keyring (see `crate::storage`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Which object store a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// A local folder or an NFS mount (`file:///abs/path`).
    File,
    /// Amazon S3 or any S3-compatible store (`s3://bucket/prefix`).
    S3,
    /// Google Cloud Storage (`gcs://bucket/prefix`).
    Gcs,
    /// Azure Blob Storage (`azblob://container/prefix`).
    Azblob,
}

impl StorageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::File => "file",
            StorageKind::S3 => "s3",
            StorageKind::Gcs => "gcs",
            StorageKind::Azblob => "azblob",
        }
    }
}

/// Settings of a target that are not secret (stored in `storage_targets.options`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageOptions {
    /// Service URL (S3-compatible stores, emulators, sovereign clouds); `http://` or `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub endpoint: Option<String>,
    /// S3 region; required for AWS itself, `us-east-1` when an endpoint is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub region: Option<String>,
    /// Azure storage account name (else `AZURE_STORAGE_ACCOUNT` or the keyring entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub account: Option<String>,
    /// Send unsigned requests (public buckets, emulators); no credentials are looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub anonymous: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageAddRequest {
    pub name: String,
    /// `file:///abs/path`, `s3://bucket/prefix`, `gcs://bucket/prefix` or
    /// `azblob://container/prefix`.
    pub url: String,
    #[serde(default)]
    pub options: StorageOptions,
    /// Copy the kind's credentials from this process's environment into the OS keyring
    /// (entry `storage:<id>`), so later commands need no environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub secret_from_env: Option<bool>,
    /// Register without writing the probe object first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub skip_check: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageName {
    pub name: String,
}

/// A registered storage target (never its credentials).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageTarget {
    pub id: uuid::Uuid,
    pub name: String,
    pub kind: StorageKind,
    /// Normalised URL (no credentials, no trailing slash).
    pub url: String,
    pub options: StorageOptions,
    /// Credentials come from the keyring entry `storage:<id>` rather than the environment.
    pub secret_in_keyring: bool,
    pub created_at: DateTime<Utc>,
}

/// One step of a storage check with how long it took.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageCheckStep {
    /// `write`, `read`, `list` or `delete`.
    pub step: String,
    #[ts(type = "number")]
    pub millis: u64,
}

/// A passed storage check: a probe object was written, read back, listed and deleted.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageCheck {
    pub name: String,
    pub kind: StorageKind,
    pub url: String,
    /// Where the credentials came from: `keyring`, `environment`, `anonymous` or `none`
    /// (a folder needs none).
    pub credentials: String,
    /// Key of the probe object, relative to the target's prefix (deleted again).
    pub probe: String,
    pub steps: Vec<StorageCheckStep>,
}
