//! The catalogue of a backup: every object with its sizes and SHA-256, where the backup
//! starts and ends in the WAL, and how objects are encoded. Written last, as
//! `catalogue.json`, with `catalogue.sig` beside it (signed by the installation's signing
//! key): a backup without both is incomplete, whatever else its folder holds.
//!
//! The repository keeps SHA-256 of `catalogue.json` (`backup_metadata.checksum`), so a
//! catalogue replaced in the store is caught even by someone holding a valid signature of an
//! older one.

use crate::api::CompressOn;
use crate::audit::keys::{SigningKey, VerifyingKey};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalogue {
    pub format: u32,
    pub backup_id: uuid::Uuid,
    pub backup_type: String,
    /// Parent of an incremental backup (none yet: every backup is full).
    pub parent_backup_id: Option<uuid::Uuid>,
    pub label: String,
    pub server_name: String,
    pub system_identifier: String,
    pub server_version_num: u32,
    pub timeline: u32,
    pub start_lsn: String,
    pub stop_lsn: String,
    /// The first and last WAL segments the backup needs to be consistent (see `wal`).
    pub wal_start_segment: String,
    pub wal_stop_segment: String,
    pub wal_segment_size: u64,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// `none` or `zstd:LEVEL`.
    pub compression: String,
    pub encryption: Option<Encryption>,
    /// Bytes of raw archive data per object (the last object of an archive holds less).
    pub object_size: u64,
    pub archives: Vec<Archive>,
    /// The server's own `backup_manifest`, stored as one object encoded like the others.
    pub manifest: Object,
    /// The WAL segments from the start to the end position (`wal/<segment>`, full segments,
    /// the last one zero-padded), streamed alongside the data.
    #[serde(default)]
    pub wal: Vec<Object>,
    /// Bytes of the files backed up (the manifest's sizes) when the server compressed the
    /// archives (`<name>.tar.zst`): their objects then hold compressed bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_bytes: Option<u64>,
    /// Days the backup was to be kept when it was taken (`--retention-days`), so that
    /// `backup import` keeps it too. Absent from catalogues written before 2026-11-30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i32>,
}

impl Catalogue {
    /// Where zstd ran: on the server when it sent its archives compressed.
    pub fn compressed_on(&self) -> Option<CompressOn> {
        if self.compression == "none" {
            None
        } else if self.archives.iter().any(|a| server_compressed(&a.name)) {
            Some(CompressOn::Server)
        } else {
            Some(CompressOn::Client)
        }
    }
}

/// Whether the server compressed an archive itself: it then sends `<name>.tar.zst`.
pub fn server_compressed(archive_name: &str) -> bool {
    archive_name.ends_with(".zst")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Encryption {
    /// `aes-256-gcm`.
    pub algorithm: String,
    /// Fingerprint of the key that wraps the data key.
    pub key_fingerprint: String,
    /// The data key wrapped under that key (AES-256-GCM, bound to the backup's id).
    pub wrapped_data_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Archive {
    /// `base.tar` or `<oid>.tar`.
    pub name: String,
    pub tablespace_oid: Option<u32>,
    pub location: Option<String>,
    pub raw_bytes: u64,
    pub objects: Vec<Object>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Object {
    /// Relative to the storage target's prefix.
    pub key: String,
    /// The GCM nonce's sequence number (unique within the backup).
    pub sequence: u64,
    pub raw_bytes: u64,
    /// Stored without compression (zstd would not shrink it), whatever the backup's setting.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncompressed: bool,
    pub stored_bytes: u64,
    pub sha256: String,
}

/// `catalogue.sig`: who signed which bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signature {
    pub algorithm: String,
    pub key_fingerprint: String,
    /// Base64 of the signature over the exact bytes of `catalogue.json`.
    pub signature: String,
}

impl Catalogue {
    /// The backup's size before compression: the objects' raw bytes, or the files' sizes when
    /// the server compressed the archives.
    pub fn raw_bytes(&self) -> u64 {
        let objects: u64 = self.objects().map(|o| o.raw_bytes).sum();
        self.source_bytes
            .map_or(objects, |files| files.max(objects))
    }

    pub fn stored_bytes(&self) -> u64 {
        self.objects().map(|o| o.stored_bytes).sum()
    }

    /// Every object: the archives' in order, then the manifest, then the WAL.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.archives
            .iter()
            .flat_map(|a| a.objects.iter())
            .chain(std::iter::once(&self.manifest))
            .chain(self.wal.iter())
    }

    pub fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// The signature document stored beside a catalogue (`catalogue.sig`) or a verification record.
pub fn sign(bytes: &[u8], key: &SigningKey) -> anyhow::Result<Vec<u8>> {
    let signature = Signature {
        algorithm: key.algorithm().to_string(),
        key_fingerprint: key.verifying_key().fingerprint(),
        signature: base64::engine::general_purpose::STANDARD.encode(key.sign(bytes)?),
    };
    Ok(serde_json::to_vec_pretty(&signature)?)
}

/// `Ok(fingerprint)` when `sig` is a valid signature of `bytes` by `key`; else what is wrong.
pub fn check_signature(bytes: &[u8], sig: &[u8], key: &VerifyingKey) -> Result<String, String> {
    let sig: Signature = serde_json::from_slice(sig)
        .map_err(|e| format!("the signature file is not a signature document: {e}"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&sig.signature)
        .map_err(|_| "the signature file holds no base64 signature".to_string())?;
    if key.verify(bytes, &raw) {
        Ok(sig.key_fingerprint)
    } else {
        Err(format!(
            "the signature does not match the signed file under the key {} (signed by {})",
            key.fingerprint(),
            sig.key_fingerprint
        ))
    }
}
