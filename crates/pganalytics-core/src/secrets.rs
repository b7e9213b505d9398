//! Secrets (server passwords) in the OS keyring, never in the repository, a log or an error.
//!
//! The store is chosen explicitly, not by whichever keyring feature some crate enabled:
//! `PGANALYTICS_KEYRING=secret-service` (the default: GNOME Keyring, KWallet, KeePassXC over
//! D-Bus, persistent) or `keyutils` (the kernel's session keyring: needs no daemon but is lost
//! at logout/reboot, so meant for CI and short-lived sessions). When none works, the error
//! says how to use `.pgpass` instead.

use crate::error::{Error, ErrorCode, Result};
use keyring::credential::CredentialApi;

const SERVICE: &str = "pganalytics";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    SecretService,
    Keyutils,
}

impl Store {
    pub fn from_env() -> Result<Store> {
        match std::env::var("PGANALYTICS_KEYRING").as_deref() {
            Err(_) | Ok("") | Ok("secret-service") => Ok(Store::SecretService),
            Ok("keyutils") => Ok(Store::Keyutils),
            Ok(other) => Err(Error::invalid_input(format!(
                "PGANALYTICS_KEYRING={other} is not a keyring store"
            ))
            .with_hint("use `secret-service` (default) or `keyutils`")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Store::SecretService => "secret-service",
            Store::Keyutils => "keyutils",
        }
    }

    fn credential(self, account: &str) -> keyring::Result<Box<dyn CredentialApi + Send + Sync>> {
        Ok(match self {
            Store::SecretService => Box::new(
                keyring::secret_service::SsCredential::new_with_target(None, SERVICE, account)?,
            ),
            Store::Keyutils => Box::new(keyring::keyutils::KeyutilsCredential::new_with_target(
                None, SERVICE, account,
            )?),
        })
    }
}

/// Keyring account name of a monitored server's password.
pub fn server_account(server_id: uuid::Uuid) -> String {
    format!("server:{server_id}")
}

fn unavailable(store: Store, what: &str, err: &keyring::Error) -> Error {
    Error::new(
        ErrorCode::KeyringUnavailable,
        format!(
            "no OS keyring could {what} (store `{}`: {err})",
            store.name()
        ),
    )
    .with_hint(
        "leave the password out of the DSN and put it in ~/.pgpass (`host:port:dbname:user:password`, chmod 600) or PGPASSWORD; \
         or start a keyring service (GNOME Keyring, KWallet, KeePassXC), or set PGANALYTICS_KEYRING=keyutils for the kernel keyring",
    )
}

pub async fn set(account: &str, secret: &str) -> Result<()> {
    let store = Store::from_env()?;
    let account = account.to_string();
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || {
        store
            .credential(&account)
            .and_then(|c| c.set_password(&secret))
            .map_err(|e| unavailable(store, "store the password", &e))
    })
    .await
    .map_err(|e| Error::internal(format!("keyring task failed: {e}")))?
}

/// The secret, or `None` when the keyring has no such entry.
pub async fn get(account: &str) -> Result<Option<String>> {
    let store = Store::from_env()?;
    let account = account.to_string();
    tokio::task::spawn_blocking(move || {
        match store.credential(&account).and_then(|c| c.get_password()) {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(unavailable(store, "read the password", &e)),
        }
    })
    .await
    .map_err(|e| Error::internal(format!("keyring task failed: {e}")))?
}

/// Remove the entry; a missing entry is not an error.
pub async fn delete(account: &str) -> Result<()> {
    let store = Store::from_env()?;
    let account = account.to_string();
    tokio::task::spawn_blocking(move || {
        match store
            .credential(&account)
            .and_then(|c| c.delete_credential())
        {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(unavailable(store, "delete the password", &e)),
        }
    })
    .await
    .map_err(|e| Error::internal(format!("keyring task failed: {e}")))?
}
