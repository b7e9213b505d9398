//! The data directory: `config.toml`, the embedded repository cluster and local state.
//!
//! Default location: the platform's per-user data folder (`~/.local/share/pganalytics` on
//! Linux). When running as root the default is `/var/lib/pganalytics`, because the embedded
//! PostgreSQL then runs as an unprivileged account that cannot enter `/root`.

use crate::error::{Error, ErrorCode, Result};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Settings kept in `<data-dir>/config.toml`. Never holds a secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// URI of an external repository database; `None` means the embedded cluster.
    /// Any password must come from the keyring, `.pgpass` or `PGPASSWORD`, not from here.
    pub repository: Option<String>,
    /// Where the audit log's signing key and external checkpoints are.
    pub audit: AuditConfig,
    /// Where the backup encryption key is.
    pub backup: BackupConfig,
}

/// `[backup]` in config.toml: written by `pganalytics backup keygen`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// The key that wraps each backup's data key is in this file (mode 0600)...
    pub key_file: Option<PathBuf>,
    /// ...or in this OS keyring entry (one per installation).
    pub keyring_entry: Option<String>,
}

/// `[audit]` in config.toml: written by `pganalytics audit keygen`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The private key is in the OS keyring (the default once a key exists)...
    pub key_in_keyring: bool,
    /// ...or in this file (mode 0600).
    pub key_file: Option<PathBuf>,
    /// Public key (PEM) used by `audit verify` when `--public-key` is not given.
    pub public_key: Option<PathBuf>,
    /// Folder of the external checkpoints (default `<data-dir>/audit-checkpoints`).
    pub checkpoints: Option<PathBuf>,
}

impl DataDir {
    /// The folder named by the user, or the platform default.
    pub fn resolve(explicit: Option<&Path>) -> Result<DataDir> {
        if let Some(path) = explicit {
            let root = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir()?.join(path)
            };
            return Ok(DataDir { root });
        }
        if nix::unistd::geteuid().is_root() {
            return Ok(DataDir {
                root: PathBuf::from("/var/lib/pganalytics"),
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "pganalytics").ok_or_else(|| {
            Error::new(
                ErrorCode::DataDirUnusable,
                "cannot determine the per-user data folder (no home directory)",
            )
            .with_hint("pass --data-dir DIR or set PGANALYTICS_DATA_DIR")
        })?;
        Ok(DataDir {
            root: dirs.data_dir().to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Create the folder (mode 0700) if needed and refuse one that belongs to someone else:
    /// we would otherwise write our state and secrets' metadata into another user's folder.
    pub fn ensure(&self) -> Result<()> {
        match std::fs::metadata(&self.root) {
            Ok(meta) => {
                if !meta.is_dir() {
                    return Err(self.unusable(format!(
                        "data directory {} is not a folder",
                        self.root.display()
                    )));
                }
                let me = nix::unistd::geteuid().as_raw();
                if meta.uid() != me {
                    let owner = nix::unistd::User::from_uid(meta.uid().into())
                        .ok()
                        .flatten()
                        .map(|u| u.name)
                        .unwrap_or_else(|| format!("uid {}", meta.uid()));
                    return Err(self.unusable(format!(
                        "data directory {} is owned by {owner}, not by the current user",
                        self.root.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.root)
                    .with_context(|| format!("create data directory {}", self.root.display()))
                    .map_err(|e| self.unusable(format!("{e:#}")))?;
                std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("restrict data directory {}", self.root.display()))?;
            }
            Err(e) => {
                return Err(self.unusable(format!(
                    "cannot read data directory {}: {e}",
                    self.root.display()
                )))
            }
        }
        // As root the embedded PostgreSQL runs as an unprivileged account, which must be able
        // to pass through this folder (search only: it still cannot list or read it).
        if nix::unistd::geteuid().is_root() {
            let meta = std::fs::metadata(&self.root)?;
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(
                    &self.root,
                    std::fs::Permissions::from_mode((mode & 0o7777) | 0o001),
                )
                .with_context(|| format!("allow search in {}", self.root.display()))?;
            }
        }
        Ok(())
    }

    fn unusable(&self, message: String) -> Error {
        Error::new(ErrorCode::DataDirUnusable, message).with_hint(
            "run pganalytics as the folder's owner, or choose another folder with --data-dir DIR (or PGANALYTICS_DATA_DIR)",
        )
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// Folder of the embedded repository cluster (PGDATA lives in `pgdata/` inside it).
    pub fn embedded_dir(&self) -> PathBuf {
        self.root.join("embedded")
    }

    pub fn load_config(&self) -> Result<Config> {
        let path = self.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                Error::invalid_input(format!("config file {} is malformed: {e}", path.display()))
                    .with_hint("fix or remove the file; it is recreated with defaults")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::internal(format!("read {}: {e}", path.display()))),
        }
    }

    /// Write the config atomically (temp file, fsync, rename) so a crash never leaves half a file.
    pub fn save_config(&self, config: &Config) -> Result<()> {
        let text = toml::to_string_pretty(config)
            .map_err(|e| Error::internal(format!("serialize config: {e}")))?;
        write_atomically(&self.config_path(), text.as_bytes())?;
        Ok(())
    }
}

/// Write, fsync, rename, fsync the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().context("path has no parent folder")?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("replace {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
