//! Credentials of object stores. Never in the repository, a log line or an error message.
//!
//! They come, in this order, from:
//! 1. the OS keyring entry `storage:<target id>` when the target was added with
//!    `--secret-from-env` (a JSON object copied from the environment at that moment), else
//! 2. the environment of the process that uses the target, read explicitly here:
//!    - s3: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//!    - gcs: `GOOGLE_APPLICATION_CREDENTIALS` (path of a service-account JSON file) or
//!      `PGANALYTICS_GCS_CREDENTIALS` (the JSON itself);
//!    - azblob: `AZURE_STORAGE_KEY` (+ `AZURE_STORAGE_ACCOUNT`) or `AZURE_STORAGE_SAS_TOKEN`.
//!
//! opendal's own loaders (`~/.aws/config`, EC2/VM metadata services) are switched off, so
//! nothing is picked up implicitly; `anonymous` targets send unsigned requests.

use crate::api::StorageKind;
use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Keyring account of a storage target's credentials.
pub fn keyring_account(target_id: uuid::Uuid) -> String {
    format!("storage:{target_id}")
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    S3 {
        access_key_id: String,
        secret_access_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
    },
    Gcs {
        /// The service-account JSON.
        service_account: String,
    },
    Azblob {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sas_token: Option<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        for s in self.secret_values_mut() {
            s.zeroize();
        }
    }
}

/// Where a target's credentials came from (shown by `storage check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Keyring,
    Environment,
    Anonymous,
    /// Folders need none; object stores then fail with a hint.
    None,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Keyring => "keyring",
            Source::Environment => "environment",
            Source::Anonymous => "anonymous",
            Source::None => "none",
        }
    }
}

impl Credentials {
    fn secret_values_mut(&mut self) -> Vec<&mut String> {
        match self {
            Credentials::S3 {
                secret_access_key,
                session_token,
                ..
            } => {
                let mut v = vec![secret_access_key];
                v.extend(session_token.as_mut());
                v
            }
            Credentials::Gcs { service_account } => vec![service_account],
            Credentials::Azblob { key, sas_token, .. } => {
                key.as_mut().into_iter().chain(sas_token.as_mut()).collect()
            }
        }
    }

    /// Values that must never appear in a message.
    pub fn secret_values(&self) -> Vec<String> {
        let mut copy = self.clone();
        let out = copy
            .secret_values_mut()
            .into_iter()
            .map(|s| s.clone())
            .filter(|s| s.len() >= 4)
            .collect();
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(kind: StorageKind, text: &str) -> Result<Credentials> {
        let c: Credentials = serde_json::from_str(text).map_err(|_| {
            Error::new(
                ErrorCode::AuthenticationFailed,
                "the keyring entry of this storage target is not readable",
            )
            .with_hint("remove the target and add it again with --secret-from-env")
        })?;
        if c.kind() != kind {
            return Err(Error::new(
                ErrorCode::AuthenticationFailed,
                format!(
                    "the keyring entry of this storage target holds {} credentials, not {}",
                    c.kind().as_str(),
                    kind.as_str()
                ),
            )
            .with_hint("remove the target and add it again with --secret-from-env"));
        }
        Ok(c)
    }

    pub fn kind(&self) -> StorageKind {
        match self {
            Credentials::S3 { .. } => StorageKind::S3,
            Credentials::Gcs { .. } => StorageKind::Gcs,
            Credentials::Azblob { .. } => StorageKind::Azblob,
        }
    }

    /// The kind's credentials from the environment (`env` is `std::env::var` in production),
    /// `None` when none of its variables is set.
    pub fn from_env(
        kind: StorageKind,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Credentials>> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        match kind {
            StorageKind::File => Ok(None),
            StorageKind::S3 => match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Credentials::S3 {
                    access_key_id,
                    secret_access_key,
                    session_token: get("AWS_SESSION_TOKEN"),
                })),
                (None, None) => Ok(None),
                (Some(_), None) => Err(missing("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
                (None, Some(_)) => Err(missing("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
            },
            StorageKind::Gcs => {
                if let Some(json) = get("PGANALYTICS_GCS_CREDENTIALS") {
                    return Ok(Some(Credentials::Gcs {
                        service_account: service_account_json(json, "PGANALYTICS_GCS_CREDENTIALS")?,
                    }));
                }
                let Some(path) = get("GOOGLE_APPLICATION_CREDENTIALS") else {
                    return Ok(None);
                };
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::new(
                        ErrorCode::AuthenticationFailed,
                        format!("cannot read {path} (named by GOOGLE_APPLICATION_CREDENTIALS): {e}"),
                    )
                    .with_hint("point GOOGLE_APPLICATION_CREDENTIALS at a readable service-account JSON key file")
                })?;
                Ok(Some(Credentials::Gcs {
                    service_account: service_account_json(
                        text,
                        &format!("{path} (GOOGLE_APPLICATION_CREDENTIALS)"),
                    )?,
                }))
            }
            StorageKind::Azblob => {
                let key = get("AZURE_STORAGE_KEY");
                let sas_token = get("AZURE_STORAGE_SAS_TOKEN");
                if key.is_none() && sas_token.is_none() {
                    return Ok(None);
                }
                Ok(Some(Credentials::Azblob {
                    account: get("AZURE_STORAGE_ACCOUNT"),
                    key,
                    sas_token,
                }))
            }
        }
    }
}

fn missing(absent: &str, present: &str) -> Error {
    Error::new(
        ErrorCode::AuthenticationFailed,
        format!("{present} is set but {absent} is not"),
    )
    .with_hint(format!("set both {present} and {absent}"))
}

fn service_account_json(text: String, origin: &str) -> Result<String> {
    let ok = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v.get("type").is_some());
    if ok {
        Ok(text)
    } else {
        Err(Error::new(
            ErrorCode::AuthenticationFailed,
            format!("{origin} is not a Google service-account JSON key"),
        )
        .with_hint("download a JSON key of a service account (IAM → Service accounts → Keys)"))
    }
}

/// The hint for a target that needs credentials and has none.
pub fn none_hint(kind: StorageKind) -> &'static str {
    match kind {
        StorageKind::File => "",
        StorageKind::S3 => {
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), or add the target again with --secret-from-env to keep them in the OS keyring; --anonymous for a public bucket"
        }
        StorageKind::Gcs => {
            "set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON key file, or add the target again with --secret-from-env to keep it in the OS keyring; --anonymous for a public bucket or an emulator"
        }
        StorageKind::Azblob => {
            "set AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (or AZURE_STORAGE_SAS_TOKEN), or add the target again with --secret-from-env to keep them in the OS keyring"
        }
    }
}

/// Replace every secret value in `text` with `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_each_kind_from_the_environment() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA1"),
            ("AWS_SECRET_ACCESS_KEY", "s3cret-value"),
        ]);
        let c = Credentials::from_env(StorageKind::S3, &e).unwrap().unwrap();
        assert_eq!(c.secret_values(), vec!["s3cret-value".to_string()]);
        assert_eq!(format!("{c:?}"), "Credentials(***)");
        let round = Credentials::from_json(StorageKind::S3, &c.to_json()).unwrap();
        assert!(round == c);
        assert_eq!(
            Credentials::from_json(StorageKind::Azblob, &c.to_json())
                .unwrap_err()
                .code,
            ErrorCode::AuthenticationFailed
        );
        assert!(Credentials::from_env(StorageKind::S3, &env(&[]))
            .unwrap()
            .is_none());
        let half = Credentials::from_env(StorageKind::S3, &env(&[("AWS_ACCESS_KEY_ID", "A")]));
        assert!(half.unwrap_err().message.contains("AWS_SECRET_ACCESS_KEY"));

        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(&key, r#"{"type": "service_account", "private_key": "pk"}"#).unwrap();
        let e = env(&[("GOOGLE_APPLICATION_CREDENTIALS", key.to_str().unwrap())]);
        let c = Credentials::from_env(StorageKind::Gcs, &e)
            .unwrap()
            .unwrap();
        assert!(matches!(c, Credentials::Gcs { .. }));
        std::fs::write(&key, "not json").unwrap();
        let err = Credentials::from_env(StorageKind::Gcs, &e).unwrap_err();
        assert!(!err.message.contains("not json"));
        let e = env(&[("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")]);
        assert!(Credentials::from_env(StorageKind::Gcs, &e).is_err());

        let e = env(&[("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=abcd")]);
        let c = Credentials::from_env(StorageKind::Azblob, &e)
            .unwrap()
            .unwrap();
        assert_eq!(c.secret_values(), vec!["sv=1&sig=abcd".to_string()]);
        assert!(Credentials::from_env(StorageKind::File, &e)
            .unwrap()
            .is_none());
    }

    #[test]
    fn redacts_secrets_and_url_queries() {
        let text =
            "failed at https://acct.blob.core.windows.net/c/x?sv=1&sig=abcd with key s3cret-value";
        let out = super::super::operator::sanitize(text, &["s3cret-value".into()]);
        assert!(
            !out.contains("sig=abcd") && !out.contains("s3cret-value"),
            "{out}"
        );
        assert!(
            out.contains("https://acct.blob.core.windows.net/c/x?…"),
            "{out}"
        );
    }
}
