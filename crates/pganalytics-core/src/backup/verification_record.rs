//! A verification's result kept beside the backup in storage, signed like its catalogue, so
//! that `backup import` brings back whether a backup was last found intact, when, and its
//! measured restore time: after the repository is lost, the store still knows. Nobody without
//! the signing key can make a damaged backup look verified.
//!
//! `<backup dir>/verifications/<time>.json` with `<time>.sig` beside it (written first, as
//! for the catalogue). A record names the SHA-256 of the catalogue it checked, so it says
//! nothing about another backup or a replaced catalogue.

use super::catalogue;
use crate::audit::keys::{SigningKey, VerifyingKey};
use crate::error::{Error, Result};
use crate::storage::operator::Target;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Inside the backup's folder.
pub const FOLDER: &str = "verifications/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationRecord {
    pub backup_id: Uuid,
    /// SHA-256 of the catalogue that was checked (the backup's `checksum`).
    pub catalogue_sha256: String,
    pub intact: bool,
    pub verified_at: DateTime<Utc>,
    pub objects_checked: u64,
    pub bytes_checked: u64,
    pub manifest_files_checked: u64,
    /// `--restore-test`'s measured time: the backup's RTO.
    pub restore_test_seconds: Option<f64>,
}

impl VerificationRecord {
    /// As `backup_metadata.rto_seconds` holds it (whole seconds, rounded up).
    pub fn rto_seconds(&self) -> Option<i32> {
        self.restore_test_seconds.map(|s| s.ceil() as i32)
    }
}

/// Store `record` in the backup's folder `dir` (`<sysid>/backups/<id>/`).
pub async fn store(
    target: &Target,
    dir: &str,
    record: &VerificationRecord,
    signer: &SigningKey,
) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::internal(format!("serialize the verification record: {e}")))?;
    let signature = catalogue::sign(&bytes, signer)
        .map_err(|e| Error::internal(format!("sign the verification record: {e}")))?;
    let name = format!(
        "{dir}{FOLDER}{}",
        record.verified_at.format("%Y%m%dT%H%M%S%.6fZ")
    );
    let (json_key, sig_key) = (format!("{name}.json"), format!("{name}.sig"));
    target
        .write_once(&sig_key, signature)
        .await
        .map_err(|e| target.error("write", &sig_key, &e))?;
    target
        .write_once(&json_key, bytes)
        .await
        .map_err(|e| target.error("write", &json_key, &e))?;
    Ok(())
}

/// What a backup's folder says about its verifications.
#[derive(Debug, Default)]
pub struct Found {
    /// Records that verify with the key and are about this catalogue, oldest first.
    pub trusted: Vec<VerificationRecord>,
    /// Records that cannot be trusted: (object, why).
    pub refused: Vec<(String, String)>,
}

impl Found {
    /// The newest verdict.
    pub fn newest(&self) -> Option<&VerificationRecord> {
        self.trusted.last()
    }

    /// The newest measured restore time: a later verification without `--restore-test` does
    /// not erase it, as in the repository (`backup_metadata.rto_seconds`).
    pub fn rto_seconds(&self) -> Option<i32> {
        self.trusted
            .iter()
            .rev()
            .find_map(VerificationRecord::rto_seconds)
    }
}

/// Read the verification records in the backup's folder `dir`.
pub async fn find(
    target: &Target,
    dir: &str,
    key: &VerifyingKey,
    backup_id: Uuid,
    catalogue_sha256: &str,
) -> Result<Found> {
    let folder = format!("{dir}{FOLDER}");
    let entries = match target.op.list(&folder).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Found::default()),
        Err(e) => return Err(target.error("list", &folder, &e)),
    };
    let mut found = Found::default();
    for entry in entries {
        let Some(name) = entry.path().strip_suffix(".json") else {
            continue;
        };
        let (json_key, sig_key) = (entry.path().to_string(), format!("{name}.sig"));
        let checked = match (
            target.read_if_exists(&json_key).await?,
            target.read_if_exists(&sig_key).await?,
        ) {
            (None, _) => continue,
            (Some(_), None) => Err("it has no signature beside it".to_string()),
            (Some(bytes), Some(sig)) => check(&bytes, &sig, key, backup_id, catalogue_sha256),
        };
        match checked {
            Ok(record) => found.trusted.push(record),
            Err(why) => found.refused.push((json_key, why)),
        }
    }
    found.trusted.sort_by_key(|r| r.verified_at);
    Ok(found)
}

fn check(
    bytes: &[u8],
    sig: &[u8],
    key: &VerifyingKey,
    backup_id: Uuid,
    catalogue_sha256: &str,
) -> std::result::Result<VerificationRecord, String> {
    catalogue::check_signature(bytes, sig, key)?;
    let record: VerificationRecord =
        serde_json::from_slice(bytes).map_err(|e| format!("not a verification record: {e}"))?;
    if record.backup_id != backup_id || record.catalogue_sha256 != catalogue_sha256 {
        return Err(format!(
            "it is about backup {} with catalogue {}, not this backup's catalogue",
            record.backup_id, record.catalogue_sha256
        ));
    }
    Ok(record)
}
