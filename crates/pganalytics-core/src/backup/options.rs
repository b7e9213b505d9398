//! The `BASE_BACKUP` command in the two syntaxes the server understands.
//!
//! - **13–14**: bare keywords (`LABEL 'x' PROGRESS FAST WAL NOWAIT MANIFEST 'yes' …`); the
//!   server answers with one COPY OUT per tablespace, then one more for the manifest.
//! - **15+**: a parenthesised, comma-separated option list (`(LABEL 'x', PROGRESS,
//!   CHECKPOINT 'fast', …)`); the server answers with a single COPY OUT whose CopyData
//!   messages begin with a type byte (see [`super::stream`]).
//!
//! The choice is made here, by `server_version_num`, and nowhere else.

/// First version with the parenthesised syntax and the single-COPY stream.
pub const NEW_SYNTAX_FROM: u32 = 150_000;
/// Oldest version with backup manifests (and the oldest pgAnalytics supports).
pub const MIN_VERSION: u32 = 130_000;

/// What to ask the server for. Every backup pgAnalytics takes includes the WAL needed to
/// make it consistent, a SHA-256 manifest and a `tablespace_map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackupOptions {
    /// The backup label (recorded in `backup_label` and the server's log).
    pub label: String,
    /// Spread the start checkpoint (`false`) or request an immediate one (`true`).
    pub fast_checkpoint: bool,
    /// Ask the server to estimate sizes first (one more scan of the data folder), so
    /// progress has a total.
    pub progress: bool,
    /// Wait for the WAL to be archived at the end (no: the backup streams its own WAL).
    pub wait_for_wal_archive: bool,
    /// Throttle the server, in kB/s (32–1048576); `None` for no limit.
    pub max_rate_kb: Option<u32>,
    /// Put the WAL the backup needs into `base.tar` at the end (`WAL`). The engine streams it
    /// alongside instead (a second connection), so it cannot be recycled mid-backup.
    pub include_wal: bool,
    /// Per-file checksums of the server's manifest: `CRC32C` (the server's default, nearly
    /// free) or `SHA256` (costs the server about half a CPU-second per GB). Our objects carry
    /// SHA-256 anyway; the manifest's checksums check what the archives unpack to.
    pub manifest_checksums: &'static str,
    /// 15+: the server compresses each archive with zstd (`COMPRESSION_DETAIL`, e.g.
    /// `level=1,workers=2`) before sending it; archives then arrive as `<name>.tar.zst`.
    pub server_zstd: Option<String>,
}

impl BaseBackupOptions {
    pub fn new(label: impl Into<String>) -> Self {
        BaseBackupOptions {
            label: label.into(),
            fast_checkpoint: true,
            progress: true,
            wait_for_wal_archive: false,
            max_rate_kb: None,
            include_wal: true,
            manifest_checksums: "CRC32C",
            server_zstd: None,
        }
    }
}

/// A string literal of the replication grammar (standard-conforming quoting).
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Whether a server of `server_version_num` speaks the 15+ syntax.
pub fn uses_new_syntax(server_version_num: u32) -> bool {
    server_version_num >= NEW_SYNTAX_FROM
}

/// The `BASE_BACKUP` command for a server of `server_version_num`.
pub fn base_backup_command(server_version_num: u32, options: &BaseBackupOptions) -> String {
    let label = quote(&options.label);
    if uses_new_syntax(server_version_num) {
        let mut parts = vec![format!("LABEL {label}")];
        if options.progress {
            parts.push("PROGRESS".into());
        }
        parts.push(format!(
            "CHECKPOINT '{}'",
            if options.fast_checkpoint {
                "fast"
            } else {
                "spread"
            }
        ));
        if options.include_wal {
            parts.push("WAL".into());
        }
        parts.push(format!("WAIT {}", options.wait_for_wal_archive));
        if let Some(rate) = options.max_rate_kb {
            parts.push(format!("MAX_RATE {rate}"));
        }
        parts.push("TABLESPACE_MAP".into());
        parts.push("MANIFEST 'yes'".into());
        parts.push(format!(
            "MANIFEST_CHECKSUMS '{}'",
            options.manifest_checksums
        ));
        parts.push("TARGET 'client'".into());
        if let Some(detail) = &options.server_zstd {
            parts.push("COMPRESSION 'zstd'".into());
            parts.push(format!("COMPRESSION_DETAIL {}", quote(detail)));
        }
        format!("BASE_BACKUP ({})", parts.join(", "))
    } else {
        let mut cmd = format!("BASE_BACKUP LABEL {label}");
        if options.progress {
            cmd.push_str(" PROGRESS");
        }
        if options.fast_checkpoint {
            cmd.push_str(" FAST");
        }
        if options.include_wal {
            cmd.push_str(" WAL");
        }
        if !options.wait_for_wal_archive {
            cmd.push_str(" NOWAIT");
        }
        if let Some(rate) = options.max_rate_kb {
            cmd.push_str(&format!(" MAX_RATE {rate}"));
        }
        cmd.push_str(&format!(
            " TABLESPACE_MAP MANIFEST 'yes' MANIFEST_CHECKSUMS '{}'",
            options.manifest_checksums
        ));
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_syntax_for_13_and_14() {
        let cmd = base_backup_command(140_010, &BaseBackupOptions::new("nightly"));
        assert_eq!(
            cmd,
            "BASE_BACKUP LABEL 'nightly' PROGRESS FAST WAL NOWAIT TABLESPACE_MAP MANIFEST 'yes' MANIFEST_CHECKSUMS 'CRC32C'"
        );
    }

    #[test]
    fn server_compression_from_15() {
        let mut options = BaseBackupOptions::new("n");
        options.server_zstd = Some("level=1,workers=2".into());
        assert!(base_backup_command(150_000, &options).ends_with(
            "TARGET 'client', COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=1,workers=2')"
        ));
    }

    #[test]
    fn new_syntax_from_15() {
        let mut options = BaseBackupOptions::new("it's");
        options.fast_checkpoint = false;
        options.max_rate_kb = Some(1024);
        options.manifest_checksums = "SHA256";
        let cmd = base_backup_command(150_000, &options);
        assert_eq!(
            cmd,
            "BASE_BACKUP (LABEL 'it''s', PROGRESS, CHECKPOINT 'spread', WAL, WAIT false, MAX_RATE 1024, TABLESPACE_MAP, MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TARGET 'client')"
        );
    }
}
