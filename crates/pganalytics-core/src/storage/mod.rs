//! Storage targets: where backups and archived WAL go. A local folder or NFS mount
//! (`file:///abs/path`), S3 or any S3-compatible store (`s3://bucket/prefix`, options
//! `endpoint`, `region`), Google Cloud Storage (`gcs://bucket/prefix`, option `endpoint`) or
//! Azure Blob Storage (`azblob://container/prefix`, options `endpoint`, `account`); all
//! through opendal.
//!
//! - [`url`]: parsing and validating the URL and options (clear errors with hints).
//! - [`credentials`]: where credentials come from (environment or OS keyring, never the
//!   repository).
//! - [`operator`]: the opendal operator, per-store write settings, error classification.
//! - [`layout`]: the object layout of backups and WAL inside a target.
//! - [`direct`]: large local files (backup objects in a folder, restored relation files)
//!   written with direct I/O.
//!
//! The registry lives in `storage_targets` (kind, normalised URL, options as JSON, plus the
//! flag `secret_in_keyring` inside the options); a `check` writes, reads back, lists and
//! deletes a probe object under the prefix.

pub mod credentials;
pub mod direct;
pub mod layout;
pub mod operator;
pub mod url;

use crate::api::{
    StorageAddRequest, StorageCheck, StorageCheckStep, StorageKind, StorageOptions, StorageTarget,
};
use crate::error::{Error, ErrorCode, Result};
use crate::repository::Repository;
use crate::secrets;
use credentials::{Credentials, Source};
use operator::Target;
use sqlx::Row;
use std::time::Instant;
use url::StorageUrl;

/// Key inside `storage_targets.options` saying the credentials are in the keyring.
const KEYRING_FLAG: &str = "secret_in_keyring";

fn from_row(row: &sqlx::postgres::PgRow) -> Result<StorageTarget> {
    let kind: String = row.try_get("kind")?;
    let kind = match kind.as_str() {
        "file" => StorageKind::File,
        "s3" => StorageKind::S3,
        "gcs" => StorageKind::Gcs,
        "azblob" => StorageKind::Azblob,
        other => return Err(Error::internal(format!("unknown storage kind `{other}`"))),
    };
    let mut options: serde_json::Value = row.try_get("options")?;
    let in_keyring = options
        .as_object_mut()
        .and_then(|m| m.remove(KEYRING_FLAG))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let options: StorageOptions = serde_json::from_value(options)
        .map_err(|e| Error::internal(format!("storage options unreadable: {e}")))?;
    Ok(StorageTarget {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind,
        url: row.try_get("url")?,
        options,
        secret_in_keyring: in_keyring,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn find(repo: &Repository, name: &str) -> Result<StorageTarget> {
    let row = sqlx::query(
        "SELECT id, name, kind, url, options, created_at FROM storage_targets WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(repo.pool())
    .await?;
    match row {
        Some(row) => from_row(&row),
        None => Err(
            Error::not_found(format!("no storage target named `{name}`"))
                .with_hint("`pganalytics storage list` shows the registered targets"),
        ),
    }
}

pub async fn list(repo: &Repository) -> Result<Vec<StorageTarget>> {
    let rows = sqlx::query(
        "SELECT id, name, kind, url, options, created_at FROM storage_targets ORDER BY name",
    )
    .fetch_all(repo.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The credentials of a registered target: its keyring entry, else the environment.
pub async fn resolve_credentials(target: &StorageTarget) -> Result<(Option<Credentials>, Source)> {
    if target.kind == StorageKind::File {
        return Ok((None, Source::None));
    }
    if target.secret_in_keyring {
        let Some(text) = secrets::get(&credentials::keyring_account(target.id)).await? else {
            return Err(Error::new(
                ErrorCode::AuthenticationFailed,
                format!(
                    "the keyring has no credentials for storage target `{}` any more",
                    target.name
                ),
            )
            .with_hint("remove the target and add it again with --secret-from-env"));
        };
        return Ok((
            Some(Credentials::from_json(target.kind, &text)?),
            Source::Keyring,
        ));
    }
    if target.options.anonymous.unwrap_or(false) {
        return Ok((None, Source::Anonymous));
    }
    match Credentials::from_env(target.kind, &process_env)? {
        Some(c) => Ok((Some(c), Source::Environment)),
        None => Ok((None, Source::None)),
    }
}

/// Open a registered target for reading and writing objects (the backup engine's entry).
pub async fn open(repo: &Repository, name: &str) -> Result<Target> {
    let target = find(repo, name).await?;
    open_target(&target).await
}

/// Open the target a backup was written to, by its id (it keeps working after a rename).
pub async fn open_by_id(repo: &Repository, id: uuid::Uuid) -> Result<(StorageTarget, Target)> {
    let row = sqlx::query(
        "SELECT id, name, kind, url, options, created_at FROM storage_targets WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(repo.pool())
    .await?;
    let Some(row) = row else {
        return Err(
            Error::not_found(format!("the storage target {id} is no longer registered")).with_hint(
                "its backups are still in the store: `pganalytics storage add` it again, then `pganalytics backup import --storage NAME` (docs/DISASTER_RECOVERY.md, section 10)",
            ),
        );
    };
    let target = from_row(&row)?;
    let opened = open_target(&target).await?;
    Ok((target, opened))
}

pub(crate) async fn open_target(target: &StorageTarget) -> Result<Target> {
    let url = StorageUrl::parse(&target.url)?;
    let (creds, source) = resolve_credentials(target).await?;
    operator::build(&url, &target.options, creds.as_ref(), source)
}

/// Register a target. Validate, refuse a duplicate, copy credentials to the keyring when
/// asked, probe (unless skipped), insert; a failure leaves nothing behind.
pub async fn add(repo: &Repository, req: StorageAddRequest) -> Result<StorageTarget> {
    crate::server::validate_name(&req.name, "storage target")?;
    let url = StorageUrl::parse(&req.url)?;
    url::validate_options(url.kind, &req.options)?;
    let exists: bool = sqlx::query("SELECT EXISTS (SELECT 1 FROM storage_targets WHERE name = $1)")
        .bind(&req.name)
        .fetch_one(repo.pool())
        .await?
        .try_get(0)?;
    if exists {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!(
                "a storage target named `{}` is already registered",
                req.name
            ),
        )
        .with_hint("choose another name, or `pganalytics storage remove` the old one first"));
    }
    let secret_from_env = req.secret_from_env.unwrap_or(false);
    if secret_from_env && url.kind == StorageKind::File {
        return Err(
            Error::invalid_input("file targets have no credentials to keep")
                .with_hint("leave out --secret-from-env"),
        );
    }
    if secret_from_env && req.options.anonymous.unwrap_or(false) {
        return Err(Error::invalid_input(
            "--secret-from-env and --anonymous contradict each other",
        ));
    }
    let id = uuid::Uuid::new_v4();
    let target = StorageTarget {
        id,
        name: req.name.clone(),
        kind: url.kind,
        url: url.to_url(),
        options: req.options.clone(),
        secret_in_keyring: secret_from_env,
        created_at: chrono::Utc::now(),
    };
    let stored_creds = if secret_from_env {
        match Credentials::from_env(url.kind, &process_env)? {
            Some(c) => Some(c),
            None => {
                return Err(Error::new(
                    ErrorCode::AuthenticationFailed,
                    format!(
                        "--secret-from-env: the environment has no {} credentials",
                        url.kind.as_str()
                    ),
                )
                .with_hint(credentials::none_hint(url.kind)))
            }
        }
    } else {
        None
    };
    if !req.skip_check.unwrap_or(false) {
        let (creds, source) = match &stored_creds {
            Some(c) => (Some(c.clone()), Source::Keyring),
            None => {
                resolve_credentials(&StorageTarget {
                    secret_in_keyring: false,
                    ..target.clone()
                })
                .await?
            }
        };
        let t = operator::build(&url, &target.options, creds.as_ref(), source)?;
        probe(&t, &target).await?;
    }
    if let Some(c) = &stored_creds {
        secrets::set(&credentials::keyring_account(id), &c.to_json()).await?;
    }
    let mut options = serde_json::to_value(&target.options)
        .map_err(|e| Error::internal(format!("serialize storage options: {e}")))?;
    if secret_from_env {
        if let Some(m) = options.as_object_mut() {
            m.insert(KEYRING_FLAG.into(), serde_json::Value::Bool(true));
        }
    }
    let inserted = sqlx::query(
        "INSERT INTO storage_targets (id, name, kind, url, options) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, kind, url, options, created_at",
    )
    .bind(id)
    .bind(&target.name)
    .bind(url.kind.as_str())
    .bind(&target.url)
    .bind(&options)
    .fetch_one(repo.pool())
    .await;
    match inserted {
        Ok(row) => from_row(&row),
        Err(e) => {
            if secret_from_env {
                let _ = secrets::delete(&credentials::keyring_account(id)).await;
            }
            if let sqlx::Error::Database(db) = &e {
                if db.code().as_deref() == Some("23505") {
                    return Err(Error::new(
                        ErrorCode::AlreadyExists,
                        format!(
                            "a storage target named `{}` is already registered",
                            req.name
                        ),
                    ));
                }
            }
            Err(e.into())
        }
    }
}

/// Forget a target and its keyring entry. The objects it holds stay where they are.
pub async fn remove(repo: &Repository, name: &str) -> Result<StorageTarget> {
    let target = find(repo, name).await?;
    let used: bool = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM backup_metadata WHERE storage_target_id = $1
                                                   AND backup_status <> 'deleted')
             OR EXISTS (SELECT 1 FROM backup_schedule WHERE storage_target_id = $1)",
    )
    .bind(target.id)
    .fetch_one(repo.pool())
    .await?
    .try_get(0)?;
    if used {
        return Err(Error::invalid_input(format!(
            "storage target `{name}` holds backups or is used by a schedule"
        ))
        .with_hint("prune its backups and remove its schedules first"));
    }
    // Pruned backups stay as history; their destination_path still names the URL.
    sqlx::query(
        "UPDATE backup_metadata SET storage_target_id = NULL
         WHERE storage_target_id = $1 AND backup_status = 'deleted'",
    )
    .bind(target.id)
    .execute(repo.pool())
    .await?;
    sqlx::query("DELETE FROM storage_targets WHERE id = $1")
        .bind(target.id)
        .execute(repo.pool())
        .await?;
    if target.secret_in_keyring {
        secrets::delete(&credentials::keyring_account(target.id)).await?;
    }
    Ok(target)
}

/// Write, read back, list and delete a probe object; the error names the step that failed.
pub async fn check(repo: &Repository, name: &str) -> Result<StorageCheck> {
    let target = find(repo, name).await?;
    let t = open_target(&target).await?;
    probe(&t, &target).await
}

async fn timed<T>(
    t: &Target,
    step: &str,
    key: &str,
    fut: impl std::future::Future<Output = opendal::Result<T>>,
) -> Result<(T, u64)> {
    let start = Instant::now();
    match tokio::time::timeout(operator::REQUEST_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok((v, start.elapsed().as_millis() as u64)),
        Ok(Err(e)) => Err(t.error(step, key, &e)),
        Err(_) => Err(Error::new(
            ErrorCode::Unreachable,
            format!(
                "no answer from {} within {} s to {step} `{key}`",
                t.describe(),
                operator::REQUEST_TIMEOUT.as_secs()
            ),
        )
        .with_hint("check the endpoint, that the service runs, and firewalls or proxies")),
    }
}

async fn probe(t: &Target, target: &StorageTarget) -> Result<StorageCheck> {
    let id = uuid::Uuid::new_v4();
    let key = layout::probe(id);
    let content = format!("pgAnalytics storage probe {id}\n").into_bytes();
    let mut steps = Vec::new();
    let ((), ms) = timed(t, "write", &key, t.write_once(&key, content.clone())).await?;
    steps.push(StorageCheckStep {
        step: "write".into(),
        millis: ms,
    });
    let outcome = async {
        let (read, ms) = timed(t, "read", &key, t.op.read(&key)).await?;
        if read.to_vec() != content {
            return Err(Error::new(
                ErrorCode::VerificationFailed,
                format!(
                    "{}: the probe object `{key}` read back differs from what was written",
                    t.describe()
                ),
            )
            .with_hint("the store or a proxy changes objects; do not keep backups there"));
        }
        steps.push(StorageCheckStep {
            step: "read".into(),
            millis: ms,
        });
        let (entries, ms) = timed(t, "list", layout::PROBES, t.op.list(layout::PROBES)).await?;
        if !entries.iter().any(|e| e.path() == key) {
            return Err(Error::new(
                ErrorCode::VerificationFailed,
                format!(
                    "{}: listing {} does not show the probe object just written",
                    t.describe(),
                    layout::PROBES
                ),
            )
            .with_hint(
                "the store's listings are not consistent; check the prefix and the service",
            ));
        }
        steps.push(StorageCheckStep {
            step: "list".into(),
            millis: ms,
        });
        Ok(())
    }
    .await;
    // Delete the probe whatever happened after it was written.
    let deleted = timed(t, "delete", &key, t.op.delete(&key)).await;
    outcome?;
    let ((), ms) = deleted?;
    steps.push(StorageCheckStep {
        step: "delete".into(),
        millis: ms,
    });
    Ok(StorageCheck {
        name: target.name.clone(),
        kind: target.kind,
        url: target.url.clone(),
        credentials: t.source.as_str().into(),
        probe: key,
        steps,
    })
}
