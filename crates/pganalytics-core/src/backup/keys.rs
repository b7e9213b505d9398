//! The backup encryption key: 32 random bytes in the OS keyring (entry
//! `backup-encryption-key:<uuid>`, one per installation, named in config.toml) or in a 0600
//! file the user names. It never encrypts data itself:
//! each backup gets a fresh data key, and only that key *wrapped* (AES-256-GCM) under this one
//! is stored, in the backup's catalogue. Losing this key makes encrypted backups unreadable.

use super::codec::{DataKey, Gcm};
use crate::api::{BackupKeyInfo, BackupKeygenRequest};
use crate::data_dir::DataDir;
use crate::error::{Error, ErrorCode, Result};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use zeroize::Zeroizing;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The key-encryption key.
pub struct BackupKey {
    key: Zeroizing<[u8; 32]>,
    location: String,
}

impl BackupKey {
    /// First 16 hex digits of SHA-256 over a label and the key: names the key in catalogues
    /// and errors without revealing it.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"pganalytics backup key\0");
        h.update(self.key.as_ref());
        hex::encode(h.finalize())[..16].to_string()
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    fn cipher(&self) -> Gcm {
        Gcm::new(&self.key)
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)` of the data key, bound to the backup's id.
    pub fn wrap(&self, data_key: &DataKey, backup_id: uuid::Uuid) -> Result<String> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = wrap_aad(backup_id);
        let mut sealed = Zeroizing::new(data_key.0.to_vec());
        if !self.cipher().seal(nonce, aad.as_bytes(), &mut sealed) {
            return Err(Error::internal("wrapping the backup's data key failed"));
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(B64.encode(out))
    }

    /// The data key of a backup; `None` when this key did not wrap it.
    pub fn unwrap_key(&self, wrapped: &str, backup_id: uuid::Uuid) -> Option<DataKey> {
        let bytes = B64.decode(wrapped).ok()?;
        let nonce: [u8; 12] = bytes.get(..12)?.try_into().ok()?;
        let aad = wrap_aad(backup_id);
        let sealed = bytes.get(12..)?.to_vec();
        let plain = Zeroizing::new(self.cipher().open(nonce, aad.as_bytes(), sealed)?);
        let key: [u8; 32] = plain.as_slice().try_into().ok()?;
        Some(DataKey(Zeroizing::new(key)))
    }
}

fn wrap_aad(backup_id: uuid::Uuid) -> String {
    format!("pganalytics backup data key {backup_id}")
}

fn keygen_hint() -> &'static str {
    "create one with `pganalytics backup keygen` (OS keyring) or `pganalytics backup keygen --key-file FILE`"
}

/// The configured key; an error that says how to create one when there is none.
pub async fn load(data_dir: &DataDir) -> Result<BackupKey> {
    let config = data_dir.load_config()?;
    let (text, location) = match &config.backup.key_file {
        Some(path) => {
            if !path.exists() {
                return Err(Error::not_found(format!(
                    "the backup encryption key file {} does not exist",
                    path.display()
                ))
                .with_hint(format!(
                    "put the key file back from your key backup, or {}",
                    keygen_hint()
                )));
            }
            let p = path.clone();
            let text = tokio::task::spawn_blocking(move || crate::audit::keys::read_key_file(&p))
                .await
                .map_err(|e| Error::internal(format!("key file task failed: {e}")))?
                .map_err(|e| {
                    Error::new(
                        e.code,
                        format!("the backup encryption key cannot be read: {}", e.message),
                    )
                    .with_hint(format!(
                        "put the key file back from your key backup, or {}",
                        keygen_hint()
                    ))
                })?;
            (text, path.display().to_string())
        }
        None => {
            let missing =
                || Error::not_found("there is no backup encryption key").with_hint(keygen_hint());
            let Some(account) = &config.backup.keyring_entry else {
                return Err(missing());
            };
            match crate::secrets::get(account).await? {
                Some(text) => (Zeroizing::new(text), format!("keyring entry `{account}`")),
                None => {
                    return Err(Error::not_found(format!(
                        "the keyring entry `{account}` that held the backup encryption key is gone"
                    ))
                    .with_hint("put the key back into that entry from your key backup"))
                }
            }
        }
    };
    let bytes = Zeroizing::new(B64.decode(text.trim()).map_err(|_| {
        Error::invalid_input(format!(
            "the backup encryption key in {location} is not base64"
        ))
        .with_hint("restore the key file from your key backup; it holds one base64 line")
    })?);
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        Error::invalid_input(format!(
            "the backup encryption key in {location} is {} bytes, not 32",
            bytes.len()
        ))
    })?;
    Ok(BackupKey {
        key: Zeroizing::new(key),
        location,
    })
}

/// `backup keygen`: a new random key in the keyring or a new 0600 file.
pub async fn keygen(data_dir: &DataDir, req: &BackupKeygenRequest) -> Result<BackupKeyInfo> {
    let mut config = data_dir.load_config()?;
    let replace = req.replace.unwrap_or(false);
    if !replace {
        let configured = config.backup.key_file.is_some() || config.backup.keyring_entry.is_some();
        match load(data_dir).await {
            Err(e) if configured => {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!("a backup encryption key is configured but cannot be read: {}", e.message),
                )
                .with_hint("put it back from your key backup; pass --replace only if backups made with it may become unreadable"))
            }
            _ => {}
        }
        if let Ok(existing) = load(data_dir).await {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "a backup encryption key exists already ({}, fingerprint {})",
                    existing.location,
                    existing.fingerprint()
                ),
            )
            .with_hint("encrypted backups need the key that made them; pass --replace only after saving the old key"));
        }
    }
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let text = Zeroizing::new(B64.encode(key.as_ref()));
    let location = match &req.key_file {
        Some(path) => {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Error::invalid_input(
                    "give the key file as an absolute path",
                ));
            }
            if replace {
                let _ = std::fs::remove_file(&path);
            }
            let (p, t) = (path.clone(), text.clone());
            tokio::task::spawn_blocking(move || {
                crate::audit::keys::write_new_key_file(&p, format!("{}\n", t.as_str()).as_bytes())
            })
            .await
            .map_err(|e| Error::internal(format!("key file task failed: {e}")))??;
            config.backup.key_file = Some(path.clone());
            config.backup.keyring_entry = None;
            path.display().to_string()
        }
        None => {
            let account = format!("backup-encryption-key:{}", uuid::Uuid::new_v4());
            crate::secrets::set(&account, &text).await.map_err(|e| {
                if e.code != ErrorCode::KeyringUnavailable {
                    return e;
                }
                Error::new(
                    ErrorCode::KeyringUnavailable,
                    "no OS keyring can hold the backup encryption key",
                )
                .with_hint("keep it in a file instead: `pganalytics backup keygen --key-file FILE`")
            })?;
            config.backup.key_file = None;
            config.backup.keyring_entry = Some(account.clone());
            format!("keyring entry `{account}`")
        }
    };
    data_dir.save_config(&config)?;
    let created = BackupKey { key, location };
    Ok(BackupKeyInfo {
        location: created.location.clone(),
        fingerprint: created.fingerprint(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_key_and_backup() {
        let kek = BackupKey {
            key: Zeroizing::new([7u8; 32]),
            location: "test".into(),
        };
        let other = BackupKey {
            key: Zeroizing::new([8u8; 32]),
            location: "test".into(),
        };
        let id = uuid::Uuid::new_v4();
        let dk = DataKey::generate();
        let wrapped = kek.wrap(&dk, id).unwrap();
        assert_eq!(
            kek.unwrap_key(&wrapped, id).unwrap().0.as_ref(),
            dk.0.as_ref()
        );
        assert!(other.unwrap_key(&wrapped, id).is_none());
        assert!(kek.unwrap_key(&wrapped, uuid::Uuid::new_v4()).is_none());
        assert_ne!(kek.fingerprint(), other.fingerprint());
    }
}
